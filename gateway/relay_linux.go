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

// canReadReady says readyRead works on this OS.
const canReadReady = true

// readyRead reads a socket once it has data (or EOF, or an error) into a
// buffer from the relay pool, taken only once the read succeeds: an idle
// direction holds no buffer. Its callback is bound once per pipe, so a
// read allocates nothing.
type readyRead struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	max int
	n   int
	bp  *[]byte
	err error
}

func (r *readyRead) init(rc syscall.RawConn) {
	r.rc = rc
	r.fn = r.once
}

func (r *readyRead) once(fd uintptr) bool {
	b := bufPool.Get().(*[]byte)
	m, e := unix.Read(int(fd), (*b)[:r.max])
	if e == unix.EAGAIN || e == unix.EINTR {
		bufPool.Put(b)
		return false
	}
	if e != nil {
		bufPool.Put(b)
		r.err = e
		return true
	}
	r.n, r.bp = m, b
	return true
}

// read waits and reads at most max bytes. n is 0 at EOF; the caller
// returns bp to the pool.
func (r *readyRead) read(max int) (n int, bp *[]byte, err error) {
	r.max, r.n, r.bp, r.err = max, 0, nil, nil
	err = r.rc.Read(r.fn)
	if err == nil {
		err = r.err
	}
	n, bp = r.n, r.bp
	r.bp, r.err = nil, nil
	if err != nil && bp != nil {
		bufPool.Put(bp)
		bp = nil
	}
	return n, bp, err
}
