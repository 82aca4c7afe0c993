package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// Direction of relayed bytes.
type Direction uint8

// Directions: Up is client to remote, Down is remote to client.
const (
	Up Direction = iota
	Down
)

// RelayOptions tune a stream relay.
type RelayOptions struct {
	// IdleTimeout closes the relay when neither direction moved a byte for
	// that long; 0 disables it.
	IdleTimeout time.Duration
	// UpLimit and DownLimit rate-limit each direction (bytes per second);
	// nil means unlimited. They may be shared between sessions of one user.
	UpLimit, DownLimit *rate.Limiter
	// OnBytes is called after every chunk with its size (for metrics). It
	// must be cheap and safe for concurrent use.
	OnBytes func(d Direction, n int)
}

// RelayStats counts the bytes a relay moved.
type RelayStats struct {
	Up, Down int64
}

// ErrIdle is returned by Relay when the idle timeout closed it.
var ErrIdle = errors.New("idle timeout")

// maxChunk bounds one copy step, so counters, deadlines and the rate limiter
// are updated at least this often.
const maxChunk = 1 << 20

// Relay copies bytes both ways between client and remote until both
// directions have ended, propagating half-close (CloseWrite) in each
// direction. An error in either direction, ctx ending or the idle timeout
// closes both connections, so no session outlives its peers. Between TCP
// sockets each chunk is spliced by the kernel; a direction waits for
// readability before taking a pipe or buffer, so an idle session holds
// neither. Relay closes both connections before it returns.
func Relay(ctx context.Context, client, remote net.Conn, o RelayOptions) (RelayStats, error) {
	var (
		st       RelayStats
		last     atomic.Int64
		once     sync.Once
		firstErr error
		mu       sync.Mutex
	)
	last.Store(time.Now().UnixNano())
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			remote.Close()
		})
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		closeBoth()
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := newPipe(client, remote, Up, &o, &last, &st.Up, o.UpLimit)
		if err := p.run(ctx); err != nil {
			fail(err)
		}
	}()
	p := newPipe(remote, client, Down, &o, &last, &st.Down, o.DownLimit)
	if err := p.run(ctx); err != nil {
		fail(err)
	}
	wg.Wait()
	closeBoth()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return RelayStats{Up: atomic.LoadInt64(&st.Up), Down: atomic.LoadInt64(&st.Down)}, firstErr
}

type pipe struct {
	src, dst net.Conn
	dir      Direction
	o        *RelayOptions
	last     *atomic.Int64
	count    *int64
	lim      *rate.Limiter
	lr       io.LimitedReader
	// rc is src's socket when it is a TCP socket: chunks are read straight
	// into a pooled buffer taken only once data is there (two system calls
	// per small chunk), until a full buffer shows a bulk transfer and the
	// pipe switches to splice.
	rc     syscall.RawConn
	splice bool
}

// spliceBelow is the chunk size under which a splicing pipe goes back to
// copying (small chunks cost fewer system calls copied).
const spliceBelow = 16 << 10

func newPipe(src, dst net.Conn, dir Direction, o *RelayOptions, last *atomic.Int64, count *int64, lim *rate.Limiter) *pipe {
	p := &pipe{src: src, dst: dst, dir: dir, o: o, last: last, count: count, lim: lim}
	if tc, ok := src.(*net.TCPConn); ok && canReadReady {
		p.rc, _ = tc.SyscallConn()
	}
	return p
}

// run copies src to dst until EOF (then half-closes dst) or an error.
func (p *pipe) run(ctx context.Context) error {
	for {
		if p.o.IdleTimeout > 0 {
			p.src.SetReadDeadline(time.Now().Add(p.o.IdleTimeout))
		}
		n, err := p.step()
		if n > 0 {
			p.last.Store(time.Now().UnixNano())
			atomic.AddInt64(p.count, n)
			if p.o.OnBytes != nil {
				p.o.OnBytes(p.dir, int(n))
			}
			if p.lim != nil {
				if werr := waitN(ctx, p.lim, int(n)); werr != nil {
					return werr
				}
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			closeWrite(p.dst)
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded) && p.o.IdleTimeout > 0:
			idle := time.Since(time.Unix(0, p.last.Load()))
			if idle < p.o.IdleTimeout {
				continue // the other direction was active
			}
			return ErrIdle
		default:
			return err
		}
	}
}

// waitN waits for n tokens, in pieces no larger than the limiter's burst.
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	b := l.Burst()
	if b <= 0 {
		return nil
	}
	for n > 0 {
		k := min(n, b)
		if err := l.WaitN(ctx, k); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// chunkLimit returns the largest chunk the limiter lets through at once.
func (p *pipe) chunkLimit() int64 {
	if p.lim != nil && p.lim.Burst() > 0 && int64(p.lim.Burst()) < maxChunk {
		return int64(p.lim.Burst())
	}
	return maxChunk
}

// step moves one chunk: it waits until src is readable, then copies what is
// there — read into a pooled buffer taken only when data is there, or spliced
// by the kernel when both ends are TCP sockets and the transfer is bulk. It
// returns io.EOF once src is at its end.
func (p *pipe) step() (int64, error) {
	limit := p.chunkLimit()
	if p.rc != nil && !p.splice {
		n, bp, err := readReady(p.rc, int(min(limit, int64(bufSize))))
		if err != nil {
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: p.src.LocalAddr(), Addr: p.src.RemoteAddr(), Err: err}
		}
		defer bufPool.Put(bp)
		if n == 0 {
			return 0, io.EOF
		}
		if _, werr := p.dst.Write((*bp)[:n]); werr != nil {
			return int64(n), werr
		}
		if n == bufSize && isTCP(p.dst) {
			p.splice = true
		}
		return int64(n), nil
	}
	avail, err := waitReadable(p.src)
	if err != nil {
		return 0, err
	}
	if avail > 0 {
		k := min(int64(avail), limit)
		if rf, ok := p.dst.(io.ReaderFrom); ok && isTCP(p.src) {
			p.lr.R, p.lr.N = p.src, k
			n, err := rf.ReadFrom(&p.lr)
			if err == nil && n == 0 {
				err = io.EOF
			}
			if n < spliceBelow {
				p.splice = false
			}
			return n, err
		}
		return p.copyBuffered(int(k))
	}
	if avail == 0 {
		return 0, io.EOF
	}
	// Readiness unknown (not a socket): a plain buffered copy.
	return p.copyBuffered(int(limit))
}

func (p *pipe) copyBuffered(k int) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	if k < len(buf) {
		buf = buf[:k]
	}
	n, err := p.src.Read(buf)
	if n > 0 {
		if _, werr := p.dst.Write(buf[:n]); werr != nil {
			return int64(n), werr
		}
	}
	return int64(n), err
}

// bufSize is the size of a pooled relay buffer.
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func isTCP(c net.Conn) bool {
	_, ok := c.(*net.TCPConn)
	return ok
}

// closeWrite half-closes c where the type allows it.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}
