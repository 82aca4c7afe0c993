package socks5

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// healthWindow is how long a failure to reach or negotiate with the server
// is reported by Health.
const healthWindow = 30 * time.Second

// Options carries what the backend gets from its host rather than from the
// configuration file.
type Options struct {
	// Logger receives the backend's log records; nil discards them.
	Logger *slog.Logger
	// Resolver looks up the server's name (when there is no Via) and, with
	// resolve = "local", destination names; nil means net.DefaultResolver.
	Resolver gateway.Resolver
	// Clock tells the time for Health and the per-association caches; nil
	// means the system clock.
	Clock gateway.Clock
	// Via is the backend the server is reached through (the control
	// connection is one of its streams, UDP datagrams travel inside one of
	// its associations); nil means the gateway host's own sockets.
	Via gateway.Backend
	// Own is the gateway's set of its own sockets; the UDP socket of every
	// association (without Via) is registered in it while open, so that no
	// client can send to it through the gateway. nil skips that.
	Own *gateway.OwnAddrs
}

// Backend is the socks5 backend: it relays streams, BIND listening sockets
// and UDP associations through an upstream SOCKS 5 server. It is safe for
// concurrent use and holds no resources between requests, so it needs no
// Close.
type Backend struct {
	name     string
	log      *slog.Logger
	resolver gateway.Resolver
	clock    gateway.Clock
	via      gateway.Backend
	own      *gateway.OwnAddrs

	server      gateway.Addr
	greeting    []byte // the encoded method negotiation message
	userPass    []byte // the encoded RFC 1929 request; nil without credentials
	local       bool   // resolve = "local"
	dialTimeout time.Duration

	healthMu  sync.Mutex
	healthErr error
	healthAt  time.Time
}

var (
	_ gateway.Backend        = (*Backend)(nil)
	_ gateway.HealthReporter = (*Backend)(nil)
)

// New checks cfg and returns the backend called name.
func New(name string, cfg Config, opts Options) (*Backend, error) {
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		name:        name,
		log:         opts.Logger,
		resolver:    opts.Resolver,
		clock:       opts.Clock,
		via:         opts.Via,
		own:         opts.Own,
		server:      s.server,
		local:       s.local,
		dialTimeout: s.dialTimeout,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("backend", name)
	if b.resolver == nil {
		b.resolver = net.DefaultResolver
	}
	if b.clock == nil {
		b.clock = gateway.SystemClock{}
	}
	g := s5.Greeting{Methods: []s5.Method{s5.MethodNoAuth}}
	if s.username != "" {
		g.Methods = append(g.Methods, s5.MethodUserPass)
		if b.userPass, err = (s5.UserPassRequest{Username: s.username, Password: s.password}).Append(nil); err != nil {
			return nil, fmt.Errorf("socks5 backend: credentials: %w", err)
		}
	}
	if b.greeting, err = g.Append(nil); err != nil {
		return nil, fmt.Errorf("socks5 backend: greeting: %w", err)
	}
	return b, nil
}

// Name returns the backend block's name.
func (b *Backend) Name() string { return b.name }

// Health returns the last failure to reach the server or to negotiate with
// it (including rejected credentials) when it happened within the last 30
// seconds and no later attempt succeeded; nil otherwise. Failures the
// server reports for a destination do not count.
func (b *Backend) Health() error {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	if b.healthErr != nil && b.clock.Now().Sub(b.healthAt) < healthWindow {
		return b.healthErr
	}
	return nil
}

// noteServer records the outcome of an attempt to reach and negotiate with
// the server for Health.
func (b *Backend) noteServer(err error) {
	b.healthMu.Lock()
	b.healthErr, b.healthAt = err, b.clock.Now()
	b.healthMu.Unlock()
}
