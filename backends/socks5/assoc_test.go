package socks5

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// fakeRelay is a scripted SOCKS 5 server for UDP ASSOCIATE whose relay is
// a UDP socket the test reads and writes.
type fakeRelay struct {
	addr  string       // the TCP server
	relay *net.UDPConn // the relay socket
	req   chan s5.Request
	ctrl  chan net.Conn // the control connection, once the reply is sent
}

// startFakeRelay answers UDP ASSOCIATE with bound as BND (its port
// replaced by the relay's when bound.Port is 0).
func startFakeRelay(t testing.TB, bound gateway.Addr) *fakeRelay {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	f := &fakeRelay{relay: pc, req: make(chan s5.Request, 1), ctrl: make(chan net.Conn, 1)}
	if bound.Port == 0 {
		bound.Port = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	}
	f.addr = scriptServer(t, func(c net.Conn) {
		if !greeted(c, s5.MethodNoAuth) {
			return
		}
		q, err := s5.ReadRequest(c)
		if err != nil {
			return
		}
		f.req <- q
		msg, _ := s5.Reply{Code: s5.RepSucceeded, Bound: bound}.Append(nil)
		c.Write(msg)
		c.SetDeadline(time.Time{})
		f.ctrl <- c
		hang(c)
	})
	return f
}

// datagram builds a SOCKS 5 UDP datagram.
func datagram(t testing.TB, frag uint8, from gateway.Addr, payload string) []byte {
	b, err := s5.UDPHeader{Frag: frag, Addr: from}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, payload...)
}

func associate(t *testing.T, b *Backend, policy gateway.Policy) gateway.Association {
	t.Helper()
	a, err := b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// readRelay reads one datagram at the relay and parses it.
func readRelay(t *testing.T, f *fakeRelay) (s5.UDPHeader, string, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 70000)
	f.relay.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := f.relay.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := s5.ParseUDPHeader(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	return h, string(p), from
}

func TestAssociateWire(t *testing.T) {
	// An unspecified BND.ADDR: the relay is the server's address.
	f := startFakeRelay(t, gateway.Addr{IP: netip.IPv4Unspecified()})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	p := &denyPolicy{deny: map[netip.AddrPort]bool{netip.MustParseAddrPort("192.0.2.66:53"): true}}
	a := associate(t, b, p)
	q := <-f.req
	if q.Command != s5.CmdUDPAssociate || !q.Dest.IP.IsLoopback() || q.Dest.Port == 0 {
		t.Fatalf("request %v %s, want udp associate from the association's socket", q.Command, q.Dest)
	}

	// IP destination: policy-checked, header with the IP.
	dst := mustAddr(t, "192.0.2.7:53")
	if err := a.WriteTo([]byte("hello"), dst, gateway.DatagramMeta{TTL: 3}); err != nil {
		t.Fatal(err)
	}
	h, payload, src := readRelay(t, f)
	if h.Addr != dst || payload != "hello" || h.Frag != 0 {
		t.Fatalf("relay got %s %q frag %d", h.Addr, payload, h.Frag)
	}
	if src != q.Dest.AddrPort() {
		t.Errorf("datagram from %s, but the request named %s", src, q.Dest)
	}
	// Denied: an error, nothing sent; the verdict is cached.
	denied := mustAddr(t, "192.0.2.66:53")
	for range 3 {
		err := a.WriteTo([]byte("no"), denied, gateway.DatagramMeta{})
		reasonIs(t, err, gateway.ReasonNotAllowed)
		if !errors.Is(err, gateway.ErrDropped) {
			t.Errorf("%v does not wrap ErrDropped", err)
		}
	}
	a.WriteTo([]byte("again"), dst, gateway.DatagramMeta{})
	if _, payload, _ := readRelay(t, f); payload != "again" {
		t.Fatalf("relay got %q after the denied datagrams", payload)
	}
	asked := map[netip.AddrPort]int{}
	for _, ap := range p.asked {
		asked[ap]++
	}
	if asked[denied.AddrPort()] != 1 || asked[dst.AddrPort()] != 1 {
		t.Errorf("policy asked %v, want each destination once", asked)
	}
	// A name is forwarded (resolve = "remote"), unchecked.
	a.WriteTo([]byte("named"), gateway.Addr{Name: "example.org", Port: 53}, gateway.DatagramMeta{})
	if h, payload, _ := readRelay(t, f); h.Addr.Name != "example.org" || payload != "named" {
		t.Fatalf("relay got %s %q", h.Addr, payload)
	}

	// From the relay: parsed, From is the header's address.
	assoc := a.(*sockAssociation).association
	buf := make([]byte, 65536)
	f.relay.WriteToUDPAddrPort(datagram(t, 0, dst, "answer"), src)
	pkt, err := a.ReadFrom(buf)
	if err != nil || pkt.From != dst || string(buf[:pkt.N]) != "answer" {
		t.Fatalf("ReadFrom = %+v %q %v", pkt, buf[:pkt.N], err)
	}
	// Foreign sources, fragments and malformed headers are dropped.
	other, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer other.Close()
	other.WriteToUDPAddrPort(datagram(t, 0, dst, "foreign"), src)
	f.relay.WriteToUDPAddrPort(datagram(t, 1, dst, "fragment"), src)
	f.relay.WriteToUDPAddrPort([]byte{0, 0, 0, 9, 1}, src)
	f.relay.WriteToUDPAddrPort(datagram(t, 0, gateway.Addr{Name: "peer.example", Port: 7}, "last"), src)
	pkt, err = a.ReadFrom(buf)
	if err != nil || pkt.From.Name != "peer.example" || string(buf[:pkt.N]) != "last" {
		t.Fatalf("ReadFrom = %+v %q %v", pkt, buf[:pkt.N], err)
	}
	if assoc.foreign.Load() != 1 || assoc.frag.Load() != 1 || assoc.malformed.Load() != 1 {
		t.Errorf("dropped foreign %d frag %d malformed %d, want 1 each", assoc.foreign.Load(), assoc.frag.Load(), assoc.malformed.Load())
	}

	// The server closing the control connection ends the association.
	ctrl := <-f.ctrl
	ctrl.Close()
	if _, err := a.ReadFrom(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after the control connection closed = %v, want net.ErrClosed", err)
	}
	if err := a.WriteTo([]byte("x"), dst, gateway.DatagramMeta{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteTo after the end = %v, want net.ErrClosed", err)
	}
}

func TestAssociateCloseUnblocksReadFrom(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	own := gateway.NewOwnAddrs()
	b := newBackend(t, "up", Config{Server: f.addr}, Options{Own: own})
	a, err := b.Associate(testCtx(t, 5*time.Second), &gateway.AssocRequest{})
	if err != nil {
		t.Fatal(err)
	}
	sock := (<-f.req).Dest.AddrPort()
	if !own.Contains(sock) {
		t.Errorf("the association's socket %s is not among the gateway's own", sock)
	}
	if up, exact := a.RelayAddr(); exact || up != gateway.AddrFromAddrPort(f.relay.LocalAddr().(*net.UDPAddr).AddrPort()) {
		t.Errorf("RelayAddr = %s, exact %v", up, exact)
	}
	defer func() {
		if own.Contains(sock) {
			t.Errorf("%s is still among the gateway's own after Close", sock)
		}
	}()
	done := make(chan error, 1)
	go func() {
		_, err := a.ReadFrom(make([]byte, 2048))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadFrom = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end ReadFrom")
	}
}

func TestAssociateResolveLocal(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	res := staticResolver{
		"two.test":    {netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("192.0.2.8")},
		"denied.test": {netip.MustParseAddr("192.0.2.66")},
	}
	b := newBackend(t, "up", Config{Server: f.addr, Resolve: "local"}, Options{Resolver: res})
	p := &denyPolicy{deny: map[netip.AddrPort]bool{netip.MustParseAddrPort("192.0.2.66:0"): true}}
	a := associate(t, b, p)
	// The first datagram waits for the lookup, then goes to the allowed
	// address; later ones use the cached answer.
	for i, port := range []uint16{53, 54} {
		if err := a.WriteTo([]byte{byte(i)}, gateway.Addr{Name: "two.test", Port: port}, gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
		h, payload, _ := readRelay(t, f)
		if h.Addr != mustAddr(t, "192.0.2.8:"+[]string{"53", "54"}[i]) || payload != string([]byte{byte(i)}) {
			t.Fatalf("relay got %s %q", h.Addr, payload)
		}
	}
	// A name with no allowed address: the first datagram waits and is
	// dropped; once answered, WriteTo says so.
	a.WriteTo([]byte("x"), gateway.Addr{Name: "denied.test", Port: 53}, gateway.DatagramMeta{})
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := a.WriteTo([]byte("x"), gateway.Addr{Name: "denied.test", Port: 53}, gateway.DatagramMeta{})
		if err != nil {
			reasonIs(t, err, gateway.ReasonNotAllowed)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the denied name was never refused")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Unknown names: host unreachable once the lookup failed.
	a.WriteTo([]byte("x"), gateway.Addr{Name: "nx.test", Port: 53}, gateway.DatagramMeta{})
	for {
		err := a.WriteTo([]byte("x"), gateway.Addr{Name: "nx.test", Port: 53}, gateway.DatagramMeta{})
		if err != nil {
			reasonIs(t, err, gateway.ReasonHostUnreachable)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unknown name was never refused")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAssociateRefusals(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	ctx := testCtx(t, 5*time.Second)
	_, err := b.Associate(ctx, &gateway.AssocRequest{ReservationToken: &[8]byte{1}})
	reasonIs(t, err, gateway.ReasonCapacityExhausted)
	_, err = b.Associate(ctx, &gateway.AssocRequest{Bind: mustAddr(t, "0.0.0.0:4000")})
	reasonIs(t, err, gateway.ReasonCommandNotSupported)
	req := &gateway.AssocRequest{}
	req.Options.PortParity = gateway.Want(gateway.PortParity{Parity: gateway.ParityEven})
	a, err := b.Associate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Options().PortParity.Outcome != gateway.Unsupported {
		t.Errorf("PortParity outcome %s", a.Options().PortParity.Outcome)
	}
	if _, ok := a.Reservation(); ok {
		t.Error("a reservation")
	}
}

func TestAssociateAllocs(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	a := associate(t, b, &denyPolicy{})
	src := (<-f.req).Dest.AddrPort()
	payload := bytes.Repeat([]byte{7}, 1200)
	dst4, dst6 := mustAddr(t, "192.0.2.7:53"), mustAddr(t, "[2001:db8::7]:53")
	a.WriteTo(payload, dst4, gateway.DatagramMeta{}) // warm the verdict cache and the pool
	a.WriteTo(payload, dst6, gateway.DatagramMeta{})
	for _, dst := range []gateway.Addr{dst4, dst6} {
		if n := testing.AllocsPerRun(200, func() { a.WriteTo(payload, dst, gateway.DatagramMeta{}) }); n != 0 {
			t.Errorf("WriteTo to %s: %.1f allocations, want 0", dst, n)
		}
	}
	in := datagram(t, 0, dst4, string(payload))
	buf := make([]byte, 65536)
	if n := testing.AllocsPerRun(200, func() {
		f.relay.WriteToUDPAddrPort(in, src)
		if _, err := a.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ReadFrom: %.1f allocations, want 0", n)
	}
}

// BenchmarkWriteTo measures WriteTo to an IP destination with a policy
// (cached verdict): header, copy and one sendto(2).
func BenchmarkWriteTo(b *testing.B) {
	f := startFakeRelay(b, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	bk := newBackend(b, "up", Config{Server: f.addr}, Options{})
	a, err := bk.Associate(context.Background(), &gateway.AssocRequest{Policy: &denyPolicy{}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	go func() { // drain the relay
		buf := make([]byte, 65536)
		for {
			if _, _, err := f.relay.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	payload := make([]byte, 1200)
	dst := gateway.Addr{IP: netip.MustParseAddr("192.0.2.7"), Port: 53}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		a.WriteTo(payload, dst, gateway.DatagramMeta{})
	}
}
