package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Clock tells time. Tests inject one to expire timers quickly.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// Env is what a plugin constructor receives.
type Env struct {
	Log      *slog.Logger
	Metrics  *Metrics
	Clock    Clock
	Resolver Resolver
	Own      *OwnAddrs
	Tracker  *Tracker
	// State keeps plug-in state across reloads.
	State *StateStore
	// Lifecycle tells plug-ins whether the gateway is draining.
	Lifecycle *Lifecycle
	Users     map[string]*UserSet
	Limits    Limits
	// Via is the backend a backend reaches its server through (backends
	// only); nil means plain sockets.
	Via Backend
	// Runtime dispatches frontends' requests (frontends only).
	Runtime *Runtime
	// Registry lets a frontend build a sibling handler (a SOCKS 6 frontend
	// serving SOCKS 5 on the same port).
	Registry *Registry
}

// Runtime is one generation of the configuration, built and ready: backends,
// routes and frontends. A reload builds a new Runtime; sessions keep the one
// they started with.
type Runtime struct {
	Config    *Config
	Router    *Router
	Backends  map[string]Backend
	Frontends []Frontend
	Users     map[string]*UserSet
	Limits    Limits
	Log       *slog.Logger
	Metrics   *Metrics
	Clock     Clock
	Resolver  Resolver
	Own       *OwnAddrs
	Tracker   *Tracker
	State     *StateStore
	Lifecycle *Lifecycle

	// feLimits are each frontend's effective limits (its own limits block
	// over the top-level one).
	feLimits map[string]*Limits

	holdMu  sync.Mutex
	holds   int
	retired bool
	closed  bool
}

// Deps are the process-wide pieces a Runtime is built with.
type Deps struct {
	Log       *slog.Logger
	Metrics   *Metrics
	Clock     Clock
	Resolver  Resolver
	Own       *OwnAddrs
	Tracker   *Tracker
	State     *StateStore
	Lifecycle *Lifecycle
	Registry  *Registry
}

// Build constructs the backends (via targets first), the routes and the
// frontends of a validated Config. On error everything built is closed.
func Build(cfg *Config, d Deps) (rt *Runtime, err error) {
	if d.Clock == nil {
		d.Clock = SystemClock{}
	}
	if d.Own == nil {
		d.Own = NewOwnAddrs()
	}
	if d.Tracker == nil {
		d.Tracker = NewTracker()
	}
	if d.State == nil {
		d.State = NewStateStore()
	}
	if d.Lifecycle == nil {
		d.Lifecycle = &Lifecycle{}
	}
	if d.Resolver == nil {
		d.Resolver = NewResolver(cfg.Resolver)
	}
	rt = &Runtime{
		Config: cfg, Backends: map[string]Backend{}, feLimits: map[string]*Limits{}, Users: cfg.Users, Limits: cfg.Limits,
		Log: d.Log, Metrics: d.Metrics, Clock: d.Clock, Resolver: d.Resolver, Own: d.Own, Tracker: d.Tracker,
		State: d.State, Lifecycle: d.Lifecycle,
	}
	defer func() {
		if err != nil {
			rt.closeBackends()
		}
	}()
	byName := map[string]PluginConfig{}
	for _, b := range cfg.Backends {
		byName[b.Name] = b
	}
	for _, name := range cfg.BackendOrder {
		pc := byName[name]
		env := rt.env(d.Registry)
		env.Log = d.Log.With("backend", name)
		if bc, ok := pc.Config.(BackendConfig); ok && bc.Via().Value != "" {
			env.Via = rt.Backends[bc.Via().Value]
		}
		b, err := d.Registry.backends[pc.Type].New(env, name, pc.Config)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", name, err)
		}
		rt.Backends[name] = b
	}
	routes, diags := CompileRoutes(cfg.Routes, mapKeys(rt.Backends), frontendNames(cfg), cfg.Users)
	if diags.HasErrors() {
		return nil, diags
	}
	for _, r := range routes {
		if !r.Deny {
			r.Backend = rt.Backends[r.BackendName]
		}
	}
	rt.Router = NewRouter(routes, d.Own)
	for _, fc := range cfg.Frontends {
		env := rt.env(d.Registry)
		env.Log = d.Log.With("frontend", fc.Name)
		env.Runtime = rt
		if l, ok := fc.Config.(interface{ FrontendLimits() *LimitsConfig }); ok {
			env.Limits, _ = l.FrontendLimits().Compile(cfg.Limits)
		}
		lim := env.Limits
		rt.feLimits[fc.Name] = &lim
		f, err := d.Registry.frontends[fc.Type].New(env, fc.Name, fc.Config)
		if err != nil {
			return nil, fmt.Errorf("frontend %q: %w", fc.Name, err)
		}
		rt.Frontends = append(rt.Frontends, f)
		if sr, ok := fc.Config.(SiblingRequester); ok {
			for _, spec := range sr.Siblings(fc.Name) {
				pl, ok := d.Registry.frontends[spec.Type]
				if !ok || pl.Sibling == nil {
					return nil, fmt.Errorf("frontend %q: no %s handler to share its port", fc.Name, spec.Type)
				}
				spec.Limits = env.Limits
				sib, err := pl.Sibling(env, spec)
				if err != nil {
					return nil, fmt.Errorf("frontend %q: %s sibling: %w", fc.Name, spec.Type, err)
				}
				rt.Frontends = append(rt.Frontends, sib)
			}
		}
	}
	return rt, nil
}

func (rt *Runtime) env(reg *Registry) *Env {
	return &Env{Log: rt.Log, Metrics: rt.Metrics, Clock: rt.Clock, Resolver: rt.Resolver, Own: rt.Own,
		Tracker: rt.Tracker, State: rt.State, Lifecycle: rt.Lifecycle, Users: rt.Users, Limits: rt.Limits, Registry: reg}
}

func mapKeys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func frontendNames(cfg *Config) map[string]bool {
	out := map[string]bool{}
	for _, f := range cfg.Frontends {
		out[f.Name] = true
	}
	return out
}

// LimitsFor returns a frontend's effective limits (the top-level ones for
// an unknown name).
func (rt *Runtime) LimitsFor(frontend string) *Limits {
	if l, ok := rt.feLimits[frontend]; ok {
		return l
	}
	return &rt.Limits
}

// closeBackends closes every backend that holds resources.
func (rt *Runtime) closeBackends() {
	for _, b := range rt.Backends {
		if c, ok := b.(io.Closer); ok {
			c.Close()
		}
	}
}

// Retire closes the runtime's backends once its last session has ended
// (at once when none is open).
func (rt *Runtime) Retire() {
	rt.holdMu.Lock()
	rt.retired = true
	idle := rt.holds == 0 && !rt.closed
	rt.closed = rt.closed || idle
	rt.holdMu.Unlock()
	if idle {
		rt.closeBackends()
	}
}

// Hold marks a session as using this runtime; call the returned function
// when it ends.
func (rt *Runtime) Hold() func() {
	rt.holdMu.Lock()
	rt.holds++
	rt.holdMu.Unlock()
	return onceFunc(func() {
		rt.holdMu.Lock()
		rt.holds--
		idle := rt.retired && rt.holds == 0 && !rt.closed
		rt.closed = rt.closed || idle
		rt.holdMu.Unlock()
		if idle {
			rt.closeBackends()
		}
	})
}

func (rt *Runtime) observeDial(backend string, start time.Time, err error) {
	if rt.Metrics == nil {
		return
	}
	rt.Metrics.BackendDial.WithLabelValues(backend, ReasonOf(err).Label()).Observe(time.Since(start).Seconds())
}

// Connect routes a stream request and dials it through the chosen backend.
func (rt *Runtime) Connect(ctx context.Context, req *StreamRequest) (*Stream, *Route, error) {
	m := Match{Command: CmdConnect, User: req.Principal.User, Frontend: req.Principal.Frontend}
	route, pol, err := rt.Router.StreamResolving(ctx, rt.Resolver, m, req.Dest)
	if err != nil {
		return nil, route, err
	}
	req.Policy = pol
	start := time.Now()
	st, err := route.Backend.Dial(ctx, req)
	rt.observeDial(route.BackendName, start, err)
	return st, route, err
}

// Bind routes a BIND request and opens the listening socket.
func (rt *Runtime) Bind(ctx context.Context, req *BindRequest) (Binding, *Route, error) {
	b, release, route, err := openCounted(rt, CmdBind, &req.Principal, &req.Policy, "bind", func(be Backend) (Binding, error) {
		return be.Listen(ctx, req)
	})
	if err != nil {
		return nil, route, err
	}
	return &trackedBinding{Binding: b, release: release}, route, nil
}

// Associate routes a datagram association (cmd is CmdUDP or
// CmdTURNAllocate) and opens it.
func (rt *Runtime) Associate(ctx context.Context, cmd Command, req *AssocRequest) (Association, *Route, error) {
	kind := "udp"
	if cmd == CmdTURNAllocate {
		kind = "turn"
	}
	a, release, route, err := openCounted(rt, cmd, &req.Principal, &req.Policy, kind, func(be Backend) (Association, error) {
		return be.Associate(ctx, req)
	})
	if err != nil {
		return nil, route, err
	}
	return &trackedAssoc{Association: a, release: release}, route, nil
}

// openCounted routes a BIND or an association, takes a slot from the
// tracker's association limits (TURN allocations count separately), sets
// the route's policy, opens it through the backend and counts it in the
// active gauge under kind. release gives the slot back and moves the gauge,
// once.
func openCounted[T any](rt *Runtime, cmd Command, p *Principal, pol *Policy, kind string, open func(Backend) (T, error)) (v T, release func(), route *Route, err error) {
	route, *pol, err = rt.Router.Association(Match{Command: cmd, User: p.User, Frontend: p.Frontend})
	if err != nil {
		return v, nil, route, err
	}
	free, err := rt.Tracker.AcquireAssoc(rt.LimitsFor(p.Frontend), p.User, cmd == CmdTURNAllocate)
	if err != nil {
		rt.limitHit(p.Frontend, err)
		return v, nil, route, err
	}
	start := time.Now()
	v, err = open(route.Backend)
	rt.observeDial(route.BackendName, start, err)
	if err != nil {
		free()
		return v, nil, route, err
	}
	frontend := p.Frontend
	rt.gauge(frontend, kind, 1)
	return v, onceFunc(func() { free(); rt.gauge(frontend, kind, -1) }), route, nil
}

func (rt *Runtime) gauge(frontend, kind string, d float64) {
	if rt.Metrics != nil {
		rt.Metrics.AssocActive.WithLabelValues(frontend, kind).Add(d)
	}
}

// limitHit counts a limit rejection.
func (rt *Runtime) limitHit(frontend string, err error) {
	var le *LimitError
	if rt.Metrics != nil && errors.As(err, &le) {
		rt.Metrics.LimitRejections.WithLabelValues(frontend, le.Limit).Inc()
	}
}

// LimitHit counts a limit rejection a frontend detected itself.
func (rt *Runtime) LimitHit(frontend string, err error) { rt.limitHit(frontend, err) }

type trackedBinding struct {
	Binding
	release func()
}

func (b *trackedBinding) Close() error {
	err := b.Binding.Close()
	b.release()
	return err
}

type trackedAssoc struct {
	Association
	release func()
}

func (a *trackedAssoc) Close() error {
	err := a.Association.Close()
	a.release()
	return err
}

// AccessRecord is one access-log line, written when a session closes.
type AccessRecord struct {
	Frontend string
	Protocol string
	Command  Command
	User     string
	Client   string
	Dest     string
	Route    *Route
	Bytes    RelayStats
	Start    time.Time
	Err      error
}

// AccessLog writes the record and the session metrics.
func (rt *Runtime) AccessLog(r AccessRecord) {
	reason := ReasonOf(r.Err)
	if errors.Is(r.Err, ErrIdle) || errors.Is(r.Err, context.Canceled) {
		reason = ReasonNone
	}
	route, backend := "", ""
	if r.Route != nil {
		route, backend = r.Route.Label(), r.Route.BackendName
	}
	d := time.Since(r.Start)
	attrs := []slog.Attr{
		slog.String("frontend", r.Frontend), slog.String("protocol", r.Protocol),
		slog.String("command", r.Command.String()), slog.String("user", r.User),
		slog.String("client", r.Client), slog.String("dest", r.Dest),
		slog.String("route", route), slog.String("backend", backend),
		slog.Int64("bytes_up", r.Bytes.Up), slog.Int64("bytes_down", r.Bytes.Down),
		slog.Duration("duration", d), slog.String("result", reason.Label()),
	}
	if r.Err != nil && reason != ReasonNone {
		attrs = append(attrs, slog.String("error", r.Err.Error()))
	}
	rt.Log.LogAttrs(context.Background(), slog.LevelInfo, "session closed", attrs...)
	if rt.Metrics != nil {
		rt.Metrics.Sessions.WithLabelValues(r.Frontend, r.Protocol, r.Command.String(), reason.Label()).Inc()
		rt.Metrics.SessionSeconds.WithLabelValues(r.Frontend, r.Protocol).Observe(d.Seconds())
	}
}

// RelayStream relays a client connection and a backend stream with the
// session's limits: the stream idle timeout, the user's bandwidth limiters,
// and byte metrics under the frontend's name. Both connections are closed
// when it returns.
func (rt *Runtime) RelayStream(ctx context.Context, p *Principal, l *Limits, client, remote net.Conn) (RelayStats, error) {
	return Relay(ctx, UnwrapConn(client), UnwrapConn(remote), rt.relayOptions(p, l))
}

// RelayStreamThen is RelayStream for the last step of a connection's
// handler. When ctx carries the connection's Tail it returns at once: the
// relay goes on without a waiting goroutine and, when it ends, calls then
// and runs the Tail. The caller must return without touching the
// connections and leave its clean-up to the Tail. Without a Tail it relays
// in the caller and calls then before returning.
func (rt *Runtime) RelayStreamThen(ctx context.Context, p *Principal, l *Limits, client, remote net.Conn, then func(RelayStats, error)) {
	t := TailOf(ctx)
	if t == nil {
		then(rt.RelayStream(ctx, p, l, client, remote))
		return
	}
	t.detach()
	RelayThen(ctx, UnwrapConn(client), UnwrapConn(remote), rt.relayOptions(p, l), func(st RelayStats, err error) {
		then(st, err)
		t.run()
	})
}

func (rt *Runtime) relayOptions(p *Principal, l *Limits) RelayOptions {
	up, down := rt.Tracker.Limiters(l, p.User)
	o := RelayOptions{IdleTimeout: l.StreamIdleTimeout, UpLimit: up, DownLimit: down}
	if rt.Metrics != nil {
		cu := rt.Metrics.Bytes.WithLabelValues(p.Frontend, "up")
		cd := rt.Metrics.Bytes.WithLabelValues(p.Frontend, "down")
		o.OnBytes = func(d Direction, n int) {
			if d == Up {
				cu.Add(float64(n))
			} else {
				cd.Add(float64(n))
			}
		}
	}
	return o
}

// HandshakeFailed counts a failed handshake under a short reason label.
func (rt *Runtime) HandshakeFailed(frontend, reason string) {
	if rt.Metrics != nil {
		rt.Metrics.HandshakeFailures.WithLabelValues(frontend, reason).Inc()
	}
}

// AuthResult counts an authentication attempt ("success", "failure",
// "rate_limited", "session").
func (rt *Runtime) AuthResult(frontend, result string) {
	if rt.Metrics != nil {
		rt.Metrics.Auth.WithLabelValues(frontend, result).Inc()
	}
}

// SessionActive moves the active-session gauge.
func (rt *Runtime) SessionActive(frontend, protocol string, d float64) {
	if rt.Metrics != nil {
		rt.Metrics.SessionsActive.WithLabelValues(frontend, protocol).Add(d)
	}
}
