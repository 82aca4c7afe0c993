package gateway

import (
	"io"
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

// readyRead relays a socket's bytes from inside the poller's read
// callback: each read goes into a buffer from the relay pool, taken only
// when data is there (an idle direction holds none), and is handed to each
// at once. A read that comes back shorter than asked has drained the queue,
// so the callback then waits for the next readiness edge, still within the
// same poller read, instead of reading again to find the socket empty: one
// read and one write per chunk, not two reads. (A fresh poller read would
// forget an edge that came in between, so it could not skip that read.)
// The callback is bound once per pipe, so serving allocates nothing.
type readyRead struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool
	each func(b []byte) (stop bool, err error)
	max  int
	rerr error // the read's errno, or io.EOF
	cerr error // each's error
}

func (r *readyRead) init(rc syscall.RawConn, each func(b []byte) (bool, error)) {
	r.rc = rc
	r.each = each
	r.fn = r.loop
}

func (r *readyRead) loop(fd uintptr) bool {
	for {
		b := bufPool.Get().(*[]byte)
		m, e := unix.Read(int(fd), (*b)[:r.max])
		if e == unix.EAGAIN || e == unix.EINTR {
			bufPool.Put(b)
			return false
		}
		if e != nil || m == 0 {
			bufPool.Put(b)
			r.rerr = io.EOF
			if e != nil {
				r.rerr = e
			}
			return true
		}
		stop, err := r.each((*b)[:m])
		bufPool.Put(b)
		if err != nil {
			r.cerr = err
			return true
		}
		if stop {
			return true
		}
		if m < r.max {
			return false // drained: wait for the next edge
		}
	}
}

// serve relays chunks of at most max bytes until each stops it or fails
// (that error is returned), the socket is at EOF (io.EOF) or fails (its
// errno), or the poller wait fails (a read deadline, the socket closed).
func (r *readyRead) serve(max int) (readErr, eachErr error) {
	r.max, r.rerr, r.cerr = max, nil, nil
	if err := r.rc.Read(r.fn); err != nil {
		return err, nil
	}
	readErr, eachErr = r.rerr, r.cerr
	r.rerr, r.cerr = nil, nil
	return readErr, eachErr
}
