package direct

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// Defaults for the optional durations of Config.
const (
	// DefaultDialTimeout bounds a whole Dial (resolution, connection
	// attempts, the TFO handshake and sending the initial data).
	DefaultDialTimeout = 10 * time.Second
	// DefaultHappyEyeballsDelay is the RFC 8305 "Connection Attempt Delay".
	DefaultHappyEyeballsDelay = 250 * time.Millisecond
	// DefaultReservationTTL is how long a TURN reservation (EVEN-PORT with
	// R=1) is held when no association takes it: RFC 8656 section 7.2 keeps
	// the port for about 30 seconds.
	DefaultReservationTTL = 30 * time.Second
)

// Bounds of happy_eyeballs_delay (RFC 8305 section 5: at least 10 ms, at most
// 2 s).
const (
	minHappyEyeballsDelay = 10 * time.Millisecond
	maxHappyEyeballsDelay = 2 * time.Second
)

// Config is the body of a `backend "direct" "name" { ... }` block. Every
// field is optional; the zero Config dials from the kernel's choice of source
// address and listens on any address.
type Config struct {
	// BindIPv4 is the source address of outgoing IPv4 connections and the
	// IPv4 address BIND listens on; empty leaves the choice to the kernel.
	BindIPv4 string `hcl:"bind_ipv4,optional"`
	// BindIPv6 is the same for IPv6.
	BindIPv6 string `hcl:"bind_ipv6,optional"`
	// AdvertiseIPv4 is the IPv4 address remote hosts see (the public address
	// in front of a 1:1 NAT); it replaces the local IPv4 address in the
	// Bound and listening addresses reported to clients.
	AdvertiseIPv4 string `hcl:"advertise_ipv4,optional"`
	// AdvertiseIPv6 is the same for IPv6.
	AdvertiseIPv6 string `hcl:"advertise_ipv6,optional"`
	// PortRange is "low-high" (or a single port): the ports BIND and UDP
	// associations may bind. Empty lets the kernel choose a port when none
	// is asked for and refuses requested ports below 1024.
	PortRange string `hcl:"port_range,optional"`
	// DialTimeout is a Go duration ("5s") bounding a whole Dial; empty means
	// DefaultDialTimeout.
	DialTimeout string `hcl:"dial_timeout,optional"`
	// HappyEyeballsDelay is a Go duration ("250ms") between the starts of two
	// connection attempts to the addresses of one name; empty means
	// DefaultHappyEyeballsDelay. It must lie between 10ms and 2s.
	HappyEyeballsDelay string `hcl:"happy_eyeballs_delay,optional"`
}

// Options carries what the backend gets from its host rather than from the
// configuration file.
type Options struct {
	// Logger receives the backend's log records; nil discards them.
	Logger *slog.Logger
	// Resolver looks up destination names (A and AAAA, one LookupNetIP call
	// with network "ip"); nil means net.DefaultResolver.
	Resolver gateway.Resolver
	// Control, when set, is called for every socket the backend creates,
	// after the backend's own checks and socket options and immediately
	// before connect(2) or bind(2) (UDP association and reservation sockets
	// get their socket options after bind). address is the exact remote
	// address (dial) or local address (listen, UDP). An error aborts that
	// socket. It is meant for tests and instrumentation. (The connected UDP
	// socket that asks the kernel for its preferred source address, which
	// sends nothing, is not shown.)
	Control func(ctx context.Context, network, address string, c syscall.RawConn) error
	// Own is the gateway's set of its own sockets. Every UDP association
	// socket (and every reserved port) is registered in it while open, and
	// no datagram is sent to an address in it. nil skips both.
	Own *gateway.OwnAddrs
	// Clock tells the time for reservation expiry and for the caches of UDP
	// associations (policy verdicts, resolved names); nil means the system
	// clock. Reservations are also released by a real timer after
	// ReservationTTL.
	Clock gateway.Clock
	// ReservationTTL is how long a TURN reservation is held for a later
	// RESERVATION-TOKEN; zero means DefaultReservationTTL.
	ReservationTTL time.Duration
}

// Backend is the direct backend. It is safe for concurrent use. The only
// resources it holds between requests are TURN port reservations, which
// outlive the association that made them until they expire; Close releases
// them.
type Backend struct {
	name     string
	log      *slog.Logger
	resolver gateway.Resolver
	control  func(ctx context.Context, network, address string, c syscall.RawConn) error
	own      *gateway.OwnAddrs
	clock    gateway.Clock
	resTTL   time.Duration
	resv     reservations

	bind4, bind6 netip.Addr
	adv4, adv6   netip.Addr
	portLo       uint16 // 0: no port_range configured
	portHi       uint16
	dialTimeout  time.Duration
	heDelay      time.Duration
}

var (
	_ gateway.Backend = (*Backend)(nil)
	_ io.Closer       = (*Backend)(nil)
)

// New validates cfg and returns the backend called name.
func New(name string, cfg Config, opts Options) (*Backend, error) {
	b := &Backend{
		name:        name,
		log:         opts.Logger,
		resolver:    opts.Resolver,
		control:     opts.Control,
		own:         opts.Own,
		clock:       opts.Clock,
		resTTL:      opts.ReservationTTL,
		dialTimeout: DefaultDialTimeout,
		heDelay:     DefaultHappyEyeballsDelay,
	}
	if b.clock == nil {
		b.clock = gateway.SystemClock{}
	}
	if b.resTTL <= 0 {
		b.resTTL = DefaultReservationTTL
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.log = b.log.With("backend", name)
	if b.resolver == nil {
		b.resolver = net.DefaultResolver
	}
	var err error
	if b.bind4, err = parseIP("bind_ipv4", cfg.BindIPv4, false); err != nil {
		return nil, err
	}
	if b.bind6, err = parseIP("bind_ipv6", cfg.BindIPv6, true); err != nil {
		return nil, err
	}
	if b.adv4, err = parseIP("advertise_ipv4", cfg.AdvertiseIPv4, false); err != nil {
		return nil, err
	}
	if b.adv6, err = parseIP("advertise_ipv6", cfg.AdvertiseIPv6, true); err != nil {
		return nil, err
	}
	if b.portLo, b.portHi, err = parsePortRange(cfg.PortRange); err != nil {
		return nil, err
	}
	if cfg.DialTimeout != "" {
		if b.dialTimeout, err = time.ParseDuration(cfg.DialTimeout); err != nil {
			return nil, fmt.Errorf("direct: dial_timeout: %w", err)
		}
		if b.dialTimeout <= 0 {
			return nil, fmt.Errorf("direct: dial_timeout: %s is not positive", cfg.DialTimeout)
		}
	}
	if cfg.HappyEyeballsDelay != "" {
		if b.heDelay, err = time.ParseDuration(cfg.HappyEyeballsDelay); err != nil {
			return nil, fmt.Errorf("direct: happy_eyeballs_delay: %w", err)
		}
		if b.heDelay < minHappyEyeballsDelay || b.heDelay > maxHappyEyeballsDelay {
			return nil, fmt.Errorf("direct: happy_eyeballs_delay: %s is outside %s..%s",
				cfg.HappyEyeballsDelay, minHappyEyeballsDelay, maxHappyEyeballsDelay)
		}
	}
	return b, nil
}

// Name returns the backend block's name.
func (b *Backend) Name() string { return b.name }

func parseIP(field, s string, v6 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("direct: %s: %w", field, err)
	}
	switch {
	case ip.Zone() != "":
		return netip.Addr{}, fmt.Errorf("direct: %s: %q has a zone", field, s)
	case ip.IsUnspecified(), ip.IsMulticast():
		return netip.Addr{}, fmt.Errorf("direct: %s: %q is not a unicast address", field, s)
	case v6 && !ip.Is6(), v6 && ip.Is4In6():
		return netip.Addr{}, fmt.Errorf("direct: %s: %q is not an IPv6 address", field, s)
	case !v6 && !ip.Is4():
		return netip.Addr{}, fmt.Errorf("direct: %s: %q is not an IPv4 address", field, s)
	}
	return ip, nil
}

func parsePortRange(s string) (lo, hi uint16, err error) {
	if s == "" {
		return 0, 0, nil
	}
	l, h, ok := strings.Cut(s, "-")
	if !ok {
		h = l
	}
	pl, err1 := strconv.ParseUint(strings.TrimSpace(l), 10, 16)
	ph, err2 := strconv.ParseUint(strings.TrimSpace(h), 10, 16)
	if err1 != nil || err2 != nil || pl == 0 || ph < pl {
		return 0, 0, fmt.Errorf("direct: port_range: %q is not \"low-high\" with 1 <= low <= high <= 65535", s)
	}
	return uint16(pl), uint16(ph), nil
}

// localFor returns the configured source address for the family of dst, or an
// invalid Addr to let the kernel choose.
func (b *Backend) localFor(dst netip.Addr) netip.Addr {
	if dst.Is4() {
		return b.bind4
	}
	return b.bind6
}

// advertised returns ap as remote hosts see it: its IP replaced by the
// advertised address of its family where one is configured.
func (b *Backend) advertised(ap netip.AddrPort) gateway.Addr {
	ip := ap.Addr().Unmap()
	switch {
	case ip.Is4() && b.adv4.IsValid():
		ip = b.adv4
	case ip.Is6() && b.adv6.IsValid():
		ip = b.adv6
	}
	return gateway.Addr{IP: ip, Port: ap.Port()}
}
