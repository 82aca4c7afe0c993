package socks6

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// healthWindow is how long a failed dial to the upstream keeps Health
// failing (unless a later dial succeeds).
const healthWindow = 30 * time.Second

// teardownTimeout bounds the session teardown Close sends.
const teardownTimeout = 2 * time.Second

// Backend relays associations through an upstream SOCKS 6 proxy: streams
// with CONNECT, listening sockets with BIND, datagram associations with UDP
// ASSOCIATE. It is safe for concurrent use; all requests share the
// Client's session.
type Backend struct {
	name         string
	log          *slog.Logger
	clock        gateway.Clock
	client       *Client
	server       gateway.Addr
	resolveLocal bool
	resolver     gateway.Resolver
	closed       atomic.Bool
	// via is the backend the upstream is reached through, if any.
	via gateway.Backend
	// udpServer is the upstream's UDP relay endpoint (udpRelay parsed)
	// and udpOver how datagrams travel to it.
	udpServer string
	udpRelay  gateway.Addr
	udpOver   UDPTransport
	resv      reservations

	healthMu  sync.Mutex
	lastErr   error
	lastErrAt time.Time
	failing   bool
}

var (
	_ gateway.Backend        = (*Backend)(nil)
	_ gateway.HealthReporter = (*Backend)(nil)
	_ io.Closer              = (*Backend)(nil)
)

// Plugin returns the backend plug-in for the registry.
func Plugin() gateway.BackendPlugin {
	return gateway.BackendPlugin{
		NewConfig: func() any { return &Config{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Backend, error) {
			return New(env, name, cfg.(*Config))
		},
	}
}

// New builds the backend called name from its block. env.Log, env.Clock
// and env.Resolver are used when set; env.Via, when set, is the backend the
// upstream is reached through (the upstream's address is the operator's
// and is not policy-checked).
func New(env *gateway.Env, name string, cfg *Config) (*Backend, error) {
	if env == nil {
		env = &gateway.Env{}
	}
	cc, err := cfg.clientConfig()
	if err != nil {
		return nil, err
	}
	server, err := gateway.ParseAddr(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("socks6 backend: server: %w", err)
	}
	b := &Backend{
		name: name, log: env.Log, clock: env.Clock, server: server,
		resolveLocal: cfg.Resolve == "local", resolver: env.Resolver,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.clock == nil {
		b.clock = gateway.SystemClock{}
	}
	if b.resolver == nil {
		b.resolver = net.DefaultResolver
	}
	b.udpServer = cfg.UDPServer
	if b.udpServer == "" {
		b.udpServer = cfg.Server
	}
	if b.udpRelay, err = gateway.ParseAddr(b.udpServer); err != nil {
		return nil, fmt.Errorf("socks6 backend: udp_server: %w", err)
	}
	if b.udpOver, err = parseUDPOver(cfg.UDPOver); err != nil {
		return nil, fmt.Errorf("socks6 backend: udp_over: %w", err)
	}
	if cfg.ViaBackend != "" && env.Via == nil {
		return nil, fmt.Errorf("socks6 backend: via %q is not built", cfg.ViaBackend)
	}
	if via := env.Via; via != nil {
		b.via = via
		cc.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			st, err := via.Dial(ctx, &gateway.StreamRequest{Dest: server})
			if err != nil {
				return nil, fmt.Errorf("via %s: %w", via.Name(), err)
			}
			return st.Conn, nil
		}
	}
	cc.Log = b.log
	if b.client, err = NewClient(cc); err != nil {
		return nil, err
	}
	b.client.onDial = b.recordDial
	return b, nil
}

// Name returns the backend block's name.
func (b *Backend) Name() string { return b.name }

// Client returns the backend's SOCKS 6 client (for its counters).
func (b *Backend) Client() *Client { return b.client }

func (b *Backend) checkOpen(op string) error {
	if b.closed.Load() {
		return fail(gateway.ReasonGeneral, op, net.ErrClosed)
	}
	return nil
}

// Dial opens a stream to req.Dest through the upstream with CONNECT. The
// initial data travels as 0-RTT initial data inside the Request exchange
// (beyond 16 KiB the rest follows as false-start data), req.Options are
// requested on the proxy–remote leg and the upstream's echo becomes
// Stream.Options. An IP destination is checked with req.Policy before
// anything is sent; with resolve = "local" a name is resolved here and each
// address checked, otherwise the name goes to the upstream.
func (b *Backend) Dial(ctx context.Context, req *gateway.StreamRequest) (*gateway.Stream, error) {
	if err := b.checkOpen("dial"); err != nil {
		return nil, err
	}
	pol := gateway.PolicyOrAll(req.Policy)
	dest := req.Dest
	legs := s6.Legs{Remote: req.Options}
	if !dest.IsName() {
		if err := allow(pol, dest); err != nil {
			return nil, err
		}
		return b.connect(ctx, dest, req.InitialData, legs)
	}
	if !b.resolveLocal {
		return b.connect(ctx, dest, req.InitialData, legs)
	}
	ips, err := b.resolver.LookupNetIP(ctx, "ip", dest.Name)
	if err != nil {
		return nil, fail(gateway.Classify(err), "resolve "+dest.Name, err)
	}
	// The addresses are tried one after another, not raced.
	if legs.Remote.HappyEyeballs.Wanted() {
		legs.Remote.HappyEyeballs.Unsupport()
	}
	var lastErr, denied error
	for _, ip := range ips {
		a := gateway.Addr{IP: ip.Unmap(), Port: dest.Port}
		if err := allow(pol, a); err != nil {
			denied = err
			continue
		}
		st, err := b.connect(ctx, a, req.InitialData, legs)
		if err == nil {
			return st, nil
		}
		lastErr = err
		if ctx.Err() != nil || !addressSpecific(err) {
			break
		}
	}
	if lastErr == nil {
		if denied == nil {
			denied = fmt.Errorf("%s has no address", dest.Name)
		}
		return nil, fail(gateway.ReasonNotAllowed, "dial", denied)
	}
	return nil, lastErr
}

func (b *Backend) connect(ctx context.Context, dest gateway.Addr, initial []byte, legs s6.Legs) (*gateway.Stream, error) {
	o := &ConnectOptions{InitialData: initial, Legs: legs}
	if len(initial) > s6.MaxInitialData {
		o.InitialData, o.FalseStart = initial[:s6.MaxInitialData], initial[s6.MaxInitialData:]
	}
	c, err := b.client.Connect(ctx, dest, o)
	if err != nil {
		return nil, err
	}
	return &gateway.Stream{Conn: c.Conn, Bound: c.Bound, Peer: dest, Options: c.Legs.Remote}, nil
}

// allow checks an IP address with the policy.
func allow(pol gateway.Policy, a gateway.Addr) error {
	if !a.IP.IsValid() {
		return fail(gateway.ReasonNotAllowed, "policy", fmt.Errorf("%s is not an IP address", a))
	}
	if err := pol.Allow(netip.AddrPortFrom(a.IP.Unmap(), a.Port)); err != nil {
		return fail(gateway.ReasonNotAllowed, "policy", err)
	}
	return nil
}

// addressSpecific reports whether the upstream's failure concerns the one
// address tried, so that the next address of a name may work.
func addressSpecific(err error) bool {
	var re *ReplyError
	if !errors.As(err, &re) {
		return false
	}
	switch re.Code.Reason() {
	case gateway.ReasonRefused, gateway.ReasonHostUnreachable, gateway.ReasonNetUnreachable,
		gateway.ReasonTimeout, gateway.ReasonAddrTypeNotSupported, gateway.ReasonTTLExpired:
		return true
	}
	return false
}

// Listen opens a listening socket on the upstream with BIND; req.Options
// (Listen Backlog, MPTCP) are requested on the proxy–remote leg. Every peer
// is checked with req.Policy: a denied peer is closed and, with a backlog,
// the next one awaited.
func (b *Backend) Listen(ctx context.Context, req *gateway.BindRequest) (gateway.Binding, error) {
	if err := b.checkOpen("listen"); err != nil {
		return nil, err
	}
	bnd, err := b.client.Bind(ctx, req.Bind, &BindOptions{Legs: s6.Legs{Remote: req.Options}})
	if err != nil {
		return nil, err
	}
	return &binding{b: bnd, pol: gateway.PolicyOrAll(req.Policy), log: b.log}, nil
}

// binding adapts a Binding to gateway.Binding.
type binding struct {
	b   *Binding
	pol gateway.Policy
	log *slog.Logger
}

func (x *binding) Addr() gateway.Addr                  { return x.b.Addr }
func (x *binding) Options() gateway.StackOptions       { return x.b.Legs.Remote }
func (x *binding) Close() error                        { return x.b.Close() }
func (x *binding) allow(peer gateway.Addr) (err error) { return allow(x.pol, peer) }

func (x *binding) Accept(ctx context.Context) (*gateway.Stream, error) {
	for {
		c, err := x.b.Accept(ctx)
		if err != nil {
			return nil, err
		}
		if err := x.allow(c.Peer); err != nil {
			c.Close()
			x.log.Info("bind peer denied", "peer", c.Peer.String(), "error", err)
			if x.b.Backlog() {
				continue
			}
			return nil, err
		}
		return &gateway.Stream{Conn: c.Conn, Bound: x.b.Addr, Peer: c.Peer, Options: x.b.Legs.Remote}, nil
	}
}

// recordDial keeps the outcome of a connection attempt to the upstream for
// Health, and logs when the upstream becomes unreachable or reachable
// again.
func (b *Backend) recordDial(err error) {
	if errors.Is(err, context.Canceled) {
		return // the caller gave up; says nothing about the upstream
	}
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if err == nil {
		if b.failing {
			b.log.Info("upstream reachable again", "server", b.server.String())
		}
		b.lastErr, b.failing = nil, false
		return
	}
	b.lastErr, b.lastErrAt = err, b.clock.Now()
	if !b.failing {
		b.failing = true
		b.log.Error("upstream unreachable", "server", b.server.String(), "error", err)
	}
}

// Health returns the last error dialing the upstream if it happened in the
// last 30 seconds and no dial succeeded since, or nil.
func (b *Backend) Health() error {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if b.lastErr != nil && b.clock.Now().Sub(b.lastErrAt) < healthWindow {
		return fmt.Errorf("socks6 backend: upstream %s: %w", b.server, b.lastErr)
	}
	return nil
}

// Close tears the upstream session down (bounded by two seconds) and makes
// later requests fail. Streams, bindings and associations already open stay
// open.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	if err := b.client.Teardown(ctx); err != nil {
		b.log.Debug("session teardown failed", "error", err)
	}
	return nil
}
