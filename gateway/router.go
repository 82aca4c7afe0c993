package gateway

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// Command is what a client asked for; routes match on it.
type Command uint8

// Commands. A TURN TCP relay Connect (RFC 6062) routes as CmdConnect.
const (
	CmdConnect Command = 1 << iota
	CmdBind
	CmdUDP
	CmdTURNAllocate
	// CmdNoop is SOCKS 6 NOOP (session bookkeeping only); it never routes.
	CmdNoop
)

// AllCommands matches every command.
const AllCommands = CmdConnect | CmdBind | CmdUDP | CmdTURNAllocate

// commandNames maps the HCL words to commands.
var commandNames = map[string]Command{
	"connect":       CmdConnect,
	"bind":          CmdBind,
	"udp":           CmdUDP,
	"turn-allocate": CmdTURNAllocate,
}

// ParseCommand maps an HCL command word to a Command.
func ParseCommand(s string) (Command, bool) {
	c, ok := commandNames[strings.ToLower(s)]
	return c, ok
}

// String names the command as in the configuration.
func (c Command) String() string {
	for n, v := range commandNames {
		if v == c {
			return n
		}
	}
	switch c {
	case CmdNoop:
		return "noop"
	case 0:
		return "unknown"
	}
	return fmt.Sprintf("commands(%#x)", uint8(c))
}

// IsAssociation reports whether the command creates an association whose
// backend is chosen before any destination is known.
func (c Command) IsAssociation() bool { return c&(CmdBind|CmdUDP|CmdTURNAllocate) != 0 }

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether p is in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Lo && p <= r.Hi }

// Route is one compiled `route` block.
type Route struct {
	// Index is the route's position in the file, from 0.
	Index    int
	Commands Command // 0 = any
	// Users and Frontends are nil for "any".
	Users     map[string]bool
	Frontends map[string]bool
	// CIDRs, Names (exact) and Suffixes ("*.example.com" as ".example.com")
	// are the destination matchers; all empty = any destination.
	CIDRs    []netip.Prefix
	Names    []string
	Suffixes []string
	Ports    []PortRange
	// Deny is true for action = "deny".
	Deny bool
	// Backend serves the route when Deny is false.
	Backend Backend
	// BackendName is the backend block's name.
	BackendName string
}

// HasDestination reports whether the route has destination or port matchers.
func (r *Route) HasDestination() bool {
	return len(r.CIDRs)+len(r.Names)+len(r.Suffixes)+len(r.Ports) > 0
}

// Label is a short name for logs: "route[2]".
func (r *Route) Label() string { return fmt.Sprintf("route[%d]", r.Index) }

func (r *Route) matchWho(m Match) bool {
	if r.Commands != 0 && r.Commands&m.Command == 0 {
		return false
	}
	if r.Users != nil && !r.Users[m.User] {
		return false
	}
	if r.Frontends != nil && !r.Frontends[m.Frontend] {
		return false
	}
	return true
}

func (r *Route) matchDest(d Addr) bool {
	if len(r.Ports) > 0 {
		ok := false
		for _, p := range r.Ports {
			if p.Contains(d.Port) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(r.CIDRs)+len(r.Names)+len(r.Suffixes) == 0 {
		return true
	}
	if d.IsName() {
		for _, n := range r.Names {
			if n == d.Name {
				return true
			}
		}
		for _, s := range r.Suffixes {
			if strings.HasSuffix(d.Name, s) {
				return true
			}
		}
		return false
	}
	ip := d.IP.Unmap().WithZone("")
	for _, c := range r.CIDRs {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}

// unlocked reports whether the route lists a CIDR that unlocks ip inside
// the special block.
func (r *Route) unlocked(block netip.Prefix, ip netip.Addr) bool {
	for _, c := range r.CIDRs {
		if unlocks(c, block, ip) {
			return true
		}
	}
	return false
}

// Match is who is asking, for route matching.
type Match struct {
	Command  Command
	User     string
	Frontend string
}

// Router picks a route per request and builds the destination policy. Routes
// are tried in order; the first match wins; no match denies.
type Router struct {
	routes []*Route
	own    *OwnAddrs
}

// NewRouter returns a router over compiled routes. own may be nil.
func NewRouter(routes []*Route, own *OwnAddrs) *Router {
	return &Router{routes: routes, own: own}
}

// Routes returns the compiled routes.
func (r *Router) Routes() []*Route { return r.routes }

func denied(format string, args ...any) error {
	return &Error{Reason: ReasonNotAllowed, Op: "policy", Err: fmt.Errorf(format, args...)}
}

// Stream picks the route for a stream (CONNECT) to dest and returns the
// policy the backend must apply to every address it connects to. An IP
// destination is checked at once.
func (r *Router) Stream(m Match, dest Addr) (*Route, Policy, error) {
	rt, _, p, err := r.stream(m, dest)
	return rt, p, err
}

// stream is Stream that also reports whether a route that matches only
// addresses (CIDRs) was passed over because dest is a name: then the name's
// addresses may route differently.
func (r *Router) stream(m Match, dest Addr) (*Route, bool, Policy, error) {
	if dest.Port == 0 {
		// Port 0 is no destination: connect(2) would send a SYN to it.
		return nil, false, nil, denied("port 0 is not a destination")
	}
	skipped := false
	for _, rt := range r.routes {
		if !rt.matchWho(m) {
			continue
		}
		if !rt.matchDest(dest) {
			if dest.IsName() && len(rt.CIDRs) > 0 {
				skipped = true
			}
			continue
		}
		if rt.Deny {
			return rt, skipped, nil, denied("%s denies %s", rt.Label(), dest)
		}
		p := &routePolicy{r: r, m: m, backend: rt.BackendName}
		if !dest.IsName() {
			if err := p.Allow(dest.AddrPort()); err != nil {
				return rt, skipped, nil, err
			}
		}
		return rt, skipped, p, nil
	}
	return nil, skipped, nil, denied("no route for %s %s", m.Command, dest)
}

// StreamResolving is Stream for a name that address-only routes may match:
// when the name itself matches no earlier route, the name is resolved and
// the first of its addresses that routes and passes the policy decides the
// route, so `destinations = ["127.0.0.0/8"]` serves "localhost". The request
// keeps the name; the backend resolves it again (from the cache) and the
// policy checks every address it dials.
func (r *Router) StreamResolving(ctx context.Context, res Resolver, m Match, dest Addr) (*Route, Policy, error) {
	rt, skipped, p, err := r.stream(m, dest)
	if !dest.IsName() || !skipped || res == nil {
		return rt, p, err
	}
	ips, lerr := res.LookupNetIP(ctx, "ip", dest.Name)
	if lerr != nil || len(ips) == 0 {
		return rt, p, err
	}
	var firstErr error
	for _, ip := range ips {
		art, _, ap, aerr := r.stream(m, Addr{IP: ip.Unmap(), Port: dest.Port})
		if aerr == nil {
			return art, ap, nil
		}
		if firstErr == nil {
			firstErr = aerr
		}
	}
	if err == nil {
		return rt, p, nil
	}
	return rt, p, firstErr
}

// Association picks the route for an association (BIND, UDP ASSOCIATE, TURN
// allocation): the first allow route for who is asking, destinations ignored;
// a deny route without destination matchers before it denies. The returned
// policy then judges each peer or datagram destination.
func (r *Router) Association(m Match) (*Route, Policy, error) {
	for _, rt := range r.routes {
		if !rt.matchWho(m) {
			continue
		}
		if rt.Deny {
			if !rt.HasDestination() {
				return rt, nil, denied("%s denies %s", rt.Label(), m.Command)
			}
			continue
		}
		return rt, &routePolicy{r: r, m: m, backend: rt.BackendName}, nil
	}
	return nil, nil, denied("no route for %s", m.Command)
}

// Check judges one concrete destination for who is asking: the first route
// that matches it must allow it and be served by backend (when backend is not
// empty), the gateway's own sockets are never allowed, and a special-purpose
// address needs that route to list a CIDR that unlocks it.
func (r *Router) Check(m Match, backend string, dst netip.AddrPort) error {
	ip := dst.Addr().WithZone("")
	if !ip.IsValid() {
		return denied("invalid address")
	}
	if r.own.Contains(dst) {
		return denied("%s is the gateway itself", dst)
	}
	d := Addr{IP: ip, Port: dst.Port()}
	for _, rt := range r.routes {
		if !rt.matchWho(m) || !rt.matchDest(d) {
			continue
		}
		if rt.Deny {
			return denied("%s denies %s", rt.Label(), dst)
		}
		if backend != "" && rt.BackendName != backend {
			return denied("%s routes %s to backend %q, not %q", rt.Label(), dst, rt.BackendName, backend)
		}
		if block, name, special := SpecialRange(ip); special && !rt.unlocked(block, ip.Unmap()) {
			return denied("%s is %s (%s) and %s does not list it", dst, name, block, rt.Label())
		}
		return nil
	}
	return denied("no route for %s", dst)
}

// routePolicy is the Policy of one request.
type routePolicy struct {
	r       *Router
	m       Match
	backend string
}

func (p *routePolicy) Allow(dst netip.AddrPort) error { return p.r.Check(p.m, p.backend, dst) }
