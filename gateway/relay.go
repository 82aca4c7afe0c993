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
		st   RelayStats
		err  error
		done = make(chan struct{})
	)
	RelayThen(ctx, client, remote, o, func(s RelayStats, e error) {
		st, err = s, e
		close(done)
	})
	<-done
	return st, err
}

// RelayThen is Relay without a waiting caller: it returns at once and calls
// then, in one of the relay's goroutines, when the relay has ended and both
// connections are closed.
func RelayThen(ctx context.Context, client, remote net.Conn, o RelayOptions, then func(RelayStats, error)) {
	r := &relay{client: client, remote: remote, then: then, o: o}
	r.last.Store(time.Now().UnixNano())
	r.pipes[Up] = newPipe(client, remote, Up, &r.o, &r.last, &r.st.Up, o.UpLimit)
	r.pipes[Down] = newPipe(remote, client, Down, &r.o, &r.last, &r.st.Down, o.DownLimit)
	r.running.Store(2)
	r.ctx = ctx
	r.stop = context.AfterFunc(ctx, r.closeBoth)
	// Both directions run in fresh goroutines: the copy path's frames stay
	// off the caller's stack, and a direction idle for parkAfter gives its
	// goroutine up (see park).
	now := time.Now()
	for _, p := range r.pipes {
		p.ctx, p.r = ctx, r
		p.arm(now)
		go p.serve()
	}
}

// relay is the state two pipes share.
type relay struct {
	client, remote net.Conn
	o              RelayOptions
	pipes          [2]*pipe
	st             RelayStats
	last           atomic.Int64
	running        atomic.Int32
	once           sync.Once
	mu             sync.Mutex
	firstErr       error
	ctx            context.Context
	stop           func() bool
	then           func(RelayStats, error)
}

// closeBoth closes both connections once; a parked direction has no
// goroutine to notice its socket closing, so it is woken.
func (r *relay) closeBoth() {
	r.once.Do(func() {
		r.client.Close()
		r.remote.Close()
		unpark(r.pipes[Up])
		unpark(r.pipes[Down])
	})
}

// pipeDone records how a direction ended; the last one finishes the relay.
func (r *relay) pipeDone(err error) {
	if err != nil {
		r.mu.Lock()
		if r.firstErr == nil {
			r.firstErr = err
		}
		r.mu.Unlock()
		r.closeBoth()
	}
	if r.running.Add(-1) > 0 {
		return
	}
	r.stop()
	r.closeBoth()
	err = r.firstErr
	if err == nil && r.ctx.Err() != nil {
		err = r.ctx.Err()
	}
	r.then(RelayStats{Up: atomic.LoadInt64(&r.st.Up), Down: atomic.LoadInt64(&r.st.Down)}, err)
}

type pipe struct {
	src, dst net.Conn
	dir      Direction
	o        *RelayOptions
	last     *atomic.Int64
	count    *int64
	lim      *rate.Limiter
	lr       io.LimitedReader
	// rr reads src's socket when it is a TCP socket: chunks are read straight
	// into a pooled buffer taken only once data is there and written on from
	// the poller's read callback (one read and one write per small chunk),
	// until a full buffer shows a bulk transfer and the pipe switches to
	// splice.
	rr     readyRead
	splice bool
	// dstRaw writes to dst's socket without blocking from inside rr's
	// callback (nil when dst is not a TCP socket): wfn writes wbuf,
	// counting in wn and failing with werr.
	dstRaw syscall.RawConn
	wfn    func(fd uintptr) bool
	wbuf   []byte
	wn     int
	werr   error

	ctx context.Context
	r   *relay
	// active is when this direction last moved bytes; the read deadline on
	// src is armed for the earlier of the idle timeout and parking.
	active time.Time
	// pk is the direction's entry in the park set (its rc is rr's)
	pk parkEntry
}

// spliceBelow is the chunk size under which a splicing pipe goes back to
// copying (small chunks cost fewer system calls copied).
const spliceBelow = 16 << 10

func newPipe(src, dst net.Conn, dir Direction, o *RelayOptions, last *atomic.Int64, count *int64, lim *rate.Limiter) *pipe {
	p := &pipe{src: src, dst: dst, dir: dir, o: o, last: last, count: count, lim: lim}
	if tc, ok := src.(*net.TCPConn); ok && canReadReady {
		if rc, err := tc.SyscallConn(); err == nil {
			p.rr.init(rc, p.chunk)
			p.pk.rc = rc
		}
		if dc, ok := dst.(*net.TCPConn); ok {
			if rc, err := dc.SyscallConn(); err == nil {
				p.dstRaw, p.wfn = rc, p.writeNow
			}
		}
	}
	return p
}

// serve runs the direction in the calling goroutine until it ends (then
// calls done) or parks (then a later readiness event, the relay's teardown
// or the idle timer runs serve again in a new goroutine).
func (p *pipe) serve() {
	err := p.run(p.ctx)
	if err == errParked {
		return
	}
	p.r.pipeDone(err)
}

func (p *pipe) parkEntry() *parkEntry { return &p.pk }

// wakeAt is when the session's idle timeout runs out (measured from the
// last byte either way), zero without one.
func (p *pipe) wakeAt() time.Time {
	if p.o.IdleTimeout <= 0 {
		return time.Time{}
	}
	return time.Unix(0, p.last.Load()).Add(p.o.IdleTimeout)
}

// resume runs a parked direction again: the socket leaves the park set and
// the read deadline, expired or not, is armed afresh.
func (p *pipe) resume() {
	unregister(p)
	p.arm(time.Now())
	p.serve()
}

// parkAfter is how long a direction of a relay between TCP sockets moves
// nothing before it parks: its goroutine ends and the socket waits in the
// park set, so an idle session costs no goroutine stack. Negative disables
// parking (tests).
var parkAfter = tunable{def: time.Second}

// tunable is a duration with a default that tests may change while
// goroutines read it.
type tunable struct {
	def time.Duration
	v   atomic.Int64
}

func (t *tunable) get() time.Duration {
	if v := t.v.Load(); v != 0 {
		return time.Duration(v)
	}
	return t.def
}

// set changes the value; 0 restores the default.
func (t *tunable) set(d time.Duration) { t.v.Store(int64(d)) }

// errParked is run's result when the direction parked.
var errParked = errors.New("parked")

// deadlineFor is the read deadline for a direction last active at t: the
// earlier of the idle timeout (measured from the last byte either way) and
// parking (from this direction's last byte); zero when neither applies.
func (p *pipe) deadlineFor(now time.Time) time.Time {
	var d time.Time
	if p.o.IdleTimeout > 0 {
		d = time.Unix(0, p.last.Load()).Add(p.o.IdleTimeout)
	}
	if pa := parkAfter.get(); p.rr.rc != nil && pa > 0 {
		if pd := p.active.Add(pa); d.IsZero() || pd.Before(d) {
			d = pd
		}
	}
	return d
}

// arm sets src's read deadline for a direction (re)starting at now.
func (p *pipe) arm(now time.Time) {
	p.active = now
	if d := p.deadlineFor(now); !d.IsZero() {
		p.src.SetReadDeadline(d)
	}
}

// run copies src to dst until EOF (then half-closes dst) or an error, or
// until it parks (errParked). The read deadline is not moved per chunk: when
// it expires, run works out whether the session is idle, whether this
// direction should park, or when to look again.
func (p *pipe) run(ctx context.Context) error {
	for {
		n, err := p.step()
		if n > 0 {
			if werr := p.moved(ctx, n); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			// When the other direction has already ended, the relay closes
			// both sockets right after this, and the close sends dst its
			// FIN: a shutdown first would be a system call for nothing.
			if p.r.running.Load() > 1 {
				closeWrite(p.dst)
			}
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			now := time.Now()
			if p.o.IdleTimeout > 0 && now.Sub(time.Unix(0, p.last.Load())) >= p.o.IdleTimeout {
				return ErrIdle
			}
			if pa := parkAfter.get(); p.rr.rc != nil && pa > 0 && now.Sub(p.active) >= pa && park(p, now) {
				return errParked
			}
			d := p.deadlineFor(now)
			if !d.After(now) {
				p.active = now // could not park: look again in parkAfter
				d = p.deadlineFor(now)
			}
			p.src.SetReadDeadline(d)
			continue
		default:
			return err
		}
	}
}

// moved books n bytes that went through: activity, counters, and the
// rate limiter's wait.
func (p *pipe) moved(ctx context.Context, n int64) error {
	now := time.Now()
	p.active = now
	p.last.Store(now.UnixNano())
	atomic.AddInt64(p.count, n)
	if p.o.OnBytes != nil {
		p.o.OnBytes(p.dir, int(n))
	}
	if p.lim != nil {
		return waitN(ctx, p.lim, int(n))
	}
	return nil
}

// chunk writes what dst takes of one chunk rr read, without blocking (rr
// calls it with src's read lock held). A chunk written whole is booked and
// finished; one that dst did not take whole, one under a rate limit (whose
// wait blocks), and one that fills a whole buffer (a bulk transfer: the pipe
// goes on with splice) is left to step, unbooked.
func (p *pipe) chunk(b []byte) (written int, finished bool) {
	if p.lim != nil || p.dstRaw == nil {
		return 0, false
	}
	p.wbuf, p.wn, p.werr = b, 0, nil
	err := p.dstRaw.Write(p.wfn)
	written, p.wbuf = p.wn, nil
	if err != nil || p.werr != nil || written < len(b) {
		return written, false
	}
	if len(b) == bufSize { // dst is a TCP socket (dstRaw): splice from here
		p.splice = true
		return written, false
	}
	p.moved(p.ctx, int64(len(b))) // no limiter: cannot fail
	return written, true
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
	if p.rr.rc != nil && !p.splice {
		// Chunks dst takes at once are written and booked inside (p.chunk);
		// the rest of one it did not is written here, where blocking is
		// allowed, and booked by run.
		bp, n, written, rerr := p.rr.serve(int(min(limit, int64(bufSize))))
		if bp != nil {
			defer bufPool.Put(bp)
			if written < n {
				if _, werr := p.dst.Write((*bp)[written:n]); werr != nil {
					return int64(n), werr
				}
			}
			return int64(n), nil
		}
		if rerr == nil || rerr == io.EOF {
			return 0, rerr
		}
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: p.src.LocalAddr(), Addr: p.src.RemoteAddr(), Err: rerr}
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
