package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

func compile(t *testing.T, rcs ...RouteConfig) *Router {
	t.Helper()
	routes, diags := CompileRoutes(rcs, map[string]bool{"out": true, "up": true}, map[string]bool{"s6": true, "s5": true}, nil)
	if diags.HasErrors() {
		t.Fatalf("compile: %v", diags)
	}
	return NewRouter(routes, NewOwnAddrs())
}

func mustAddr(t *testing.T, s string) Addr {
	t.Helper()
	a, err := ParseAddr(s)
	if err != nil {
		t.Fatalf("ParseAddr(%q): %v", s, err)
	}
	return a
}

var connect = Match{Command: CmdConnect, User: "alice", Frontend: "s6"}

func isDenied(err error) bool {
	return err != nil && ReasonOf(err) == ReasonNotAllowed
}

func TestSpecialRangesDeniedByDefault(t *testing.T) {
	r := compile(t, RouteConfig{Backend: "out"})
	cases := []string{
		"0.0.0.0:80", "0.1.2.3:80", "10.0.0.1:80", "100.64.0.1:80", "127.0.0.1:80", "127.1.2.3:80",
		"169.254.169.254:80", "172.16.0.1:80", "172.31.255.255:80", "192.0.0.1:80", "192.0.2.1:80",
		"192.88.99.1:80", "192.168.1.1:80", "198.18.0.1:80", "198.51.100.1:80", "203.0.113.1:80",
		"224.0.0.1:80", "239.255.255.250:1900", "240.0.0.1:80", "255.255.255.255:80",
		"[::]:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "[::ffff:10.0.0.1]:80", "[::ffff:169.254.169.254]:80",
		"[::127.0.0.1]:80", "[::10.0.0.1]:80", "[64:ff9b::7f00:1]:80", "[100::1]:80", "[2001::1]:80",
		"[2001:db8::1]:80", "[2002:7f00:1::1]:80", "[fc00::1]:80", "[fd12:3456::1]:80", "[fe80::1]:80",
		"[fec0::1]:80", "[ff02::1]:80", "[3fff::1]:80",
	}
	for _, c := range cases {
		_, _, err := r.Stream(connect, mustAddr(t, c))
		if !isDenied(err) {
			t.Errorf("%s: got %v, want denied", c, err)
		}
	}
	for _, c := range []string{"93.184.216.34:80", "[2606:2800:220:1:248:1893:25c8:1946]:443", "8.8.8.8:53"} {
		if _, _, err := r.Stream(connect, mustAddr(t, c)); err != nil {
			t.Errorf("%s: got %v, want allowed", c, err)
		}
	}
}

func TestUnlockOnlyByInnerCIDROfMatchingRoute(t *testing.T) {
	cases := []struct {
		name   string
		routes []RouteConfig
		dest   string
		allow  bool
	}{
		{"0.0.0.0/0 unlocks nothing", []RouteConfig{{Destinations: []string{"0.0.0.0/0"}, Backend: "out"}}, "127.0.0.1:80", false},
		{"::/0 unlocks nothing", []RouteConfig{{Destinations: []string{"::/0"}, Backend: "out"}}, "[::1]:80", false},
		{"loopback /8 unlocks", []RouteConfig{{Destinations: []string{"127.0.0.0/8"}, Backend: "out"}}, "127.0.0.1:80", true},
		{"host /32 unlocks that host", []RouteConfig{{Destinations: []string{"127.0.0.1"}, Backend: "out"}}, "127.0.0.1:80", true},
		{"host /32 not its neighbour", []RouteConfig{{Destinations: []string{"127.0.0.1/32"}, Backend: "out"}, {Backend: "out"}}, "127.0.0.2:80", false},
		{"loopback unlock does not unlock private", []RouteConfig{{Destinations: []string{"127.0.0.0/8", "10.0.0.0/8"}, Backend: "out"}}, "192.168.0.1:80", false},
		{"v6 loopback", []RouteConfig{{Destinations: []string{"::1/128"}, Backend: "out"}}, "[::1]:80", true},
		{"mapped loopback unlocked by v4 cidr", []RouteConfig{{Destinations: []string{"127.0.0.0/8"}, Backend: "out"}}, "[::ffff:127.0.0.1]:80", true},
		{"mapped loopback not by ::1", []RouteConfig{{Destinations: []string{"::1/128"}, Backend: "out"}, {Backend: "out"}}, "[::ffff:127.0.0.1]:80", false},
		{"compat form not by 127/8", []RouteConfig{{Destinations: []string{"127.0.0.0/8"}, Backend: "out"}, {Backend: "out"}}, "[::127.0.0.1]:80", false},
		{"unlock only by the route that matched", []RouteConfig{
			{Users: []string{"bob"}, Destinations: []string{"127.0.0.0/8"}, Backend: "out"},
			{Backend: "out"}}, "127.0.0.1:80", false},
		{"larger than block does not unlock", []RouteConfig{{Destinations: []string{"96.0.0.0/3"}, Backend: "out"}}, "127.0.0.1:80", false},
		{"private /8 unlocks 10.x", []RouteConfig{{Destinations: []string{"10.0.0.0/8"}, Backend: "out"}}, "10.1.2.3:80", true},
		{"subnet of private unlocks", []RouteConfig{{Destinations: []string{"10.9.0.0/16"}, Backend: "out"}}, "10.9.1.1:80", true},
		{"cgnat", []RouteConfig{{Destinations: []string{"100.64.0.0/10"}, Backend: "out"}}, "100.100.1.1:80", true},
		{"link-local metadata stays denied by 0/0", []RouteConfig{{Destinations: []string{"0.0.0.0/0"}, Backend: "out"}}, "169.254.169.254:80", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, c.routes...)
			_, _, err := r.Stream(connect, mustAddr(t, c.dest))
			if c.allow && err != nil {
				t.Fatalf("want allowed, got %v", err)
			}
			if !c.allow && !isDenied(err) {
				t.Fatalf("want denied, got %v", err)
			}
		})
	}
}

func TestOwnAddressesAlwaysDenied(t *testing.T) {
	own := NewOwnAddrs()
	routes, _ := CompileRoutes([]RouteConfig{{Destinations: []string{"127.0.0.0/8", "::1/128"}, Backend: "out"}}, map[string]bool{"out": true}, nil, nil)
	r := NewRouter(routes, own)
	own.Add(netip.MustParseAddrPort("127.0.0.1:1080"))
	own.Add(netip.MustParseAddrPort("0.0.0.0:9090"))
	own.Add(netip.MustParseAddrPort("[::]:3478"))
	for _, d := range []string{"127.0.0.1:1080", "[::ffff:127.0.0.1]:1080", "127.0.0.1:9090", "127.0.0.2:9090", "127.0.0.1:3478", "[::1]:3478", "0.0.0.0:1080"} {
		if err := r.Check(connect, "", netip.MustParseAddrPort(d)); !isDenied(err) {
			t.Errorf("%s: got %v, want denied (own socket)", d, err)
		}
	}
	if err := r.Check(connect, "", netip.MustParseAddrPort("127.0.0.1:1081")); err != nil {
		t.Errorf("127.0.0.1:1081: %v", err)
	}
	own.Remove(netip.MustParseAddrPort("127.0.0.1:1080"))
	if err := r.Check(connect, "", netip.MustParseAddrPort("127.0.0.1:1080")); err != nil {
		t.Errorf("after remove: %v", err)
	}
}

func TestRouteMatchers(t *testing.T) {
	r := compile(t,
		RouteConfig{Destinations: []string{"10.0.0.0/8"}, Action: "deny"},
		RouteConfig{Commands: []string{"connect"}, Destinations: []string{"*.corp.example", "10.0.0.0/8"}, Backend: "up"},
		RouteConfig{Commands: []string{"connect"}, Destinations: []string{"exact.example"}, Ports: []string{"443", "8000-8999"}, Backend: "up"},
		RouteConfig{Users: []string{"bob"}, Commands: []string{"connect"}, Backend: "up"},
		RouteConfig{Frontends: []string{"s5"}, Commands: []string{"connect"}, Action: "deny"},
		RouteConfig{Backend: "out"},
	)
	cases := []struct {
		m       Match
		dest    string
		backend string // "" = denied
	}{
		{connect, "10.1.1.1:80", ""},                            // first match: deny
		{connect, "a.corp.example:80", "up"},                    // suffix
		{connect, "A.Corp.Example.:80", "up"},                   // normalization
		{connect, "corp.example:80", "out"},                     // suffix is subdomains only
		{connect, "xcorp.example:80", "out"},                    // not a label boundary
		{connect, "exact.example:443", "up"},                    // name + port
		{connect, "exact.example:8500", "up"},                   // port range
		{connect, "exact.example:80", "out"},                    // port miss
		{connect, "sub.exact.example:443", "out"},               // exact is exact
		{Match{CmdConnect, "bob", "s6"}, "example.org:1", "up"}, // users
		{Match{CmdConnect, "carol", "s5"}, "example.org:1", ""}, // frontends + deny
		{Match{CmdUDP, "carol", "s5"}, "example.org:1", "out"},  // commands: deny was connect only
	}
	for _, c := range cases {
		rt, _, err := r.Stream(c.m, mustAddr(t, c.dest))
		got := ""
		if err == nil {
			got = rt.BackendName
		} else if !isDenied(err) {
			t.Errorf("%v %s: unexpected error %v", c.m, c.dest, err)
		}
		if got != c.backend {
			t.Errorf("%v %s: backend %q, want %q", c.m, c.dest, got, c.backend)
		}
	}
}

func TestNoRouteDenies(t *testing.T) {
	r := compile(t, RouteConfig{Commands: []string{"udp"}, Backend: "out"})
	if _, _, err := r.Stream(connect, mustAddr(t, "example.org:80")); !isDenied(err) {
		t.Fatalf("got %v", err)
	}
	if _, _, err := r.Association(Match{Command: CmdBind}); !isDenied(err) {
		t.Fatalf("bind: got %v", err)
	}
	if _, _, err := r.Association(Match{Command: CmdUDP}); err != nil {
		t.Fatalf("udp: got %v", err)
	}
}

func TestNameResolvingToLoopbackIsCheckedAtDial(t *testing.T) {
	r := compile(t, RouteConfig{Backend: "out"})
	rt, pol, err := r.Stream(connect, mustAddr(t, "localhost:80"))
	if err != nil || rt.BackendName != "out" {
		t.Fatalf("route: %v", err)
	}
	// The backend resolves the name and must ask the policy about the
	// address it is about to dial.
	if err := pol.Allow(netip.MustParseAddrPort("127.0.0.1:80")); !isDenied(err) {
		t.Fatalf("127.0.0.1 via name: got %v, want denied", err)
	}
	if err := pol.Allow(netip.MustParseAddrPort("93.184.216.34:80")); err != nil {
		t.Fatalf("public via name: %v", err)
	}
	// A route that lists loopback makes the resolved address acceptable,
	// even though the name itself matched the catch-all route.
	r2 := compile(t, RouteConfig{Destinations: []string{"127.0.0.0/8"}, Backend: "out"}, RouteConfig{Backend: "out"})
	_, pol2, _ := r2.Stream(connect, mustAddr(t, "localhost:80"))
	if err := pol2.Allow(netip.MustParseAddrPort("127.0.0.1:80")); err != nil {
		t.Fatalf("unlocked loopback: %v", err)
	}
	// But not when the address routes to another backend.
	r3 := compile(t, RouteConfig{Commands: []string{"connect"}, Destinations: []string{"127.0.0.0/8"}, Backend: "up"}, RouteConfig{Backend: "out"})
	_, pol3, _ := r3.Stream(connect, mustAddr(t, "localhost:80"))
	if err := pol3.Allow(netip.MustParseAddrPort("127.0.0.1:80")); !isDenied(err) {
		t.Fatalf("other backend: got %v", err)
	}
}

func TestAssociationRouting(t *testing.T) {
	r := compile(t,
		RouteConfig{Commands: []string{"connect"}, Destinations: []string{"10.0.0.0/8"}, Backend: "up"},
		RouteConfig{Destinations: []string{"127.0.0.0/8"}, Backend: "out"},
		RouteConfig{Destinations: []string{"192.0.2.0/24"}, Action: "deny"},
		RouteConfig{Backend: "out"},
	)
	m := Match{Command: CmdUDP, User: "alice", Frontend: "s6"}
	rt, pol, err := r.Association(m)
	if err != nil || rt.BackendName != "out" {
		t.Fatalf("association: %v %v", rt, err)
	}
	for d, want := range map[string]bool{"127.0.0.1:53": true, "10.0.0.1:53": false, "192.0.2.1:53": false, "8.8.8.8:53": true} {
		err := pol.Allow(netip.MustParseAddrPort(d))
		if (err == nil) != want {
			t.Errorf("datagram to %s: %v, want allowed=%v", d, err, want)
		}
	}
	// A destination-less deny before any allow route denies the association.
	r2 := compile(t, RouteConfig{Commands: []string{"bind"}, Action: "deny"}, RouteConfig{Backend: "out"})
	if _, _, err := r2.Association(Match{Command: CmdBind}); !isDenied(err) {
		t.Fatalf("bind: %v", err)
	}
}

func TestValidateRejectsDestinationDependentAssociationBackend(t *testing.T) {
	_, diags := CompileRoutes([]RouteConfig{
		{Destinations: []string{"10.0.0.0/8"}, Backend: "up"},
		{Backend: "out"},
	}, map[string]bool{"out": true, "up": true}, nil, nil)
	if !diags.HasErrors() {
		t.Fatal("want an error")
	}
	_, diags = CompileRoutes([]RouteConfig{
		{Commands: []string{"connect"}, Destinations: []string{"10.0.0.0/8"}, Backend: "up"},
		{Backend: "out"},
	}, map[string]bool{"out": true, "up": true}, nil, nil)
	if diags.HasErrors() {
		t.Fatalf("connect-only route: %v", diags)
	}
}

func TestAddrNormalization(t *testing.T) {
	cases := []struct{ in, host string }{
		{"Example.COM.:80", "example.com"},
		{"127.0.0.1:80", "127.0.0.1"},
		{"[::1]:80", "::1"},
	}
	for _, c := range cases {
		a := mustAddr(t, c.in)
		if a.Host() != c.host {
			t.Errorf("%s: host %q, want %q", c.in, a.Host(), c.host)
		}
	}
	a, err := NameAddr("10.0.0.1", 1)
	if err != nil || a.IsName() || a.IP != netip.MustParseAddr("10.0.0.1") {
		t.Fatalf("IP literal as name: %+v %v", a, err)
	}
	for _, bad := range []string{"", ".", "a\x00b", "a b", "a/b"} {
		if _, err := NameAddr(bad, 1); !errors.Is(err, ErrBadName) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzNameAddr(f *testing.F) {
	for _, s := range []string{"example.com", "Example.COM.", "192.0.2.1.", "a..b", "[::1]", "\xff\xfe", "a.", "localhost"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := NameAddr(s, 80)
		if err != nil {
			return
		}
		// Normalization is idempotent and yields a valid, short name.
		b, err := NameAddr(a.Host(), 80)
		if err != nil || b != a {
			t.Fatalf("%q -> %+v -> %+v, %v", s, a, b, err)
		}
		if a.IsName() && (len(a.Name) > MaxNameLen || CheckName(a.Name) != nil) {
			t.Fatalf("%q -> bad name %q", s, a.Name)
		}
	})
}

type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := m[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func TestStreamResolvingRoutesNamesByAddress(t *testing.T) {
	r := compile(t,
		RouteConfig{Commands: []string{"connect"}, Destinations: []string{"10.0.0.0/8"}, Backend: "up"},
		RouteConfig{Destinations: []string{"127.0.0.0/8"}, Backend: "out"},
	)
	res := mapResolver{
		"localhost":    {netip.MustParseAddr("127.0.0.1")},
		"intranet.lan": {netip.MustParseAddr("10.1.2.3")},
		"public.test":  {netip.MustParseAddr("93.184.216.34")},
	}
	ctx := context.Background()
	for name, want := range map[string]string{"localhost": "out", "intranet.lan": "up", "public.test": "", "missing.test": ""} {
		rt, pol, err := r.StreamResolving(ctx, res, connect, Addr{Name: name, Port: 80})
		got := ""
		if err == nil {
			got = rt.BackendName
			// The policy still judges each dialed address.
			for _, ip := range res[name] {
				if perr := pol.Allow(netip.AddrPortFrom(ip, 80)); perr != nil {
					t.Errorf("%s: policy denies its own address %s: %v", name, ip, perr)
				}
			}
		} else if !isDenied(err) {
			t.Errorf("%s: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: backend %q, want %q (err %v)", name, got, want, err)
		}
	}
}
