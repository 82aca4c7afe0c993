package direct

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// udpEcho is a UDP echo server for tests.
type udpEcho struct {
	pc *net.UDPConn
}

// newUDPEcho listens on addr and echoes every datagram to its sender until
// cleanup.
func newUDPEcho(t testing.TB, network, addr string) *udpEcho {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	return serveUDPEcho(t, c.(*net.UDPConn))
}

// serveUDPEcho echoes on pc until cleanup.
func serveUDPEcho(t testing.TB, pc *net.UDPConn) *udpEcho {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return &udpEcho{pc: pc}
}

func (e *udpEcho) addr() netip.AddrPort {
	ap := e.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func (e *udpEcho) gw() gateway.Addr { return gateway.AddrFromAddrPort(e.addr()) }

// udpSink is a UDP socket that collects what it receives.
type udpSink struct {
	pc  *net.UDPConn
	got chan []byte
}

func newUDPSink(t *testing.T, network, addr string) *udpSink {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{pc: c.(*net.UDPConn), got: make(chan []byte, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := s.pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			select {
			case s.got <- bytes.Clone(buf[:n]):
			default:
			}
		}
	}()
	t.Cleanup(func() {
		s.pc.Close()
		<-done
	})
	return s
}

func (s *udpSink) gw() gateway.Addr {
	ap := s.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return gateway.AddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

func (s *udpSink) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case b := <-s.got:
		t.Errorf("sink received %d bytes", len(b))
	case <-time.After(d):
	}
}

// associate opens an association and closes it at cleanup.
func associate(t testing.TB, b *Backend, req *gateway.AssocRequest) *association {
	t.Helper()
	a, err := b.Associate(context.Background(), req)
	if err != nil {
		t.Fatalf("Associate: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a.(*association)
}

// pkt is a packet read from an association, with its payload copied.
type pkt struct {
	gateway.Packet
	data []byte
}

// startReader reads a until it fails and sends what it reads on the
// returned channel; at cleanup it closes a and waits.
func startReader(t testing.TB, a gateway.Association) <-chan pkt {
	ch := make(chan pkt, 256)
	done := make(chan error, 1)
	go func() {
		defer close(ch)
		buf := make([]byte, 65536)
		for {
			p, err := a.ReadFrom(buf)
			if err != nil {
				done <- err
				return
			}
			ch <- pkt{Packet: p, data: bytes.Clone(buf[:p.N])}
		}
	}()
	t.Cleanup(func() {
		a.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom ended with %v, want net.ErrClosed", err)
		}
	})
	return ch
}

// next waits for the next packet of kind.
func next(t testing.TB, ch <-chan pkt, kind gateway.PacketKind) pkt {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case p, ok := <-ch:
			if !ok {
				t.Fatal("reader ended")
			}
			if p.Kind == kind {
				return p
			}
			t.Logf("skipping packet %+v", p.Packet)
		case <-deadline:
			t.Fatalf("no packet of kind %d", kind)
		}
	}
}

func wantGWReason(t *testing.T, err error, want gateway.Reason) {
	t.Helper()
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("err %T %v is not a *gateway.Error", err, err)
	}
	if ge.Reason != want {
		t.Fatalf("reason = %v, want %v (err: %v)", ge.Reason, want, err)
	}
}

func applied[T comparable](v T) gateway.Opt[T] {
	return gateway.Opt[T]{Outcome: gateway.Applied, Value: v}
}

// The bounds of an association's destination caches (gateway.Destinations
// with the default limits).
var (
	maxPending = gateway.DefaultDestLimits().Queued
	nameTTL    = gateway.DefaultDestLimits().NameTTL
)

// fakeClock is a Clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// countingResolver counts the lookups it passes on.
type countingResolver struct {
	mu    sync.Mutex
	calls int
	r     gateway.Resolver
}

func (c *countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	return c.r.LookupNetIP(ctx, network, host)
}

func (c *countingResolver) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// pingPong sends payload to dst and waits for the echo.
func pingPong(t testing.TB, a gateway.Association, ch <-chan pkt, dst gateway.Addr, from netip.AddrPort, payload []byte) {
	t.Helper()
	if err := a.WriteTo(payload, dst, gateway.DatagramMeta{}); err != nil {
		t.Fatalf("WriteTo %v: %v", dst, err)
	}
	p := next(t, ch, gateway.PacketData)
	if !bytes.Equal(p.data, payload) {
		t.Fatalf("echo of %d bytes came back as %d different bytes", len(payload), len(p.data))
	}
	if got := p.From.AddrPort(); got != from {
		t.Fatalf("echo from %v, want %v", got, from)
	}
}

func TestAssociateEcho(t *testing.T) {
	e4 := newUDPEcho(t, "udp4", "127.0.0.1:0")
	e6 := newUDPEcho(t, "udp6", "[::1]:0")
	tests := []struct {
		name   string
		family int
		bind   gateway.Addr
		echoes []*udpEcho
		fam    sockFam
	}{
		{name: "ipv4", family: 4, echoes: []*udpEcho{e4}, fam: fam4},
		{name: "ipv6", family: 6, echoes: []*udpEcho{e6}, fam: fam6},
		{name: "dual-stack any", echoes: []*udpEcho{e4, e6}, fam: famDual},
		{name: "dual-stack 0.0.0.0", bind: ipAddr("0.0.0.0", 0), echoes: []*udpEcho{e6, e4}, fam: famDual},
		{name: "ipv4 loopback", bind: ipAddr("127.0.0.1", 0), echoes: []*udpEcho{e4}, fam: fam4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{Own: gateway.NewOwnAddrs()})
			a := associate(t, b, &gateway.AssocRequest{Family: tt.family, Bind: tt.bind, Policy: loopback})
			if a.fam != tt.fam {
				t.Fatalf("socket %v, want %v", a.fam, tt.fam)
			}
			ch := startReader(t, a)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 200 {
				e := tt.echoes[i%len(tt.echoes)]
				payload := make([]byte, 1+(i*7)%1400)
				for j := range payload {
					payload[j] = byte(rng.Uint32())
				}
				pingPong(t, a, ch, e.gw(), e.addr(), payload)
			}
		})
	}
}

func TestAssociateName(t *testing.T) {
	echo := newUDPEcho(t, "udp4", "127.0.0.1:0")
	res := &countingResolver{r: net.DefaultResolver}
	clock := newFakeClock()
	b := newBackend(t, Config{}, Options{Resolver: res, Clock: clock})
	a := associate(t, b, &gateway.AssocRequest{Policy: loopback})
	ch := startReader(t, a)

	dst := nameAddr("localhost", echo.addr().Port())
	for i := range 5 {
		pingPong(t, a, ch, dst, echo.addr(), []byte{byte(i)})
	}
	if n := res.Calls(); n != 1 {
		t.Errorf("%d lookups for five datagrams, want 1 (cached)", n)
	}
	// Once the answer is old, the next datagram still goes out (to the
	// old address) and a new lookup starts.
	clock.Advance(nameTTL + time.Second)
	pingPong(t, a, ch, dst, echo.addr(), []byte("after expiry"))
	deadline := time.Now().Add(5 * time.Second)
	for res.Calls() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := res.Calls(); n != 2 {
		t.Errorf("%d lookups after the cache entry expired, want 2", n)
	}
}

func TestAssociateNameQueue(t *testing.T) {
	echo := newUDPEcho(t, "udp4", "127.0.0.1:0")
	block := make(chan struct{})
	res := &blockingResolver{release: block, answer: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}
	b := newBackend(t, Config{}, Options{Resolver: res})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	ch := startReader(t, a)
	dst := nameAddr("echo.test", echo.addr().Port())
	start := time.Now()
	for i := range maxPending {
		if err := a.WriteTo([]byte{byte(i)}, dst, gateway.DatagramMeta{}); err != nil {
			t.Fatalf("WriteTo %d while resolving: %v", i, err)
		}
	}
	err := a.WriteTo([]byte("one too many"), dst, gateway.DatagramMeta{})
	if !errors.Is(err, gateway.ErrDropped) {
		t.Fatalf("WriteTo with a full queue: %v, want gateway.ErrDropped", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("queueing took %v: WriteTo blocked", d)
	}
	close(block)
	seen := map[byte]bool{}
	for range maxPending {
		p := next(t, ch, gateway.PacketData)
		seen[p.data[0]] = true
	}
	if len(seen) != maxPending {
		t.Errorf("%d distinct queued datagrams came back, want %d", len(seen), maxPending)
	}
}

// blockingResolver answers once release is closed.
type blockingResolver struct {
	release chan struct{}
	answer  []netip.Addr
	err     error
}

func (r *blockingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	select {
	case <-r.release:
		return r.answer, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestAssociateNameRefused(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	tests := []struct {
		name   string
		res    gateway.Resolver
		policy gateway.Policy
		want   gateway.Reason
	}{
		{name: "denied address", res: newFakeResolver([]string{"127.0.0.1"}),
			policy: prefixes("10.0.0.0/8"), want: gateway.ReasonNotAllowed},
		{name: "not found", res: &blockingResolver{release: closedChan(),
			err: &net.DNSError{Err: "no such host", Name: "nx.test", IsNotFound: true}},
			policy: loopback, want: gateway.ReasonHostUnreachable},
		{name: "no address of the family", res: newFakeResolver([]string{"::1"}),
			policy: loopback, want: gateway.ReasonHostUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{Resolver: tt.res})
			a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: tt.policy})
			dst := nameAddr("x.test", sink.gw().Port)
			// The first datagram waits for the lookup; later ones
			// see its outcome.
			var err error
			deadline := time.Now().Add(5 * time.Second)
			for err == nil && time.Now().Before(deadline) {
				err = a.WriteTo([]byte("x"), dst, gateway.DatagramMeta{})
				time.Sleep(5 * time.Millisecond)
			}
			wantGWReason(t, err, tt.want)
			sink.none(t, 100*time.Millisecond)
		})
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestAssociatePolicyDenied(t *testing.T) {
	sink := newUDPSink(t, "udp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Policy: prefixes("::1/128")})
	for range 3 { // the second and third come from the verdict cache
		err := a.WriteTo([]byte("secret"), sink.gw(), gateway.DatagramMeta{})
		wantGWReason(t, err, gateway.ReasonNotAllowed)
	}
	sink.none(t, 200*time.Millisecond)
}

func TestAssociateOwnAddrs(t *testing.T) {
	own := gateway.NewOwnAddrs()
	b := newBackend(t, Config{}, Options{Own: own})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	other := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	self := ipAddr("127.0.0.1", a.bound.Port())
	if !own.Contains(self.AddrPort()) {
		t.Fatalf("own addresses lack the association's %v", self)
	}
	err := a.WriteTo([]byte("loop"), self, gateway.DatagramMeta{})
	wantGWReason(t, err, gateway.ReasonNotAllowed)
	err = other.WriteTo([]byte("loop"), self, gateway.DatagramMeta{})
	wantGWReason(t, err, gateway.ReasonNotAllowed)
	a.Close()
	if own.Contains(self.AddrPort()) {
		t.Errorf("own addresses still hold %v after Close", self)
	}
}

func TestAssociateClose(t *testing.T) {
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Policy: loopback})
	errc := make(chan error, 1)
	go func() {
		_, err := a.ReadFrom(make([]byte, 1500))
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadFrom still blocked after Close")
	}
	if err := a.WriteTo([]byte("x"), ipAddr("127.0.0.1", 9), gateway.DatagramMeta{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
	if _, err := a.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestAssociateFamilyMismatch(t *testing.T) {
	b := newBackend(t, Config{}, Options{})
	a4 := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	wantGWReason(t, a4.WriteTo([]byte("x"), ipAddr("::1", 9), gateway.DatagramMeta{}), gateway.ReasonFamilyMismatch)
	a6 := associate(t, b, &gateway.AssocRequest{Family: 6, Policy: loopback})
	wantGWReason(t, a6.WriteTo([]byte("x"), ipAddr("127.0.0.1", 9), gateway.DatagramMeta{}), gateway.ReasonFamilyMismatch)
	wantGWReason(t, a6.WriteTo([]byte("x"), ipAddr("::", 9), gateway.DatagramMeta{}), gateway.ReasonHostUnreachable)
	wantGWReason(t, a6.WriteTo([]byte("x"), ipAddr("::1", 0), gateway.DatagramMeta{}), gateway.ReasonHostUnreachable)
}

func TestAssociatePlan(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		req     gateway.AssocRequest
		fam     sockFam
		relay   string // the relay IP; "" to skip
		bound   string // the bound IP
		wantErr gateway.Reason
	}{
		{name: "zero", fam: famDual, bound: "::"},
		{name: "family 4", req: gateway.AssocRequest{Family: 4}, fam: fam4, bound: "0.0.0.0"},
		{name: "family 6", req: gateway.AssocRequest{Family: 6}, fam: fam6, bound: "::"},
		{name: "any v6 relay", req: gateway.AssocRequest{Bind: ipAddr("::", 0)}, fam: famDual, bound: "::"},
		{name: "loopback", req: gateway.AssocRequest{Bind: ipAddr("127.0.0.1", 0)}, fam: fam4,
			relay: "127.0.0.1", bound: "127.0.0.1"},
		{name: "loopback v6", req: gateway.AssocRequest{Bind: ipAddr("::1", 0)}, fam: fam6,
			relay: "::1", bound: "::1"},
		{name: "bind_ipv4", cfg: Config{BindIPv4: "127.0.0.1"}, fam: fam4, relay: "127.0.0.1", bound: "127.0.0.1"},
		{name: "bind_ipv6 only", cfg: Config{BindIPv6: "::1"}, fam: fam6, relay: "::1", bound: "::1"},
		{name: "bind_ipv6 only 0.0.0.0", cfg: Config{BindIPv6: "::1"}, req: gateway.AssocRequest{Bind: ipAddr("0.0.0.0", 0)},
			fam: fam4, bound: "0.0.0.0"},
		{name: "both configured v6", cfg: Config{BindIPv4: "127.0.0.1", BindIPv6: "::1"},
			req: gateway.AssocRequest{Family: 6}, fam: fam6, relay: "::1", bound: "::1"},
		{name: "advertise", cfg: Config{AdvertiseIPv4: "192.0.2.7", AdvertiseIPv6: "2001:db8::7"},
			req: gateway.AssocRequest{Bind: ipAddr("127.0.0.1", 0)}, fam: fam4, relay: "192.0.2.7", bound: "127.0.0.1"},
		{name: "advertise v6", cfg: Config{AdvertiseIPv4: "192.0.2.7", AdvertiseIPv6: "2001:db8::7"},
			req: gateway.AssocRequest{Family: 6}, fam: fam6, relay: "2001:db8::7", bound: "::"},
		{name: "name", req: gateway.AssocRequest{Bind: nameAddr("example.org", 0)}, wantErr: gateway.ReasonAddrTypeNotSupported},
		{name: "family 4 with v6 address", req: gateway.AssocRequest{Family: 4, Bind: ipAddr("::1", 0)},
			wantErr: gateway.ReasonFamilyMismatch},
		{name: "family 6 with v4 address", req: gateway.AssocRequest{Family: 6, Bind: ipAddr("127.0.0.1", 0)},
			wantErr: gateway.ReasonFamilyMismatch},
		{name: "family 5", req: gateway.AssocRequest{Family: 5}, wantErr: gateway.ReasonFamilyMismatch},
		{name: "not the bind address", cfg: Config{BindIPv4: "127.0.0.1"},
			req: gateway.AssocRequest{Bind: ipAddr("127.0.0.2", 0)}, wantErr: gateway.ReasonNotAllowed},
		{name: "privileged port", req: gateway.AssocRequest{Bind: ipAddr("127.0.0.1", 53)}, wantErr: gateway.ReasonNotAllowed},
		{name: "port outside range", cfg: Config{PortRange: "40000-40010"},
			req: gateway.AssocRequest{Bind: ipAddr("127.0.0.1", 50000)}, wantErr: gateway.ReasonNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.cfg, Options{})
			req := tt.req
			assoc, err := b.Associate(context.Background(), &req)
			if tt.wantErr != gateway.ReasonNone {
				if assoc != nil {
					assoc.Close()
				}
				wantGWReason(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("Associate: %v", err)
			}
			a := assoc.(*association)
			defer a.Close()
			if a.fam != tt.fam {
				t.Errorf("socket %v, want %v", a.fam, tt.fam)
			}
			if got := a.bound.Addr().String(); got != tt.bound {
				t.Errorf("bound to %v, want %v", got, tt.bound)
			}
			relay, ok := a.RelayAddr()
			if !ok || relay.Port != a.bound.Port() || relay.Port == 0 {
				t.Errorf("RelayAddr = %v, %v; bound %v", relay, ok, a.bound)
			}
			if tt.relay != "" && relay.IP.String() != tt.relay {
				t.Errorf("relay IP %v, want %v", relay.IP, tt.relay)
			}
			wantV6 := tt.fam == fam6 || (tt.fam == famDual && req.Bind.IP.Is6())
			if relay.IP.Is6() != wantV6 {
				t.Errorf("relay %v is not of the relay family (v6 %v)", relay, wantV6)
			}
			if _, ok := a.Reservation(); ok {
				t.Error("reservation without Port Parity")
			}
		})
	}
}

// TestAssociateRelayUnspecified checks that an association bound to any
// address reports the kernel's preferred source address.
func TestAssociateRelayUnspecified(t *testing.T) {
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Family: 4})
	relay, _ := a.RelayAddr()
	want := netip.IPv4Unspecified()
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		want = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
		c.Close()
	}
	if relay.IP != want {
		t.Errorf("relay IP %v, want %v", relay.IP, want)
	}
}

func TestAssociatePortRange(t *testing.T) {
	lo := freeUDPBlock(t, 4)
	cfg := Config{PortRange: portRange(lo, lo+3)}
	b := newBackend(t, cfg, Options{})
	seen := map[uint16]bool{}
	for range 4 {
		a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
		p := a.bound.Port()
		if p < lo || p > lo+3 || seen[p] {
			t.Fatalf("port %d: outside %d-%d or repeated", p, lo, lo+3)
		}
		seen[p] = true
	}
	_, err := b.Associate(context.Background(), &gateway.AssocRequest{Family: 4})
	wantGWReason(t, err, gateway.ReasonCapacityExhausted)

	a := associate(t, newBackend(t, cfg, Options{}), &gateway.AssocRequest{Family: 6})
	if p := a.bound.Port(); p < lo || p > lo+3 {
		t.Errorf("ipv6 port %d outside the range", p)
	}
}

// freeUDPBlock returns the first of n consecutive ports that are free for
// UDP on 0.0.0.0 and [::] right now.
func freeUDPBlock(t *testing.T, n int) uint16 {
	t.Helper()
	for range 100 {
		lo := uint16(20000 + rand.IntN(20000))
		ok := true
		for p := lo; p < lo+uint16(n) && ok; p++ {
			for _, network := range []string{"udp4", "udp6"} {
				c, err := net.ListenPacket(network, net.JoinHostPort("", itoa(p)))
				if err != nil {
					ok = false
					break
				}
				c.Close()
			}
		}
		if ok {
			return lo
		}
	}
	t.Fatal("no free block of UDP ports")
	return 0
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func portRange(lo, hi uint16) string { return itoa(lo) + "-" + itoa(hi) }
