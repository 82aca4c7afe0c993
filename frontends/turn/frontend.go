// Package turn is sixgate's TURN server frontend (RFC 8656 over RFC 8489
// STUN): UDP, TCP and TLS listeners, long-term and TURN REST credentials,
// Allocate, Refresh, CreatePermission, ChannelBind, Send and Data indications,
// ChannelData, DONT-FRAGMENT, EVEN-PORT with reservations, address families
// (dual-stack allocations), ICMP relaying and RFC 6062 TCP relays. Every UDP
// allocation is a neutral datagram association and every TCP relay
// connection a neutral stream, opened through the backend the router picks,
// so a TURN client can be relayed directly or through an upstream proxy.
//
// The wire format lives in translate/turn; this package does the I/O and
// keeps the allocation state. It never trusts a client packet: every input is
// decoded by translate/turn's bounded parsers and per-packet handling
// recovers from panics.
package turn

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/stun"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// Protocol is the protocol label of this frontend.
const Protocol = "turn"

// maxPendingAllocates bounds the Allocate requests waiting for a backend at
// once; more are answered 508.
const maxPendingAllocates = 1024

// handoffGrace is how long a frontend's UDP allocations outlive the last
// ServePacket of the frontend: long enough for a reload's new instance to
// take the socket over, short enough that a removed frontend or a shutdown
// frees its allocations soon.
var handoffGrace = 3 * time.Second

// Frontend serves TURN clients.
type Frontend struct {
	name      string
	rt        *gateway.Runtime
	log       *slog.Logger
	clock     gateway.Clock
	users     *gateway.UserSet
	limits    gateway.Limits
	s         settings
	tls       *tls.Config
	tlsListen string
	eps       []gateway.Endpoint
	st        *store
	c         *counters
	sem       chan struct{}
}

var _ gateway.Frontend = (*Frontend)(nil)

// New builds the frontend from its configuration.
func New(env *gateway.Env, name string, c *Config) (*Frontend, error) {
	s, diags := c.compile()
	if diags.HasErrors() {
		return nil, fmt.Errorf("turn: %w", diags)
	}
	if s.realm == "" {
		return nil, errors.New("turn: realm is required")
	}
	f := &Frontend{
		name: name, rt: env.Runtime, log: env.Log, clock: env.Clock, limits: env.Limits, s: s,
		tlsListen: c.TLSListen, sem: make(chan struct{}, maxPendingAllocates),
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.clock == nil {
		f.clock = gateway.SystemClock{}
	}
	if c.Users != "" {
		us, ok := env.Users[c.Users]
		if !ok {
			return nil, fmt.Errorf("turn: no users %q", c.Users)
		}
		f.users = us
	}
	if c.TLS != nil {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("turn: tls: %w", err)
		}
		f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"stun.turn"}}
	}
	f.eps = []gateway.Endpoint{{Network: "udp", Address: c.Listen}, {Network: "tcp", Address: c.Listen}}
	if c.TLSListen != "" {
		f.eps = append(f.eps, gateway.Endpoint{Network: "tcp", Address: c.TLSListen})
	}
	state := env.State
	if state == nil {
		state = gateway.NewStateStore()
	}
	f.st = state.Get("turn/"+name, func() any { return newStore() }).(*store)
	f.c = newCounters(env.Metrics, name)
	return f, nil
}

// Name returns the frontend's name.
func (f *Frontend) Name() string { return f.name }

// Endpoints returns the UDP and TCP listeners (and the TLS listener).
func (f *Frontend) Endpoints() []gateway.Endpoint { return f.eps }

// transport is the client transport of a 5-tuple.
type transport uint8

const (
	transUDP transport = iota + 1
	transTCP
	transTLS
)

func (t transport) String() string {
	switch t {
	case transUDP:
		return "udp"
	case transTCP:
		return "tcp"
	case transTLS:
		return "tls"
	}
	return "unknown"
}

// fiveTuple identifies a client's transport flow (RFC 8656 §2): the client
// address, the server address the client used, and the transport.
type fiveTuple struct {
	tr     transport
	client netip.AddrPort
	server netip.AddrPort
}

// source is where a client packet came from and how to answer it. It is
// reused for every packet of a listener loop, so nothing may keep it.
type source struct {
	tuple fiveTuple
	ep    *udpEndpoint // UDP
	local netip.Addr   // UDP: the address the client sent to (wildcard sockets)
	sc    *streamConn  // TCP and TLS
	// ttl and tos are what the client's IP header held, -1 when unknown.
	ttl, tos int
	// handoff is the peer connection a ConnectionBind on this TCP or TLS
	// connection bound: ServeConn relays the connection raw from then on.
	handoff *tcpConn
	// batch says datagrams to peers may wait in their relay (UDP: the
	// datagrams of one read batch go out together) until held is flushed.
	batch bool
	held  gateway.HeldWrites
}

// sink returns the reply path of the source, for keeping.
func (s *source) sink() sink {
	if s.sc != nil {
		return s.sc
	}
	return &udpSink{ep: s.ep, to: s.tuple.client, local: s.local}
}

// reply sends a control message (a response) to the client.
func (s *source) reply(b []byte) {
	if s.sc != nil {
		s.sc.send(b, true)
		return
	}
	s.ep.writeTo(b, s.tuple.client, s.local)
}

// sink is a kept path to a client.
type sink interface {
	// send writes one message; a control message may wait for room on a
	// stream, a data message is dropped instead. It reports success.
	send(b []byte, control bool) bool
	// stream reports whether messages are framed on a byte stream
	// (ChannelData padded).
	stream() bool
	// closeAfterFlush ends a stream connection once queued messages are
	// written; a no-op on UDP.
	closeAfterFlush()
}

type udpSink struct {
	ep    *udpEndpoint
	to    netip.AddrPort
	local netip.Addr
}

func (u *udpSink) send(b []byte, _ bool) bool { return u.ep.writeTo(b, u.to, u.local) == nil }
func (u *udpSink) stream() bool               { return false }
func (u *udpSink) closeAfterFlush()           {}

// sendBatch sends the messages of sb as send would, and returns how many
// were sent; those from the first the kernel refuses on go one at a time.
func (u *udpSink) sendBatch(sb *gateway.SendBatch) int {
	var oobBuf [64]byte
	n, err := sb.Send(u.ep.pc, u.to, u.ep.oob(oobBuf[:0], u.local))
	if err != nil {
		for i := n; i < sb.Len(); i++ {
			if u.send(sb.Msg(i), false) {
				n++
			}
		}
	}
	return n
}

// ServePacket serves the UDP listener until ctx ends: STUN, ChannelData and
// Send indications from clients. It also runs the frontend's janitor, and
// takes over the allocations a previous instance (before a reload) left.
func (f *Frontend) ServePacket(ctx context.Context, pc net.PacketConn, ep gateway.Endpoint) error {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return errors.New("turn: listener is not a udp socket")
	}
	e := newUDPEndpoint(uc)
	f.st.adopt()
	defer f.st.leave()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.janitor(ctx)
	}()
	defer wg.Wait()
	stop := gateway.KickOnDone(ctx, func() { uc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	bufs := make([][]byte, endpointBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16)
	}
	m := new(stun.Message)
	src := &source{ep: e, batch: true}
	// The datagrams of a read batch wait in their relays until the batch
	// is done, when they go out with one system call per relay.
	get, put := func() [][]byte { return bufs }, src.held.Flush
	handle := func(_ int, b []byte, from netip.AddrPort, oob []byte) {
		local, ttl, tos := parseCmsgs(oob)
		if !local.IsValid() {
			local = e.local
		}
		src.tuple = fiveTuple{tr: transUDP, client: unmapAP(from), server: netip.AddrPortFrom(local, e.port)}
		src.local, src.ttl, src.tos = local, ttl, tos
		if !e.wildcard {
			src.local = netip.Addr{}
		}
		f.handlePacket(ctx, b, src, m)
	}
	for {
		err := gateway.ServeUDP(ctx, uc, get, put, 256, handle)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
	}
}

// endpointBatch is how many datagrams the client-facing socket reads at
// once.
const endpointBatch = 8

func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// handlePacket handles one client datagram: ChannelData, or a STUN message.
func (f *Frontend) handlePacket(ctx context.Context, b []byte, src *source, m *stun.Message) {
	defer f.recoverPacket()
	switch tt.Demux(b) {
	case tt.KindChannelData:
		cd, err := tt.ParseChannelData(b)
		if err != nil {
			f.c.drop(f.c.malformed)
			return
		}
		f.fromClientChannel(cd.Number, cd.Data, src)
	case tt.KindReservedChannel:
		if !f.s.legacyChannels {
			f.c.drop(f.c.notTURN)
			return
		}
		cd, err := parseLegacyChannelData(b)
		if err != nil {
			f.c.drop(f.c.malformed)
			return
		}
		f.fromClientChannel(cd.Number, cd.Data, src)
	case tt.KindSTUN:
		// What the batch holds goes out first: data the client sent
		// before a request (a Refresh that ends the allocation, say)
		// goes before the request is handled, and a held Send
		// indication's data lives in m, which Decode overwrites.
		src.held.Flush()
		if err := tt.Decode(b, m); err != nil {
			f.c.drop(f.c.malformed)
			f.rt.HandshakeFailed(f.name, "bad_stun")
			return
		}
		f.handleSTUN(ctx, m, src)
	default:
		f.c.drop(f.c.notTURN)
	}
}

// repanic makes the per-packet recovery re-panic, so tests and fuzzing see
// the bug instead of a log line.
var repanic = false

func (f *Frontend) recoverPacket() {
	if r := recover(); r != nil {
		if repanic {
			panic(r)
		}
		f.log.Error("turn: panic on a client packet", "panic", fmt.Sprint(r))
		f.rt.HandshakeFailed(f.name, "panic")
	}
}

// ServeConn serves one TCP or TLS client connection (RFC 8656 §7: STUN
// messages and padded ChannelData back to back). An allocation made on it
// lives as long as the connection.
func (f *Frontend) ServeConn(ctx context.Context, conn net.Conn, ep gateway.Endpoint) {
	tr := transTCP
	c := conn
	if f.tls != nil && ep.Address == f.tlsListen {
		tc := tls.Server(conn, f.tls)
		tc.SetDeadline(time.Now().Add(f.limits.HandshakeTimeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			f.rt.HandshakeFailed(f.name, "tls")
			f.log.Debug("tls handshake failed", "client", conn.RemoteAddr(), "error", err)
			return
		}
		tc.SetDeadline(time.Time{})
		c, tr = tc, transTLS
	}
	sc := newStreamConn(c)
	src := &source{sc: sc, ttl: -1, tos: -1}
	src.tuple = fiveTuple{tr: tr, client: unmapAP(gateway.AddrPortOf(conn.RemoteAddr())), server: unmapAP(gateway.AddrPortOf(conn.LocalAddr()))}
	defer func() {
		if a := f.st.get(src.tuple); a != nil {
			a.close(nil)
		}
		sc.close()
		sc.wait()
	}()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var fr interface {
		Next() (tt.Frame, error)
		Buffered() []byte
	}
	if f.s.legacyChannels {
		fr = newLegacyFramer(c)
	} else {
		fr = tt.NewFramer(c, nil)
	}
	m := new(stun.Message)
	allocated := false
	c.SetReadDeadline(time.Now().Add(f.limits.HandshakeTimeout))
	for {
		frame, err := fr.Next()
		if err != nil {
			if ctx.Err() == nil && !isEOF(err) {
				f.rt.HandshakeFailed(f.name, "bad_frame")
				f.log.Debug("tcp client stream ended", "client", src.tuple.client, "error", err)
			}
			return
		}
		switch frame.Kind {
		case tt.KindSTUN:
			f.handleFrame(ctx, frame.Raw, src, m)
		case tt.KindChannelData:
			f.handleChannelFrame(frame.Channel, frame.Data, src)
		}
		if h := src.handoff; h != nil {
			// RFC 6062 data connection: raw bytes from now on. The
			// ConnectionBind success goes out first, then what the
			// client sent after it, then the relay.
			early := append([]byte(nil), fr.Buffered()...)
			sc.detach()
			sc.wait()
			c.SetReadDeadline(time.Time{})
			f.relayData(ctx, h, c, early, src.tuple.tr.String()+":"+src.tuple.client.String())
			return
		}
		// The handshake deadline counts from the connect: requests that
		// make no allocation (Binding, failed Allocates) do not extend it.
		has := f.st.get(src.tuple) != nil
		switch {
		case has && !allocated:
			c.SetReadDeadline(time.Time{})
		case !has && allocated:
			c.SetReadDeadline(time.Now().Add(f.limits.HandshakeTimeout))
		}
		allocated = has
		select {
		case <-sc.done:
			return
		default:
		}
	}
}

func (f *Frontend) handleFrame(ctx context.Context, raw []byte, src *source, m *stun.Message) {
	defer f.recoverPacket()
	if err := tt.Decode(raw, m); err != nil {
		f.c.drop(f.c.malformed)
		f.rt.HandshakeFailed(f.name, "bad_stun")
		return
	}
	f.handleSTUN(ctx, m, src)
}

func (f *Frontend) handleChannelFrame(n uint16, data []byte, src *source) {
	defer f.recoverPacket()
	f.fromClientChannel(n, data, src)
}

func isEOF(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, os.ErrDeadlineExceeded)
}

// counters are the frontend's metric series, resolved once.
type counters struct {
	up, down, bytesUp, bytesDown                           prometheus.Counter
	connRefused, connCapacity, tcpRelay                    prometheus.Counter
	malformed, notTURN, noAlloc, noChannel, noPermission   prometheus.Counter
	denied, tooBig, queueFull, sendFailed, ttlExpired, fam prometheus.Counter
	icmpReported, icmpNotRelayed, icmpNoPermission         prometheus.Counter
}

func newCounters(m *gateway.Metrics, name string) *counters {
	if m == nil {
		m = gateway.NewMetrics("none")
	}
	d := func(r string) prometheus.Counter { return m.DatagramsDropped.WithLabelValues(name, r) }
	i := func(r string) prometheus.Counter { return m.ICMPErrors.WithLabelValues(name, r) }
	return &counters{
		up: m.Datagrams.WithLabelValues(name, "up"), down: m.Datagrams.WithLabelValues(name, "down"),
		bytesUp: m.Bytes.WithLabelValues(name, "up"), bytesDown: m.Bytes.WithLabelValues(name, "down"),
		malformed: d("malformed"), notTURN: d("not_turn"), noAlloc: d("no_allocation"),
		noChannel: d("no_channel"), noPermission: d("no_permission"), denied: d("denied"),
		tooBig: d("too_big"), queueFull: d("queue_full"), sendFailed: d("send_failed"),
		ttlExpired: d("ttl_expired"), fam: d("family_mismatch"),
		icmpReported: i("reported"), icmpNotRelayed: i("not_relayed"), icmpNoPermission: i("no_permission"),
		// Peers refused at a TCP relay count as BIND sessions that failed.
		connRefused:  m.Sessions.WithLabelValues(name, Protocol, gateway.CmdBind.String(), gateway.ReasonNotAllowed.Label()),
		connCapacity: m.Sessions.WithLabelValues(name, Protocol, gateway.CmdBind.String(), gateway.ReasonCapacityExhausted.Label()),
		tcpRelay:     d("tcp_relay"),
	}
}

// drop counts a dropped datagram.
func (c *counters) drop(x prometheus.Counter) { x.Inc() }

func (c *counters) relayed(up bool, n int) {
	if up {
		c.up.Inc()
		c.bytesUp.Add(float64(n))
	} else {
		c.down.Inc()
		c.bytesDown.Add(float64(n))
	}
}

// randomKey returns a fresh per-process secret.
func randomKey() (k [32]byte) {
	if _, err := rand.Read(k[:]); err != nil {
		panic("turn: crypto/rand failed: " + err.Error())
	}
	return k
}
