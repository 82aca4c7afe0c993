package turn

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// RFC 6062 TCP relays (turn.md §6). A TCP allocation's relayed address is a
// listening socket opened through the backend the routes pick for
// turn-allocate (Backend.Listen); a Connect dials the peer as a stream
// (Runtime.Connect, routed as `connect`), and a peer connecting to the
// listener is announced with a ConnectionAttempt. Either way the peer
// connection waits, unread, for the client to open a data connection and
// send ConnectionBind with its CONNECTION-ID; after the success response the
// data connection and the peer connection are relayed raw by the gateway's
// stream relay.

// connectTimeout bounds a Connect's dial (RFC 6062 §5.2: at least 30 s),
// on top of the backend's own dial timeout.
const connectTimeout = 30 * time.Second

// maxAcceptFailures is how many Accept errors in a row end the accept loop
// of a TCP allocation (a one-shot backend binding fails every Accept after
// its first peer).
const maxAcceptFailures = 5

// newConnectionID returns a random CONNECTION-ID; tests replace it to get
// the §9 vectors' values.
var newConnectionID = func() tt.ConnectionID {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("turn: crypto/rand failed: " + err.Error())
	}
	return tt.ConnectionID(binary.BigEndian.Uint32(b[:]))
}

// tcpRelay is the relayed transport address of a TCP allocation and its
// peer connections.
type tcpRelay struct {
	family tt.Family
	// addr is the relayed address reported to the client; source is the
	// binding's own address, the Source of the allocation's dials.
	addr    netip.AddrPort
	source  netip.AddrPort
	binding gateway.Binding
	release func()
	// cancel ends the accept loop.
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	byPeer map[netip.AddrPort]*tcpConn
}

// connState is where a peer connection is in its life.
type connState uint8

const (
	connNew     connState = iota // being dialled, or just accepted
	connPending                  // established, waiting for ConnectionBind
	connBound                    // relayed to a data connection
	connClosed
)

// tcpConn is one peer connection of a TCP allocation.
type tcpConn struct {
	a    *allocation
	peer netip.AddrPort
	// cmd is CmdConnect for a Connect, CmdBind for a peer that connected.
	cmd   gateway.Command
	start time.Time
	id    tt.ConnectionID

	mu     sync.Mutex
	state  connState
	route  *gateway.Route
	stream *gateway.Stream
	client net.Conn
	timer  *time.Timer
	cancel context.CancelFunc
}

// reserve adds c under its peer address: 446 when that peer has a pending or
// active connection, 508 when the allocation has max connections.
func (tr *tcpRelay) reserve(c *tcpConn, max int) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	switch {
	case tr.closed:
		return &tt.CodeError{Code: stun.CodeAllocMismatch, Err: errors.New("turn: allocation closed")}
	case tr.byPeer[c.peer] != nil:
		return &tt.CodeError{Code: stun.CodeConnAlreadyExists, Err: fmt.Errorf("turn: a connection to %s exists", c.peer)}
	case len(tr.byPeer) >= max:
		return &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: errors.New("turn: too many tcp connections")}
	}
	tr.byPeer[c.peer] = c
	return nil
}

// forget removes c, so its peer may be connected again.
func (tr *tcpRelay) forget(c *tcpConn) {
	tr.mu.Lock()
	if tr.byPeer[c.peer] == c {
		delete(tr.byPeer, c.peer)
	}
	tr.mu.Unlock()
}

func (tr *tcpRelay) isClosed() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.closed
}

// closeAll stops listening and closes every peer and data connection.
func (tr *tcpRelay) closeAll() {
	tr.mu.Lock()
	if tr.closed {
		tr.mu.Unlock()
		return
	}
	tr.closed = true
	conns := make([]*tcpConn, 0, len(tr.byPeer))
	for _, c := range tr.byPeer {
		conns = append(conns, c)
	}
	tr.mu.Unlock()
	if tr.cancel != nil {
		tr.cancel()
	}
	tr.binding.Close()
	for _, c := range conns {
		c.abort()
	}
	tr.release()
}

// setCancel records the cancel function of c's dial; false when c was
// closed already.
func (c *tcpConn) setCancel(cancel context.CancelFunc) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != connNew {
		return false
	}
	c.cancel = cancel
	return true
}

// established makes c wait for its ConnectionBind; false when c was closed
// meanwhile.
func (c *tcpConn) established(st *gateway.Stream, route *gateway.Route) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.route = route
	if c.state != connNew {
		return false
	}
	c.state, c.stream = connPending, st
	c.timer = time.AfterFunc(c.a.f.s.bindTimeout, c.expire)
	return true
}

// bind takes c for a data connection; false unless it is pending.
func (c *tcpConn) bind() bool {
	c.mu.Lock()
	if c.state != connPending {
		c.mu.Unlock()
		return false
	}
	c.state = connBound
	c.timer.Stop()
	c.mu.Unlock()
	c.a.f.st.removeConn(c)
	return true
}

// attach records the data connection; false when the allocation closed c
// meanwhile.
func (c *tcpConn) attach(client net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != connBound {
		return false
	}
	c.client = client
	return true
}

// expire closes a connection that waited too long for its ConnectionBind.
func (c *tcpConn) expire() {
	c.mu.Lock()
	if c.state != connPending {
		c.mu.Unlock()
		return
	}
	c.state = connClosed
	st := c.stream
	c.mu.Unlock()
	st.Conn.Close()
	c.a.f.st.removeConn(c)
	c.a.tcp.forget(c)
	c.a.f.log.Debug("tcp connection not bound in time", "user", c.a.user, "peer", c.peer, "id", uint32(c.id))
	c.log("", gateway.NewError(gateway.ReasonTimeout, "turn", fmt.Errorf("no connectionbind within %s", c.a.f.s.bindTimeout)), gateway.RelayStats{})
}

// abort closes c because its allocation ends. A pending connection is logged
// here; a dialling one by its dial, a bound one by its relay.
func (c *tcpConn) abort() {
	c.mu.Lock()
	prev := c.state
	c.state = connClosed
	st, client, cancel, timer := c.stream, c.client, c.cancel, c.timer
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if timer != nil {
		timer.Stop()
	}
	if st != nil {
		st.Conn.Close()
	}
	if client != nil {
		client.Close()
	}
	c.a.f.st.removeConn(c)
	if prev == connPending {
		c.log("", nil, gateway.RelayStats{})
	}
}

// log writes the connection's access-log line. client is the data
// connection's address, "" for the allocation's control connection.
func (c *tcpConn) log(client string, err error, bytes gateway.RelayStats) {
	a := c.a
	if client == "" {
		client = a.tuple.tr.String() + ":" + a.tuple.client.String()
	}
	c.mu.Lock()
	route := c.route
	c.mu.Unlock()
	a.rt.AccessLog(gateway.AccessRecord{
		Frontend: a.f.name, Protocol: Protocol, Command: c.cmd, User: a.user, Client: client,
		Dest: c.peer.String(), Route: route, Bytes: bytes, Start: c.start, Err: err,
	})
}

// addConn gives c a unique CONNECTION-ID and indexes it for ConnectionBind.
func (st *store) addConn(c *tcpConn) tt.ConnectionID {
	st.mu.Lock()
	defer st.mu.Unlock()
	for {
		id := newConnectionID()
		if _, taken := st.conns[id]; id != 0 && !taken {
			c.id = id
			st.conns[id] = c
			return id
		}
	}
}

// conn returns the connection waiting for a ConnectionBind with id.
func (st *store) conn(id tt.ConnectionID) *tcpConn {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.conns[id]
}

func (st *store) removeConn(c *tcpConn) {
	st.mu.Lock()
	if st.conns[c.id] == c {
		delete(st.conns, c.id)
	}
	st.mu.Unlock()
}

func (a *allocation) principal() gateway.Principal {
	return gateway.Principal{User: a.user, Frontend: a.f.name, Protocol: Protocol, Client: a.tuple.client}
}

// openTCP opens the listening socket of a TCP allocation through the
// backend the routes pick for turn-allocate, as Runtime.Bind would for a
// `bind` (which routes as `bind`, not as `turn-allocate`): the association
// and per-user allocation limits apply, and the gauge counts it as a TURN
// relay. It returns the context of the accept loop.
func (j *allocJob) openTCP(ctx context.Context, a *allocation, result *tt.AllocateResult) (context.Context, error) {
	f := j.f
	fam := j.req.RelayFamily()
	if j.req.AdditionalFamily != 0 {
		ae := tt.AddressErrorFor(j.req.AdditionalFamily, &tt.CodeError{Code: stun.CodeAddrFamilyNotSupported,
			Err: errors.New("turn: dual-stack tcp allocations are not supported")})
		result.AddressError = &ae
	}
	p := a.principal()
	route, pol, err := f.rt.Router.Association(gateway.Match{Command: gateway.CmdTURNAllocate, User: j.user, Frontend: f.name})
	a.route = route
	if err != nil {
		return nil, tt.CodeErrorFor(stun.MethodAllocate, err)
	}
	release, err := f.rt.Tracker.AcquireAssoc(&f.rt.Limits, j.user, true)
	if err != nil {
		f.rt.LimitHit(f.name, err)
		return nil, tt.CodeErrorFor(stun.MethodAllocate, err)
	}
	bind := gateway.Addr{IP: netip.IPv4Unspecified()}
	if fam == tt.FamilyIPv6 {
		bind.IP = netip.IPv6Unspecified()
	}
	req := &gateway.BindRequest{Bind: bind, Principal: p, Policy: pol,
		Options: gateway.StackOptions{Backlog: gateway.Want(uint16(f.s.maxTCPConns))}}
	start := time.Now()
	b, err := route.Backend.Listen(ctx, req)
	f.observeDial(route.BackendName, start, err)
	if err != nil {
		release()
		return nil, tt.CodeErrorFor(stun.MethodAllocate, err)
	}
	relay, err := tcpRelayAddr(b.Addr(), fam, j.tuple)
	if err != nil {
		b.Close()
		release()
		return nil, err
	}
	f.gauge(1)
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.tcp = &tcpRelay{family: fam, addr: relay, binding: b, cancel: cancel,
		release: func() { release(); f.gauge(-1) }, byPeer: map[netip.AddrPort]*tcpConn{}}
	if ba := b.Addr(); !ba.IsName() && ba.IP.IsValid() {
		a.tcp.source = ba.AddrPort()
	}
	result.Relayed = []netip.AddrPort{relay}
	return actx, nil
}

// tcpRelayAddr returns the relayed address to report for a backend's
// listening address. An unspecified address (a listener on every address)
// is reported as the address the client reached the server on, when that is
// of the relay's family.
func tcpRelayAddr(addr gateway.Addr, fam tt.Family, tuple fiveTuple) (netip.AddrPort, error) {
	if addr.IsName() || !addr.IP.IsValid() {
		return netip.AddrPort{}, &tt.CodeError{Code: stun.CodeServerError, Err: errors.New("turn: backend gave no relay address")}
	}
	ip := addr.IP
	if fam == tt.FamilyIPv4 {
		ip = ip.Unmap()
	}
	if ip.IsUnspecified() {
		if s := tuple.server.Addr(); s.IsValid() && !s.IsUnspecified() && tt.FamilyOf(s) == fam {
			ip = s
		}
	}
	if tt.FamilyOf(ip) != fam {
		return netip.AddrPort{}, &tt.CodeError{Code: stun.CodeAddrFamilyNotSupported, Err: fmt.Errorf("turn: relay %s is not %s", ip, fam)}
	}
	return netip.AddrPortFrom(ip, addr.Port), nil
}

// observeDial records how long a backend took, as the runtime does.
func (f *Frontend) observeDial(backend string, start time.Time, err error) {
	if f.rt.Metrics != nil {
		f.rt.Metrics.BackendDial.WithLabelValues(backend, gateway.ReasonOf(err).Label()).Observe(time.Since(start).Seconds())
	}
}

// gauge moves the frontend's count of open relays.
func (f *Frontend) gauge(d float64) {
	if f.rt.Metrics != nil {
		f.rt.Metrics.AssocActive.WithLabelValues(f.name, "turn").Add(d)
	}
}

// connect serves an RFC 6062 Connect (turn.md §6): the checks here in the
// digest's order (400, 443, 403, 446), then the dial in its own goroutine,
// which answers with CONNECTION-ID or 447 (or 403 when the `connect` route
// refuses). RFC 6062 installs no permission: the peer must have one already
// (turn.md §11's engine choice), else 403.
func (f *Frontend) connect(ctx context.Context, a *allocation, m *stun.Message, src *source, o tt.ResponseOptions) {
	fail := func(err error) { f.replyErr(src, m, err, o) }
	tr := a.tcp
	if tr == nil {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: connect needs a tcp allocation")})
		return
	}
	peer, err := tt.ParseConnect(m)
	if err != nil {
		fail(err)
		return
	}
	if peer.Port() == 0 {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: connect to port 0")})
		return
	}
	if err := a.checkPeer(peer); err != nil {
		fail(err)
		return
	}
	a.mu.RLock()
	permitted := a.permitted(peer.Addr(), f.clock.Now().UnixNano())
	a.mu.RUnlock()
	if !permitted {
		fail(&tt.CodeError{Code: stun.CodeForbidden, Err: fmt.Errorf("turn: no permission for %s", peer.Addr())})
		return
	}
	dest := gateway.Addr{IP: peer.Addr(), Port: peer.Port()}
	if _, _, err := f.rt.Router.Stream(gateway.Match{Command: gateway.CmdConnect, User: a.user, Frontend: f.name}, dest); err != nil {
		fail(tt.CodeErrorFor(stun.MethodConnect, err))
		return
	}
	c := &tcpConn{a: a, peer: peer, cmd: gateway.CmdConnect, start: time.Now()}
	if err := tr.reserve(c, f.s.maxTCPConns); err != nil {
		fail(err)
		return
	}
	raw := append([]byte(nil), m.Raw...)
	go a.dial(context.WithoutCancel(ctx), c, raw, o)
}

// dial connects c's peer and answers the Connect request raw.
func (a *allocation) dial(parent context.Context, c *tcpConn, raw []byte, o tt.ResponseOptions) {
	f := a.f
	tr := a.tcp
	m := new(stun.Message)
	m.Raw = raw
	if err := m.Decode(); err != nil {
		tr.forget(c)
		return
	}
	ctx, cancel := context.WithTimeout(parent, connectTimeout)
	defer cancel()
	if !c.setCancel(cancel) {
		tr.forget(c)
		return
	}
	req := &gateway.StreamRequest{Dest: gateway.Addr{IP: c.peer.Addr(), Port: c.peer.Port()}, Source: tr.source, Principal: a.principal()}
	st, route, err := f.rt.Connect(ctx, req)
	if err == nil {
		id := f.st.addConn(c)
		if !c.established(st, route) {
			// The allocation closed while the dial was under way.
			f.st.removeConn(c)
			st.Conn.Close()
			tr.forget(c)
			c.log("", nil, gateway.RelayStats{})
			return
		}
		resp, berr := tt.NewConnectSuccess(m, id, o)
		if berr != nil {
			c.abort()
			tr.forget(c)
			f.replyConnect(a, m, &tt.CodeError{Code: stun.CodeServerError, Err: berr}, o)
			return
		}
		f.log.Debug("tcp connection established", "user", a.user, "peer", c.peer, "id", uint32(id))
		a.sink.send(resp.Raw, true)
		return
	}
	c.mu.Lock()
	c.state = connClosed
	c.route = route
	c.mu.Unlock()
	tr.forget(c)
	f.log.Debug("connect failed", "user", a.user, "peer", c.peer, "error", err)
	f.replyConnect(a, m, tt.CodeErrorFor(stun.MethodConnect, err), o)
	c.log("", err, gateway.RelayStats{})
}

// replyConnect answers a Connect with the error response for err.
func (f *Frontend) replyConnect(a *allocation, m *stun.Message, err error, o tt.ResponseOptions) {
	if resp, berr := tt.NewErrorFor(m, err, o); berr == nil {
		a.sink.send(resp.Raw, true)
	}
}

// acceptLoop takes the peers that connect to a TCP allocation's relayed
// address until the allocation closes.
func (a *allocation) acceptLoop(ctx context.Context, tr *tcpRelay) {
	defer a.wg.Done()
	fails := 0
	for {
		st, err := tr.binding.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || tr.isClosed() {
				return
			}
			if fails++; fails >= maxAcceptFailures {
				a.f.log.Debug("tcp relay stops accepting", "user", a.user, "relay", tr.addr, "error", err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		fails = 0
		a.accepted(st)
	}
}

// accepted announces a peer that connected to the relayed address with a
// ConnectionAttempt (turn.md §6), or closes it: no permission for its IP,
// denied by the routes, a connection from the same address already, or the
// allocation's connection limit.
func (a *allocation) accepted(st *gateway.Stream) {
	f := a.f
	peer := st.Peer.AddrPort()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	refuse := func(why string, counter func()) {
		st.Conn.Close()
		counter()
		f.log.Debug("tcp peer refused", "user", a.user, "relay", a.tcp.addr, "peer", peer, "reason", why)
	}
	if st.Peer.IsName() || !peer.IsValid() {
		refuse("no peer address", f.c.connRefused.Inc)
		return
	}
	a.mu.RLock()
	permitted := a.permitted(peer.Addr(), f.clock.Now().UnixNano())
	a.mu.RUnlock()
	if !permitted {
		refuse("no permission", f.c.connRefused.Inc)
		return
	}
	if err := a.checkPeer(peer); err != nil {
		refuse("denied", f.c.connRefused.Inc)
		return
	}
	c := &tcpConn{a: a, peer: peer, cmd: gateway.CmdBind, start: time.Now()}
	if err := a.tcp.reserve(c, f.s.maxTCPConns); err != nil {
		counter := f.c.connRefused.Inc
		if tt.CodeOf(err) == stun.CodeInsufficientCapacity {
			counter = f.c.connCapacity.Inc
		}
		refuse(err.Error(), counter)
		return
	}
	id := f.st.addConn(c)
	if !c.established(st, a.route) {
		f.st.removeConn(c)
		a.tcp.forget(c)
		st.Conn.Close()
		return
	}
	var tid [stun.TransactionIDSize]byte
	rand.Read(tid[:])
	ind, err := tt.NewConnectionAttempt(tid, id, peer)
	if err != nil {
		c.abort()
		a.tcp.forget(c)
		return
	}
	f.log.Debug("tcp peer connected", "user", a.user, "peer", peer, "id", uint32(id))
	a.sink.send(ind.Raw, true)
}

// connectionBind serves an RFC 6062 ConnectionBind on a new TCP or TLS
// connection (turn.md §6): 400 on UDP, on a connection that holds an
// allocation, or for a CONNECTION-ID that is unknown, expired or taken; 441
// for another user than the allocation's. On success src.handoff makes
// ServeConn relay the connection raw once the response is written.
func (f *Frontend) connectionBind(m *stun.Message, src *source, user string, o tt.ResponseOptions) {
	fail := func(err error) { f.replyErr(src, m, err, o) }
	if src.sc == nil {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: connectionbind needs a tcp or tls connection")})
		return
	}
	if _, pending := f.st.pendingTID(src.tuple); pending || f.st.get(src.tuple) != nil {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: connectionbind on a control connection")})
		return
	}
	id, err := tt.ParseConnectionBind(m)
	if err != nil {
		fail(err)
		return
	}
	c := f.st.conn(id)
	if c == nil {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: fmt.Errorf("turn: unknown connection-id %#08x", uint32(id))})
		return
	}
	if c.a.user != user {
		fail(&tt.CodeError{Code: stun.CodeWrongCredentials, Err: errors.New("turn: connection belongs to another user")})
		return
	}
	if !c.bind() {
		fail(&tt.CodeError{Code: stun.CodeBadRequest, Err: fmt.Errorf("turn: connection-id %#08x is not pending", uint32(id))})
		return
	}
	resp, err := tt.NewSuccess(m, o)
	if err != nil {
		c.abort()
		c.a.tcp.forget(c)
		fail(&tt.CodeError{Code: stun.CodeServerError, Err: err})
		return
	}
	src.reply(resp.Raw)
	src.handoff = c
}

// relayData relays a bound data connection and its peer connection: first
// the bytes that followed the ConnectionBind, then both ways with the
// gateway's stream relay (half-close, idle timeout, bandwidth, byte
// metrics). It logs the connection when it ends.
func (f *Frontend) relayData(ctx context.Context, c *tcpConn, client net.Conn, early []byte, clientAddr string) {
	if !c.attach(client) {
		client.Close()
		c.a.tcp.forget(c)
		c.log(clientAddr, nil, gateway.RelayStats{})
		return
	}
	peer := c.stream.Conn
	f.rt.SessionActive(f.name, Protocol, 1)
	defer f.rt.SessionActive(f.name, Protocol, -1)
	var stats gateway.RelayStats
	var err error
	if len(early) > 0 {
		peer.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		n, werr := peer.Write(early)
		peer.SetWriteDeadline(time.Time{})
		stats.Up = int64(n)
		f.c.bytesUp.Add(float64(n))
		if werr != nil {
			err = fmt.Errorf("turn: early data to the peer: %w", werr)
			client.Close()
			peer.Close()
		}
	}
	if err == nil {
		var rs gateway.RelayStats
		p := c.a.principal()
		rs, err = f.rt.RelayStream(ctx, &p, &f.limits, client, peer)
		stats.Up += rs.Up
		stats.Down += rs.Down
	}
	c.mu.Lock()
	if c.state == connClosed {
		// The allocation ended and closed both connections: not a
		// failure of this one.
		err = nil
	}
	c.state = connClosed
	c.mu.Unlock()
	c.a.tcp.forget(c)
	c.log(clientAddr, err, stats)
}
