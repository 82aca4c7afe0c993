package socks6

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// received is a copy of what an association's ReadFrom returned.
type received struct {
	pkt  gateway.Packet
	data []byte
}

// assocReader reads an association in a goroutine until ReadFrom fails;
// the last error is in err once ch is closed.
type assocReader struct {
	ch  chan received
	err error
}

func readAssoc(a gateway.Association) *assocReader {
	r := &assocReader{ch: make(chan received, 1024)}
	go func() {
		defer close(r.ch)
		buf := make([]byte, 65535)
		for {
			pkt, err := a.ReadFrom(buf)
			if err != nil {
				r.err = err
				return
			}
			r.ch <- received{pkt: pkt, data: bytes.Clone(buf[:pkt.N])}
		}
	}()
	return r
}

// next returns the next packet, failing the test after d.
func (r *assocReader) next(t testing.TB, d time.Duration) received {
	t.Helper()
	select {
	case p, ok := <-r.ch:
		if !ok {
			t.Fatalf("association ended: %v", r.err)
		}
		return p
	case <-time.After(d):
		t.Fatal("nothing received")
	}
	return received{}
}

// none checks that nothing arrives for d.
func (r *assocReader) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case p, ok := <-r.ch:
		if ok {
			t.Fatalf("received %+v", p.pkt)
		}
	case <-time.After(d):
	}
}

// assocEcho sends n datagrams of 1..1400 bytes to echo through a and checks
// each comes back intact from match (nil: exactly echo).
func assocEcho(t *testing.T, a gateway.Association, r *assocReader, echo gateway.Addr, n int) {
	t.Helper()
	for i := range n {
		data := make([]byte, payloadSize(i))
		rand.Read(data)
		if err := a.WriteTo(data, echo, gateway.DatagramMeta{}); err != nil {
			t.Fatalf("datagram %d: WriteTo: %v", i, err)
		}
		p := r.next(t, 3*time.Second)
		if p.pkt.Kind != gateway.PacketData || !bytes.Equal(p.data, data) {
			t.Fatalf("datagram %d: kind %d, %d bytes back, %d sent", i, p.pkt.Kind, len(p.data), len(data))
		}
		if echo.IsName() {
			if p.pkt.From.Port != echo.Port || !p.pkt.From.IP.IsLoopback() {
				t.Fatalf("datagram %d from %v", i, p.pkt.From)
			}
		} else if p.pkt.From != echo {
			t.Fatalf("datagram %d from %v, want the echo server %v", i, p.pkt.From, echo)
		}
	}
}

// newBackend builds a socks6 backend from an HCL-shaped Config.
func newBackend(t *testing.T, env *gateway.Env, cfg *Config) *Backend {
	t.Helper()
	b, err := New(env, "up", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func associate(t *testing.T, b gateway.Backend, req *gateway.AssocRequest) gateway.Association {
	t.Helper()
	a, err := b.Associate(testCtx(t, 15*time.Second), req)
	if err != nil {
		t.Fatalf("Associate: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func inner(a gateway.Association) *association { return a.(*association) }

// TestBackendAssociateEcho relays 200 datagrams through the backend with
// each udp_over setting, and by falling back when the upstream has no UDP
// relay endpoint.
func TestBackendAssociateEcho(t *testing.T) {
	cert, key := writeCert(t)
	plain := startUpstream(t, upstreamOpts{users: true, udp: true})
	noUDP := startUpstream(t, upstreamOpts{users: true})
	secure := startUpstream(t, upstreamOpts{users: true, certFile: cert, keyFile: key, dtls: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	cred := func(c *Config) *Config { c.Username, c.Password = testUser, testPass; return c }
	tests := []struct {
		name string
		cfg  *Config
		want UDPTransport
	}{
		{"udp", cred(&Config{Server: plain.Addr}), UDPOverUDP},
		{"udp_over tcp", cred(&Config{Server: plain.Addr, UDPOver: "tcp"}), UDPOverTCP},
		{"udp_server of an upstream without one", cred(&Config{Server: noUDP.Addr}), UDPOverTCP},
		{"udp_over dtls", cred(&Config{Server: secure.Addr, UDPServer: secure.DTLSAddr, UDPOver: "dtls",
			TLS: &TLSConfig{CAFile: cert, ServerName: "localhost"}}), UDPOverDTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, nil, tt.cfg)
			a := associate(t, b, &gateway.AssocRequest{})
			r := readAssoc(a)
			assocEcho(t, a, r, echo.gatewayAddr(), 200)
			if got := inner(a).u.Transport(); got != tt.want {
				t.Errorf("transport %s, want %s", got, tt.want)
			}
		})
	}
}

// TestBackendAssociatePolicy goes through the gateway's router with a real
// policy: a denied destination is dropped and never reaches its listener,
// an allowed one is relayed, a name goes to the upstream.
func TestBackendAssociatePolicy(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	sink := newUDPPeer(t, "127.0.0.2:0", false)
	rt := buildRuntime(t, fmt.Sprintf(`
backend "socks6" "up" {
  server   = %q
  username = %q
  password = %q
}
route {
  destinations = ["127.0.0.2/32"]
  action       = "deny"
}
route {
  destinations = ["127.0.0.0/8", "::1/128", "localhost"]
  backend      = "up"
}
`, up.Addr, testUser, testPass))
	a, route, err := rt.Associate(testCtx(t, 10*time.Second), gateway.CmdUDP, &gateway.AssocRequest{})
	if err != nil {
		t.Fatalf("Associate: %v", err)
	}
	defer a.Close()
	if route.BackendName != "up" {
		t.Fatalf("route %s", route.BackendName)
	}
	r := readAssoc(a)
	for range 3 {
		err := a.WriteTo([]byte("denied"), sink.gatewayAddr(), gateway.DatagramMeta{})
		if gateway.ReasonOf(err) != gateway.ReasonNotAllowed || !strings.HasPrefix(err.Error(), "socks6 backend: ") {
			t.Fatalf("WriteTo a denied destination: %v", err)
		}
	}
	assocEcho(t, a, r, echo.gatewayAddr(), 20)
	assocEcho(t, a, r, gateway.Addr{Name: "localhost", Port: echo.addr.Port()}, 3)
	time.Sleep(200 * time.Millisecond)
	if n := sink.got.Load(); n != 0 {
		t.Fatalf("the denied destination received %d datagrams", n)
	}
	if n := up.metric(`sixgate_relayed_datagrams_total{direction="up",frontend="up"}`); n != 23 {
		t.Errorf("upstream relayed %v datagrams up, want 23", n)
	}
}

// denyPolicy refuses the listed addresses.
type denyPolicy map[netip.Addr]bool

func (p denyPolicy) Allow(ap netip.AddrPort) error {
	if p[ap.Addr()] {
		return fmt.Errorf("%s is denied", ap.Addr())
	}
	return nil
}

// mapResolver answers from a map.
type mapResolver map[string][]netip.Addr

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if ips, ok := m[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestBackendAssociateResolveLocal: with resolve = "local" names are
// resolved here and every address checked: a name with only denied
// addresses is dropped, one with an allowed address goes there.
func TestBackendAssociateResolveLocal(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	sink := newUDPPeer(t, "127.0.0.2:0", false)
	lo, lo2 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	env := &gateway.Env{Resolver: mapResolver{"good.test": {lo}, "bad.test": {lo2}, "mixed.test": {lo2, lo}}}
	b := newBackend(t, env, &Config{Server: up.Addr, Username: testUser, Password: testPass, Resolve: "local"})
	a := associate(t, b, &gateway.AssocRequest{Policy: denyPolicy{lo2: true}})
	r := readAssoc(a)
	port := echo.addr.Port()
	for _, name := range []string{"good.test", "mixed.test"} {
		if err := a.WriteTo([]byte(name), gateway.Addr{Name: name, Port: port}, gateway.DatagramMeta{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := r.next(t, 3*time.Second)
		if string(p.data) != name || p.pkt.From != echo.gatewayAddr() {
			t.Fatalf("%s: %q from %v", name, p.data, p.pkt.From)
		}
	}
	bad := gateway.Addr{Name: "bad.test", Port: sink.addr.Port()}
	a.WriteTo([]byte("queued"), bad, gateway.DatagramMeta{}) // waits for the lookup, then dropped
	waitFor(t, 3*time.Second, func() bool {
		return gateway.ReasonOf(a.WriteTo([]byte("again"), bad, gateway.DatagramMeta{})) == gateway.ReasonNotAllowed
	})
	missing := a.WriteTo([]byte("x"), gateway.Addr{Name: "missing.test", Port: port}, gateway.DatagramMeta{})
	if missing != nil {
		t.Fatalf("a first datagram to an unresolved name: %v, want queued", missing)
	}
	waitFor(t, 3*time.Second, func() bool {
		err := a.WriteTo([]byte("x"), gateway.Addr{Name: "missing.test", Port: port}, gateway.DatagramMeta{})
		return gateway.ReasonOf(err) == gateway.ReasonHostUnreachable
	})
	time.Sleep(200 * time.Millisecond)
	if n := sink.got.Load(); n != 0 {
		t.Fatalf("the denied address received %d datagrams", n)
	}
}

// TestBackendAssociateOptions: the upstream's echo becomes Options (UDP
// Error as the request had it), RelayAddr is the upstream's remote-facing
// address, and a Port Parity reservation is reported and can be taken by
// its token.
func TestBackendAssociateOptions(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	b := newBackend(t, nil, &Config{Server: up.Addr, Username: testUser, Password: testPass})
	req := &gateway.AssocRequest{
		Bind: ipAddr("127.0.0.1", 0),
		Options: gateway.StackOptions{
			TTL:        gateway.Want[uint8](5),
			DF:         gateway.Want(true),
			PortParity: gateway.Want(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}),
		},
		Principal: gateway.Principal{Session: "0102030405060708", Protocol: "socks6"},
	}
	a := associate(t, b, req)
	o := a.Options()
	if o.TTL.Outcome != gateway.Applied || o.TTL.Value != 5 || o.DF.Outcome != gateway.Applied || !o.DF.Value {
		t.Errorf("ttl %+v df %+v", o.TTL, o.DF)
	}
	if o.UDPError.Wanted() {
		t.Errorf("udp error %+v reported though not requested", o.UDPError)
	}
	if pp := o.PortParity; pp.Outcome != gateway.Applied || pp.Value != (gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}) {
		t.Errorf("port parity %+v", pp)
	}
	relay, ok := a.RelayAddr()
	if !ok || relay.IP != netip.MustParseAddr("127.0.0.1") || relay.Port%2 != 0 {
		t.Fatalf("relay %v %v", relay, ok)
	}
	res, ok := a.Reservation()
	if !ok || res.Addr != netip.AddrPortFrom(relay.IP, relay.Port+1) || res.Token == ([8]byte{}) || res.Owner != req.Principal.Session {
		t.Fatalf("reservation %+v %v", res, ok)
	}

	// Another session may not take it, the owner may, by its token.
	tok := res.Token
	_, err := b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{ReservationToken: &tok,
		Principal: gateway.Principal{Session: "ffff"}})
	wantReason(t, err, gateway.ReasonNotAllowed)
	_, err = b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{Bind: ipAddr("0.0.0.0", relay.Port+1),
		Principal: gateway.Principal{Session: "ffff"}})
	wantReason(t, err, gateway.ReasonNotAllowed)
	bogus := [8]byte{9}
	_, err = b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{ReservationToken: &bogus})
	wantReason(t, err, gateway.ReasonCapacityExhausted)
	a2 := associate(t, b, &gateway.AssocRequest{ReservationToken: &tok, Principal: req.Principal,
		Options: gateway.StackOptions{UDPError: gateway.Want(true)}})
	if r2, _ := a2.RelayAddr(); r2.Port != relay.Port+1 {
		t.Fatalf("the reservation's taker got %v, want port %d", r2, relay.Port+1)
	}
	if ue := a2.Options().UDPError; ue.Outcome != gateway.Applied || !ue.Value {
		t.Errorf("udp error %+v", ue)
	}
	if _, err := b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{ReservationToken: &tok, Principal: req.Principal}); err == nil {
		t.Fatal("a reservation was taken twice")
	}

	for _, tc := range []struct {
		req  gateway.AssocRequest
		want gateway.Reason
	}{
		{gateway.AssocRequest{Bind: gateway.Addr{Name: "relay.test"}}, gateway.ReasonAddrTypeNotSupported},
		{gateway.AssocRequest{Family: 6, Bind: ipAddr("127.0.0.1", 0)}, gateway.ReasonFamilyMismatch},
		{gateway.AssocRequest{Family: 5}, gateway.ReasonFamilyMismatch},
	} {
		_, err := b.Associate(testCtx(t, 5*time.Second), &tc.req)
		wantReason(t, err, tc.want)
	}
	a6 := associate(t, b, &gateway.AssocRequest{Family: 6})
	if r6, ok := a6.RelayAddr(); ok && !r6.Is6() {
		t.Errorf("family 6 relay %v", r6)
	}
}

// TestBackendAssociateEnds: the association ends with the upstream's
// control connection; ReadFrom then reports net.ErrClosed.
func TestBackendAssociateEnds(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	b := newBackend(t, nil, &Config{Server: up.Addr, Username: testUser, Password: testPass})
	a := associate(t, b, &gateway.AssocRequest{})
	r := readAssoc(a)
	up.restart()
	select {
	case _, ok := <-r.ch:
		if ok {
			t.Fatal("a packet instead of the end")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the association outlived its upstream")
	}
	if !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("ReadFrom: %v, want net.ErrClosed", r.err)
	}
	if err := a.WriteTo([]byte("x"), ipAddr("127.0.0.1", 9), gateway.DatagramMeta{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo: %v", err)
	}
}

// TestBackendAssociateViaChain: backend "far" reaches its upstream through
// backend "near": the control connection is a stream of near, the
// datagrams travel in an association of near.
func TestBackendAssociateViaChain(t *testing.T) {
	near := startUpstream(t, upstreamOpts{users: true, udp: true})
	far := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	rt := buildRuntime(t, fmt.Sprintf(`
backend "socks6" "near" {
  server   = %q
  username = %q
  password = %q
}
backend "socks6" "far" {
  server   = %q
  username = %q
  password = %q
  via      = "near"
}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "far"
}
`, near.Addr, testUser, testPass, far.Addr, testUser, testPass))
	a := associate(t, rt.Backends["far"], &gateway.AssocRequest{})
	r := readAssoc(a)
	assocEcho(t, a, r, echo.gatewayAddr(), 200)
	if got := inner(a).u.Transport(); got != UDPOverUDP {
		t.Fatalf("transport %s", got)
	}
	// near relayed far's relay messages as datagrams of its own.
	if n := near.metric(`sixgate_relayed_datagrams_total{direction="up",frontend="up"}`); n < 200 {
		t.Errorf("near relayed %v datagrams", n)
	}
	if n := far.metric(`sixgate_relayed_datagrams_total{direction="up",frontend="up"}`); n != 200 {
		t.Errorf("far relayed %v datagrams", n)
	}
}

// noDatagrams is a backend that carries streams but no datagrams.
type noDatagrams struct{ gateway.Backend }

func (noDatagrams) Associate(context.Context, *gateway.AssocRequest) (gateway.Association, error) {
	return nil, gateway.NewError(gateway.ReasonCommandNotSupported, "test", errors.New("no datagrams"))
}

// TestBackendAssociateViaWithoutDatagrams: a via backend that cannot carry
// datagrams makes them travel over the control connection, which goes
// through the via backend.
func TestBackendAssociateViaWithoutDatagrams(t *testing.T) {
	near := startUpstream(t, upstreamOpts{users: true, udp: true})
	far := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	nb := newBackend(t, nil, &Config{Server: near.Addr, Username: testUser, Password: testPass})
	fb := newBackend(t, &gateway.Env{Via: noDatagrams{nb}},
		&Config{Server: far.Addr, Username: testUser, Password: testPass, ViaBackend: "near"})
	a := associate(t, fb, &gateway.AssocRequest{})
	r := readAssoc(a)
	assocEcho(t, a, r, echo.gatewayAddr(), 50)
	if got := inner(a).u.Transport(); got != UDPOverTCP {
		t.Fatalf("transport %s", got)
	}
	if n := near.metric(`sixgate_relayed_datagrams_total{direction="up",frontend="up"}`); n != 0 {
		t.Errorf("near relayed %v datagrams", n)
	}
}

// TestBackendAssociateAllocs: a datagram's round trip through the
// backend's association (policy verdict cached) allocates nothing.
func TestBackendAssociateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with the race detector")
	}
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	b := newBackend(t, nil, &Config{Server: up.Addr, Username: testUser, Password: testPass})
	a := associate(t, b, &gateway.AssocRequest{Policy: denyPolicy{}})
	dst := echo.gatewayAddr()
	payload := make([]byte, 1200)
	buf := make([]byte, 65535)
	roundTrip := func() {
		if err := a.WriteTo(payload, dst, gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		roundTrip()
	}
	allocs := testing.AllocsPerRun(200, roundTrip)
	t.Logf("%.2f allocations per round trip", allocs)
	if allocs > 0.1 {
		t.Errorf("%.2f allocations per round trip", allocs)
	}
}

// TestBackendAssociateParked: an idle association over UDP gives its two
// readers up after a second (the data channel's, in a gateway.PacketLoop,
// and the control connection's); a datagram resumes the first, and the
// upstream's end of the association (its udp_idle_timeout) resumes the
// second, which ends the association: the packet loop sees that too.
func TestBackendAssociateParked(t *testing.T) {
	if gateway.ParkAfter() <= 0 {
		t.Skip("no park set on this system")
	}
	parked0 := gateway.ParkedReaders()
	up := startUpstream(t, upstreamOpts{users: true, udp: true, limits: `  udp_idle_timeout = "4s"`})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	b := newBackend(t, nil, &Config{Server: up.Addr, Username: testUser, Password: testPass})
	a := associate(t, b, &gateway.AssocRequest{})
	const head = 40
	pool := gateway.NewBufPool(head, 2048)
	gots := make(chan string, 8)
	exited := make(chan struct{})
	loop := gateway.StartPacketLoop(a, pool, func(buf []byte, pkt gateway.Packet) {
		gots <- string(buf[head : head+pkt.N])
	}, nil, func(error) bool { return true }, func() { close(exited) })
	defer func() { a.Close(); loop.Wake() }()
	exchange := func(msg string) time.Time {
		t.Helper()
		if err := a.WriteTo([]byte(msg), echo.gatewayAddr(), gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
		select {
		case g := <-gots:
			if g != msg {
				t.Fatalf("got %q, want %q", g, msg)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q did not come back", msg)
		}
		return time.Now()
	}
	exchange("first")
	if got := inner(a).u.Transport(); got != UDPOverUDP {
		t.Fatalf("transport %s", got)
	}
	if inner(a).ReadConn() == nil {
		t.Fatal("no ReadConn over UDP")
	}
	time.Sleep(100 * time.Millisecond) // the mapping's goroutine ends
	// Both readers parked and their goroutines gone; the park set's
	// goroutine may have started.
	running := runtime.NumGoroutine()
	gatewaytest.WaitParked(t, parked0+2, running-1)
	last := exchange("after a pause")
	gatewaytest.WaitParked(t, parked0+2, running-1)
	// The upstream ends the association 4 s after the last datagram.
	select {
	case <-exited:
		if d := time.Since(last); d < 3500*time.Millisecond {
			t.Fatalf("the association ended after %v, before the upstream's idle timeout", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the packet loop did not see the upstream end the association")
	}
	gatewaytest.CloseWithin(t, a, 5*time.Second) // not waiting for a control reader that did not end
}
