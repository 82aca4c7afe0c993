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
// when data is there (an idle direction holds none), and is handed to each.
// A read that comes back shorter than asked has drained the queue, so the
// callback then waits for the next readiness edge, still within the same
// poller read, instead of reading again to find the socket empty: one read
// and one write per chunk, not two reads. (A fresh poller read would forget
// an edge that came in between, so it could not skip that read.)
//
// Nothing in the callback may block: it holds the socket's read lock, and
// closing the socket waits for that. So each only writes what the other
// socket takes at once; a chunk it cannot finish (the other side's buffer
// is full, a rate limit applies) ends the poller read, and the caller
// writes the rest the blocking way. The callback is bound once per pipe, so
// serving allocates nothing.
type readyRead struct {
	rc syscall.RawConn
	fn func(fd uintptr) bool
	// each takes one chunk and says how much of it went out and whether
	// it is finished (written and booked); an unfinished one is left to
	// serve's caller.
	each func(b []byte) (written int, finished bool)
	max  int
	// the unfinished chunk, and what ended the read
	pend       *[]byte
	n, written int
	rerr       error // the read's errno, or io.EOF
}

func (r *readyRead) init(rc syscall.RawConn, each func(b []byte) (int, bool)) {
	r.rc = rc
	r.each = each
	r.fn = r.loop
}

func (r *readyRead) loop(fd uintptr) bool {
	for {
		b := bufPool.Get().(*[]byte)
		m, e := unix.Read(int(fd), (*b)[:r.max])
		if e == unix.EINTR {
			bufPool.Put(b)
			continue
		}
		if e == unix.EAGAIN {
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
		w, finished := r.each((*b)[:m])
		if !finished {
			r.pend, r.n, r.written = b, m, w
			return true
		}
		bufPool.Put(b)
		if m < r.max {
			return false // drained: wait for the next edge
		}
	}
}

// serve relays chunks of at most max bytes until one is left unfinished
// (returned: its buffer, to go back to the pool, its length and how much of
// it was written), the socket is at EOF (io.EOF) or fails (its errno), or
// the poller wait fails (a read deadline, the socket closed).
func (r *readyRead) serve(max int) (pend *[]byte, n, written int, err error) {
	r.max, r.pend, r.rerr = max, nil, nil
	if err := r.rc.Read(r.fn); err != nil {
		return nil, 0, 0, err
	}
	pend, n, written, err = r.pend, r.n, r.written, r.rerr
	r.pend, r.rerr = nil, nil
	return pend, n, written, err
}

// writeNow is dstRaw's write callback: one non-blocking write of what is
// left of wbuf; it never waits for the socket.
func (p *pipe) writeNow(fd uintptr) bool {
	for p.wn < len(p.wbuf) {
		n, e := unix.Write(int(fd), p.wbuf[p.wn:])
		if n > 0 {
			p.wn += n
		}
		if e == unix.EINTR {
			continue
		}
		if e != nil {
			if e != unix.EAGAIN {
				p.werr = e
			}
			break
		}
	}
	return true
}
