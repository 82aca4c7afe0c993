package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Refuser is implemented by frontends that can answer a connection refused
// by a gateway limit in their own protocol before it is closed.
type Refuser interface {
	RefuseConn(conn net.Conn, err error)
}

// handler is one frontend serving one endpoint.
type handler struct {
	fe Frontend
	ep Endpoint
	rt *Runtime
}

// dispatch is the handler table of one TCP address: one handler per claimed
// first byte, and a catch-all for the rest. Without claims no byte is peeked.
type dispatch struct {
	all     *handler
	byFirst [256]*handler
	shared  bool
}

// tcpListener is a bound TCP listener whose handler table can be swapped by
// a reload without a moment unbound.
type tcpListener struct {
	addr  string
	ln    net.Listener
	table atomic.Pointer[dispatch]
	done  chan struct{}
}

// udpSocket is a bound UDP socket and the frontend serving it.
type udpSocket struct {
	addr   string
	pc     *net.UDPConn
	h      *handler
	cancel context.CancelFunc
	done   chan struct{}
}

// Listeners owns the gateway's bound sockets: opened by address, kept across
// reloads, handed to frontends.
type Listeners struct {
	log      *slog.Logger
	own      *OwnAddrs
	tracker  *Tracker
	metrics  *Metrics
	sessions *sessionSet

	mu  sync.Mutex
	tcp map[string]*tcpListener
	udp map[string]*udpSocket

	workers *workers
}

// sessionSet tracks open client connections for the drain.
type sessionSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed bool // closeAll ran: no session is added any more
}

// add records c as a session; false once closeAll ran (the caller closes
// c), so that no wg.Add races the shutdown's wg.Wait.
func (s *sessionSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *sessionSet) remove(c net.Conn) {
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.wg.Done()
	}
	s.mu.Unlock()
}

func (s *sessionSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *sessionSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func newListeners(log *slog.Logger, own *OwnAddrs, tr *Tracker, m *Metrics) *Listeners {
	return &Listeners{log: log, own: own, tracker: tr, metrics: m,
		sessions: &sessionSet{conns: map[net.Conn]struct{}{}},
		tcp:      map[string]*tcpListener{}, udp: map[string]*udpSocket{},
		workers: newWorkers(64, time.Second)}
}

// apply binds what rt's frontends need, swaps handler tables, starts packet
// frontends, and only then closes what is no longer needed. ctx is the
// session context (cancelled at the end of a drain).
func (l *Listeners) apply(ctx context.Context, rt *Runtime) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	tables := map[string]*dispatch{}
	udpWant := map[string]*handler{}
	for _, fe := range rt.Frontends {
		for _, ep := range fe.Endpoints() {
			h := &handler{fe: fe, ep: ep, rt: rt}
			switch ep.Network {
			case "tcp":
				t := tables[ep.Address]
				if t == nil {
					t = &dispatch{}
					tables[ep.Address] = t
				}
				if len(ep.FirstBytes) == 0 {
					if t.all != nil {
						return fmt.Errorf("listen %s: both %q and %q serve every stream", ep.Address, t.all.fe.Name(), fe.Name())
					}
					t.all = h
					continue
				}
				t.shared = true
				for _, b := range ep.FirstBytes {
					if t.byFirst[b] != nil {
						return fmt.Errorf("listen %s: first byte %#x served by %q and %q", ep.Address, b, t.byFirst[b].fe.Name(), fe.Name())
					}
					t.byFirst[b] = h
				}
			case "udp":
				if _, dup := udpWant[ep.Address]; dup {
					return fmt.Errorf("listen udp %s: two frontends want it", ep.Address)
				}
				udpWant[ep.Address] = h
			default:
				return fmt.Errorf("endpoint network %q unknown", ep.Network)
			}
		}
	}
	// Bind new sockets first; on failure close only what this call opened.
	var opened []func()
	fail := func(err error) error {
		for _, c := range opened {
			c()
		}
		return err
	}
	newTCP := map[string]*tcpListener{}
	for addr := range tables {
		if _, ok := l.tcp[addr]; ok {
			continue
		}
		ln, err := listenTCP(addr)
		if err != nil {
			return fail(err)
		}
		tl := &tcpListener{addr: addr, ln: ln, done: make(chan struct{})}
		newTCP[addr] = tl
		opened = append(opened, func() { ln.Close() })
	}
	newUDP := map[string]*net.UDPConn{}
	for addr := range udpWant {
		if _, ok := l.udp[addr]; ok {
			continue
		}
		pc, err := listenUDP(addr)
		if err != nil {
			return fail(err)
		}
		newUDP[addr] = pc
		opened = append(opened, func() { pc.Close() })
	}
	// Swap handler tables and start new listeners.
	for addr, t := range tables {
		tl := l.tcp[addr]
		if tl == nil {
			tl = newTCP[addr]
			l.tcp[addr] = tl
			l.own.Add(AddrPortOf(tl.ln.Addr()))
			tl.table.Store(t)
			go l.acceptLoop(ctx, tl)
			continue
		}
		tl.table.Store(t)
	}
	for addr, h := range udpWant {
		us := l.udp[addr]
		if us == nil {
			us = &udpSocket{addr: addr, pc: newUDP[addr]}
			l.udp[addr] = us
			l.own.Add(AddrPortOf(us.pc.LocalAddr()))
		} else if us.h.fe == h.fe {
			us.h = h
			continue
		} else {
			us.stop()
		}
		us.h = h
		l.servePacket(ctx, us)
	}
	// Close what the new configuration no longer has.
	for addr, tl := range l.tcp {
		if _, keep := tables[addr]; !keep {
			l.own.Remove(AddrPortOf(tl.ln.Addr()))
			tl.ln.Close()
			delete(l.tcp, addr)
		}
	}
	for addr, us := range l.udp {
		if _, keep := udpWant[addr]; !keep {
			us.stop()
			l.own.Remove(AddrPortOf(us.pc.LocalAddr()))
			us.pc.Close()
			delete(l.udp, addr)
		}
	}
	return nil
}

func (l *Listeners) servePacket(ctx context.Context, us *udpSocket) {
	pctx, cancel := context.WithCancel(ctx)
	us.cancel = cancel
	us.done = make(chan struct{})
	us.pc.SetReadDeadline(time.Time{})
	h := us.h
	go func(done chan struct{}) {
		defer close(done)
		if err := h.fe.ServePacket(pctx, us.pc, h.ep); err != nil && pctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
			l.log.Error("packet frontend stopped", "frontend", h.fe.Name(), "listen", us.addr, "error", err)
		}
	}(us.done)
}

// stop ends the frontend loop on the socket without closing it.
func (us *udpSocket) stop() {
	if us.cancel == nil {
		return
	}
	us.cancel()
	us.pc.SetReadDeadline(time.Unix(1, 0))
	<-us.done
	us.cancel = nil
}

// closeStreams closes the TCP listeners (no new sessions); packet
// endpoints stay for the associations that use them.
func (l *Listeners) closeStreams() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for addr, tl := range l.tcp {
		l.own.Remove(AddrPortOf(tl.ln.Addr()))
		tl.ln.Close()
		delete(l.tcp, addr)
	}
}

// closeAll closes every listener and stops packet frontends.
func (l *Listeners) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.workers.stop()
	for addr, tl := range l.tcp {
		l.own.Remove(AddrPortOf(tl.ln.Addr()))
		tl.ln.Close()
		delete(l.tcp, addr)
	}
	for addr, us := range l.udp {
		us.stop()
		l.own.Remove(AddrPortOf(us.pc.LocalAddr()))
		us.pc.Close()
		delete(l.udp, addr)
	}
}

// Addrs returns the bound addresses by "network address" as configured.
func (l *Listeners) Addrs() map[string]net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]net.Addr{}
	for a, tl := range l.tcp {
		out["tcp "+a] = tl.ln.Addr()
	}
	for a, us := range l.udp {
		out["udp "+a] = us.pc.LocalAddr()
	}
	return out
}

func (l *Listeners) acceptLoop(ctx context.Context, tl *tcpListener) {
	defer close(tl.done)
	var backoff time.Duration
	for {
		c, err := tl.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
				l.log.Warn("accept failed", "listen", tl.addr, "error", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			l.log.Error("accept failed", "listen", tl.addr, "error", err)
			return
		}
		backoff = 0
		l.workers.run(func() { l.serveConn(ctx, tl, c) })
	}
}

func (l *Listeners) serveConn(ctx context.Context, tl *tcpListener, c net.Conn) {
	accepted := time.Now()
	t := tl.table.Load()
	client := AddrPortOf(c.RemoteAddr())
	var h *handler
	var conn net.Conn = c
	if t.shared {
		// Peek the first byte under the handshake deadline of the
		// frontends sharing the port; the deadline is set once, here, and
		// not restarted after the peek.
		var anyH *handler
		for _, x := range &t.byFirst {
			if x != nil {
				anyH = x
				break
			}
		}
		c.SetDeadline(accepted.Add(handshakeTimeout(anyH)))
		br := bufio.NewReaderSize(c, handshakeReadAhead)
		b, err := br.Peek(1)
		if err != nil {
			reason := "first_byte"
			if errors.Is(err, os.ErrDeadlineExceeded) {
				reason = "timeout"
			}
			l.handshakeFail(anyH, reason)
			c.Close()
			return
		}
		h = t.byFirst[b[0]]
		if h == nil {
			h = t.all
		}
		if h == nil {
			// No frontend speaks this: answer like the first frontend
			// (SOCKS 6 answers a version mismatch with 0x06).
			h = anyH
		}
		conn = &peekedConn{Conn: c, r: br}
		if d := handshakeTimeout(h); d < handshakeTimeout(anyH) {
			c.SetDeadline(accepted.Add(d))
		}
	} else {
		h = t.all
		c.SetDeadline(accepted.Add(handshakeTimeout(h)))
	}
	release, err := l.tracker.AcquireConn(&h.rt.Limits, client.Addr())
	if err != nil {
		h.rt.limitHit(h.fe.Name(), err)
		if r, ok := h.fe.(Refuser); ok {
			c.SetDeadline(time.Now().Add(time.Second))
			r.RefuseConn(conn, err)
		}
		c.Close()
		return
	}
	if !l.sessions.add(c) {
		release() // shutting down: accepted just before the listener closed
		c.Close()
		return
	}
	done := h.rt.Hold()
	// The clean-up runs when the handler returns, or when the relay it
	// detached ends (see Tail).
	ctx, tail := WithTail(ctx)
	tail.Defer(func() {
		c.Close()
		l.sessions.remove(c)
		release()
		done()
	})
	defer tail.Finish()
	h.fe.ServeConn(ctx, conn, h.ep)
}

// handshakeTimeout is the endpoint's handshake timeout, or the runtime's
// when the frontend gave none.
func handshakeTimeout(h *handler) time.Duration {
	if h.ep.HandshakeTimeout > 0 {
		return h.ep.HandshakeTimeout
	}
	if h.rt.Limits.HandshakeTimeout > 0 {
		return h.rt.Limits.HandshakeTimeout
	}
	return DefaultLimits().HandshakeTimeout
}

func (l *Listeners) handshakeFail(h *handler, reason string) {
	if l.metrics != nil && h != nil {
		l.metrics.HandshakeFailures.WithLabelValues(h.fe.Name(), reason).Inc()
	}
}

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.r.Buffered() > 0 {
		return p.r.Read(b)
	}
	return p.Conn.Read(b)
}

// Unwrap returns the underlying connection once nothing peeked remains, so
// the stream relay can splice it.
func (p *peekedConn) Unwrap() (net.Conn, bool) {
	return p.Conn, p.r.Buffered() == 0
}

// CloseWrite half-closes the underlying connection.
func (p *peekedConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// withBuffered returns c with the bytes r read ahead from it in front: a
// frontend that read its handshake through r keeps what the client sent
// after it. With nothing buffered it returns c itself.
func withBuffered(c net.Conn, r *bufio.Reader) net.Conn {
	if r.Buffered() == 0 {
		return c
	}
	return &peekedConn{Conn: c, r: r}
}

// UnwrapConn returns the plain connection under a gateway wrapper once the
// wrapper holds no buffered bytes, so relays can splice; otherwise c itself.
func UnwrapConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ Unwrap() (net.Conn, bool) }); ok {
		if inner, ok := u.Unwrap(); ok {
			return inner
		}
	}
	return c
}
