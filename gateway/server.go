package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server runs the gateway: the current Runtime, the listeners, the admin
// HTTP listener, reloads and the drain.
type Server struct {
	log      *slog.Logger
	level    *slog.LevelVar
	metrics  *Metrics
	registry *Registry
	deps     Deps

	ctx    context.Context // sessions; cancelled at the end of the drain
	cancel context.CancelFunc

	mu        sync.Mutex
	rt        *Runtime
	listeners *Listeners
	admin     *http.Server
	adminAddr string
	adminLn   net.Listener
	ready     atomic.Bool
	draining  atomic.Bool
}

// ServerOptions configure NewServer.
type ServerOptions struct {
	Log      *slog.Logger
	Level    *slog.LevelVar
	Metrics  *Metrics
	Registry *Registry
	Clock    Clock
	Resolver Resolver
}

// NewServer returns a server that has not started.
func NewServer(o ServerOptions) *Server {
	if o.Level == nil {
		o.Level = new(slog.LevelVar)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics("dev")
	}
	own := NewOwnAddrs()
	tr := NewTracker()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		log: o.Log, level: o.Level, metrics: o.Metrics, registry: o.Registry,
		deps:      Deps{Log: o.Log, Metrics: o.Metrics, Clock: o.Clock, Resolver: o.Resolver, Own: own, Tracker: tr, State: NewStateStore(), Lifecycle: &Lifecycle{}, Registry: o.Registry},
		ctx:       ctx,
		cancel:    cancel,
		listeners: newListeners(o.Log, own, tr, o.Metrics),
	}
}

// Start builds the runtime of cfg, binds every listener and the admin
// listener, and starts serving.
func (s *Server) Start(cfg *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLogConfig(cfg)
	if err := s.startAdmin(cfg.Admin); err != nil {
		return err
	}
	rt, err := s.build(cfg)
	if err != nil {
		s.stopAdmin()
		return err
	}
	if err := s.listeners.apply(s.ctx, rt); err != nil {
		rt.closeBackends()
		s.stopAdmin()
		return err
	}
	s.rt = rt
	s.ready.Store(true)
	s.log.Info("gateway started", "config", cfg.Path, "frontends", len(rt.Frontends), "backends", len(rt.Backends))
	return nil
}

func (s *Server) build(cfg *Config) (*Runtime, error) {
	d := s.deps
	if d.Resolver == nil {
		d.Resolver = NewResolver(cfg.Resolver)
	}
	return Build(cfg, d)
}

func (s *Server) applyLogConfig(cfg *Config) {
	switch strings.ToLower(cfg.Log.Level) {
	case "debug":
		s.level.Set(slog.LevelDebug)
	case "warn":
		s.level.Set(slog.LevelWarn)
	case "error":
		s.level.Set(slog.LevelError)
	default:
		s.level.Set(slog.LevelInfo)
	}
}

// Reload swaps in a new, validated configuration: unchanged listeners stay
// bound, new ones are bound before removed ones close, sessions keep the
// runtime they started with, and sessions of users no longer configured are
// revoked. On error the running configuration stays.
func (s *Server) Reload(cfg *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining.Load() {
		return errors.New("reload: draining")
	}
	err := s.reload(cfg)
	if err != nil {
		s.ReloadFailed(err)
		return err
	}
	s.metrics.ReloadSuccess.Set(1)
	s.metrics.Reloads.WithLabelValues("success").Inc()
	return nil
}

func (s *Server) reload(cfg *Config) error {
	if cfg.Admin.Listen != s.adminAddr {
		s.log.Warn("admin listener changes need a restart; keeping the old one", "listen", s.adminAddr)
	}
	rt, err := s.build(cfg)
	if err != nil {
		return err
	}
	if err := s.listeners.apply(s.ctx, rt); err != nil {
		rt.closeBackends()
		return err
	}
	old := s.rt
	s.rt = rt
	s.applyLogConfig(cfg)
	// Revoke sessions of users that no longer exist in any user set.
	present := map[string]bool{"": true}
	for _, us := range cfg.Users {
		for _, n := range us.Names() {
			present[n] = true
		}
	}
	for _, u := range s.deps.Tracker.Users() {
		if !present[u] {
			n := s.deps.Tracker.Revoke(u)
			s.log.Info("user removed; sessions revoked", "sessions", n)
		}
	}
	old.Retire()
	s.log.Info("configuration reloaded", "config", cfg.Path)
	return nil
}

// ReloadFailed records a reload that failed before it reached the server
// (for example an invalid file): the running configuration stays.
func (s *Server) ReloadFailed(err error) {
	s.metrics.ReloadSuccess.Set(0)
	s.metrics.Reloads.WithLabelValues("failure").Inc()
	s.log.Error("reload failed; keeping the running configuration", "error", err)
}

// Runtime returns the current runtime.
func (s *Server) Runtime() *Runtime {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rt
}

// Addrs returns the bound listener addresses, keyed "tcp host:port" or
// "udp host:port" as configured, plus "admin".
func (s *Server) Addrs() map[string]net.Addr {
	m := s.listeners.Addrs()
	s.mu.Lock()
	if s.adminLn != nil {
		m["admin"] = s.adminLn.Addr()
	}
	s.mu.Unlock()
	return m
}

// Shutdown drains: /readyz turns 503, the stream listeners close (no new
// sessions), and open sessions and associations — UDP relay endpoints stay
// open for them — get until ctx ends (the grace period); frontends see the
// deadline through Lifecycle.DrainDeadline (TURN refreshes are clamped to it).
// Then every session is closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.ready.Store(false)
	s.metrics.Draining.Set(1)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	s.deps.Lifecycle.startDrain(deadline)
	s.listeners.closeStreams()
	s.log.Info("draining", "sessions", s.listeners.sessions.count(), "associations", s.deps.Tracker.Associations())
	idle := func() bool { return s.listeners.sessions.count() == 0 && s.deps.Tracker.Associations() == 0 }
	var err error
	tick := time.NewTicker(50 * time.Millisecond)
	for !idle() && err == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
			err = fmt.Errorf("drain: grace period over with %d sessions and %d associations open",
				s.listeners.sessions.count(), s.deps.Tracker.Associations())
		}
	}
	tick.Stop()
	s.cancel()
	s.listeners.closeAll()
	s.listeners.sessions.closeAll()
	done := make(chan struct{})
	go func() {
		s.listeners.sessions.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	s.mu.Lock()
	if s.rt != nil {
		s.rt.Retire()
	}
	s.mu.Unlock()
	s.stopAdmin()
	return err
}

// Context is the sessions' context; it ends when a drain is over.
func (s *Server) Context() context.Context { return s.ctx }

func (s *Server) startAdmin(c AdminConfig) error {
	if c.Listen == "off" || c.Listen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	s.deps.Own.Add(AddrPortOf(ln.Addr()))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{Registry: s.metrics.Registry}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		fmt.Fprintln(w, "ok")
		s.writeHealth(w)
	})
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if c.LogLevel {
		mux.HandleFunc("/loglevel", s.serveLogLevel)
	}
	s.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.adminLn = ln
	s.adminAddr = c.Listen
	go s.admin.Serve(ln)
	return nil
}

// HealthReporter is implemented by backends that know whether their upstream
// is reachable; /readyz lists the answers.
type HealthReporter interface {
	Health() error
}

func (s *Server) writeHealth(w http.ResponseWriter) {
	s.mu.Lock()
	rt := s.rt
	s.mu.Unlock()
	if rt == nil {
		return
	}
	for _, name := range sortedKeys(rt.Backends) {
		if h, ok := rt.Backends[name].(HealthReporter); ok {
			if err := h.Health(); err != nil {
				fmt.Fprintf(w, "backend %s: %v\n", name, err)
			} else {
				fmt.Fprintf(w, "backend %s: ok\n", name)
			}
		}
	}
}

func (s *Server) serveLogLevel(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		fmt.Fprintln(w, strings.ToLower(s.level.Level().String()))
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.TrimSpace(r.FormValue("level")))); err != nil {
		http.Error(w, "level must be debug, info, warn or error", http.StatusBadRequest)
		return
	}
	s.level.Set(lv)
	s.log.Info("log level changed", "level", lv.String())
	fmt.Fprintln(w, strings.ToLower(lv.String()))
}

func (s *Server) stopAdmin() {
	if s.admin != nil {
		s.admin.Close()
		s.deps.Own.Remove(AddrPortOf(s.adminLn.Addr()))
		s.admin = nil
	}
}
