package gateway

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// waitReadable blocks until c has bytes to read or is at EOF, without
// consuming anything, and returns how many bytes are queued (0 at EOF). For a
// connection that is not a plain socket it returns -1 at once.
func waitReadable(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok || !isTCP(c) {
		return -1, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, nil
	}
	var (
		avail int
		opErr error
		one   [1]byte
	)
	err = rc.Read(func(fd uintptr) bool {
		n, _, e := unix.Recvfrom(int(fd), one[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false
		}
		if e != nil {
			opErr = e
			return true
		}
		if n == 0 {
			avail = 0
			return true
		}
		q, e := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if e != nil || q <= 0 {
			q = 1
		}
		avail = q
		return true
	})
	if err != nil {
		return 0, err
	}
	if opErr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: opErr}
	}
	return avail, nil
}

// canReadReady says readReady works on this OS.
const canReadReady = true

// readReady waits until the socket has data (or EOF, or an error) and reads
// it into a buffer from the relay pool, taken only once the read succeeds:
// an idle direction holds no buffer. n is 0 at EOF; the caller returns bp to
// the pool.
func readReady(rc syscall.RawConn, max int) (n int, bp *[]byte, err error) {
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		b := bufPool.Get().(*[]byte)
		m, e := unix.Read(int(fd), (*b)[:max])
		if e == unix.EAGAIN || e == unix.EINTR {
			bufPool.Put(b)
			return false
		}
		if e != nil {
			bufPool.Put(b)
			rerr = e
			return true
		}
		n, bp = m, b
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil && bp != nil {
		bufPool.Put(bp)
		bp = nil
	}
	return n, bp, err
}
