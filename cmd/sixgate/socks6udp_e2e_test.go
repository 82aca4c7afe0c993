package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// End-to-end tests of the SOCKS 6 frontend's UDP ASSOCIATE, driven by the
// project's SOCKS 6 client (backends/socks6).

// TestSOCKS6UDPAssocIDsUnpredictable opens 1000 associations and checks
// their IDs: no duplicates, not sequential, and bits that look random.
func TestSOCKS6UDPAssocIDsUnpredictable(t *testing.T) {
	port := gatewaytest.FreePort(t)
	startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "s6" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, port))
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: fmt.Sprintf("127.0.0.1:%d", port)})
	if err != nil {
		t.Fatal(err)
	}
	const n, workers = 1000, 8
	ids := make([]s6.AssocID, n)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				u, err := c.UDPAssociate(ctx, &bsocks6.UDPOptions{Over: bsocks6.UDPOverTCP})
				cancel()
				if err != nil {
					errs <- fmt.Errorf("association %d: %w", i, err)
					return
				}
				ids[i] = u.ID
				u.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d associations in %v", n, time.Since(start).Round(time.Millisecond))

	seen := map[s6.AssocID]int{}
	ones, small := 0, 0
	for i, id := range ids {
		if j, dup := seen[id]; dup {
			t.Fatalf("associations %d and %d share the ID %x", j, i, id)
		}
		seen[id] = i
		v := binary.BigEndian.Uint64(id[:])
		ones += bits.OnesCount64(v)
		if i > 0 {
			prev := binary.BigEndian.Uint64(ids[i-1][:])
			if d := v - prev; d < 1<<32 || -d < 1<<32 {
				small++
			}
		}
	}
	// Sequential or counter-based IDs sit close to each other; random ones
	// differ by less than 2^32 with probability 2^-31.
	if small > 2 {
		t.Errorf("%d consecutive IDs are within 2^32 of each other", small)
	}
	// 64000 fair bits: mean 32000, standard deviation about 126.
	if ones < 32000-800 || ones > 32000+800 {
		t.Errorf("%d of %d ID bits set", ones, 64*n)
	}
}

// s6uLab is three network namespaces in a row:
//
//	gw      lo: sixgate and the SOCKS 6 client
//	        eth0 10.84.1.1/24 fd84:1::1/64, default via the router
//	router  eth0 10.84.1.2/24 fd84:1::2/64
//	        eth1 10.84.2.1/24 fd84:2::1/64 (MTU 1280)
//	        forwarding, no ICMP rate limit, unreachable 10.84.9.0/24 and
//	        fd84:9::/64
//	dest    eth0 10.84.2.2/24 fd84:2::2/64 (MTU 1280), a UDP echo server
type s6uLab struct {
	gw, router, dest *netns
	echo             uint16
}

var (
	s6uRouter4 = netip.MustParseAddr("10.84.1.2")
	s6uRouter6 = netip.MustParseAddr("fd84:1::2")
	s6uDest4   = netip.MustParseAddr("10.84.2.2")
	s6uDest6   = netip.MustParseAddr("fd84:2::2")
	s6uUnr4    = netip.MustParseAddr("10.84.9.9")
	s6uUnr6    = netip.MustParseAddr("fd84:9::9")
)

func newS6ULab(t *testing.T) *s6uLab {
	t.Helper()
	l := &s6uLab{gw: newNetns(t), router: newNetns(t), dest: newNetns(t)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, n := range []*netns{l.gw, l.router, l.dest} {
		n.sh("sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	run("ip", "link", "add", "eth0", "netns", l.gw.name, "type", "veth", "peer", "name", "eth0", "netns", l.router.name)
	run("ip", "link", "add", "eth1", "netns", l.router.name, "type", "veth", "peer", "name", "eth0", "netns", l.dest.name)
	l.router.in("link", "set", "eth1", "mtu", "1280")
	l.dest.in("link", "set", "eth0", "mtu", "1280")
	l.gw.in("addr", "add", "10.84.1.1/24", "dev", "eth0")
	l.gw.in("-6", "addr", "add", "fd84:1::1/64", "dev", "eth0", "nodad")
	l.router.in("addr", "add", "10.84.1.2/24", "dev", "eth0")
	l.router.in("-6", "addr", "add", "fd84:1::2/64", "dev", "eth0", "nodad")
	l.router.in("addr", "add", "10.84.2.1/24", "dev", "eth1")
	l.router.in("-6", "addr", "add", "fd84:2::1/64", "dev", "eth1", "nodad")
	l.dest.in("addr", "add", "10.84.2.2/24", "dev", "eth0")
	l.dest.in("-6", "addr", "add", "fd84:2::2/64", "dev", "eth0", "nodad")
	links := []struct {
		n   *netns
		dev string
	}{{l.gw, "eth0"}, {l.router, "eth0"}, {l.router, "eth1"}, {l.dest, "eth0"}}
	for _, x := range links {
		x.n.in("link", "set", x.dev, "up")
	}
	l.gw.in("route", "add", "default", "via", "10.84.1.2")
	l.gw.in("-6", "route", "add", "default", "via", "fd84:1::2")
	l.dest.in("route", "add", "default", "via", "10.84.2.1")
	l.dest.in("-6", "route", "add", "default", "via", "fd84:2::1")
	l.router.in("route", "add", "unreachable", "10.84.9.0/24")
	l.router.in("-6", "route", "add", "unreachable", "fd84:9::/64")
	l.router.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
	l.dest.sh("sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
	for _, x := range links {
		s6uWaitUp(t, x.n, x.dev)
	}
	var pc *net.UDPConn
	var err error
	l.dest.do(func() { pc, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified}) })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	l.echo = uint16(pc.LocalAddr().(*net.UDPAddr).Port)
	return l
}

// s6uWaitUp waits until a link is operationally up (a new veth drops what
// it is given until then).
func s6uWaitUp(t *testing.T, n *netns, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", n.name, "-o", "link", "show", "dev", dev).CombinedOutput()
		if err == nil && strings.Contains(string(out), "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s is not up: %s", dev, n.name, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// s6uClient is a SOCKS 6 client whose sockets live in the namespace n.
func s6uClient(t *testing.T, n *netns, server string) *bsocks6.Client {
	t.Helper()
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: server, Dial: s6uDialer(n)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// s6uDialer dials from inside the namespace n.
func s6uDialer(n *netns) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		n.do(func() { conn, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
		return conn, err
	}
}

// s6uOpts shape an association of the lab's client.
type s6uOpts struct {
	// udpError opts in to Error messages.
	udpError bool
	// ttl, if non-zero, is the TTL on leg 2; df asks for DF there.
	ttl uint8
	df  bool
	// over is how the datagrams travel to the proxy.
	over bsocks6.UDPTransport
}

// s6uAssociate opens a mapped association from inside the lab's gateway
// namespace.
func s6uAssociate(t *testing.T, l *s6uLab, server string, o s6uOpts) *bsocks6.UDPAssoc {
	t.Helper()
	udpError, ttl := o.udpError, o.ttl
	var legs s6.Legs
	if udpError {
		legs.Remote.UDPError = gateway.Want(true)
	}
	if ttl != 0 {
		legs.Remote.TTL = gateway.Want(ttl)
	}
	if o.df {
		legs.Remote.DF = gateway.Want(true)
	}
	dial := s6uDialer(l.gw)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := s6uClient(t, l.gw, server).UDPAssociate(ctx, &bsocks6.UDPOptions{
		Legs: legs, ReceiveFirst: true, Over: o.over,
		DialPacket: func(ctx context.Context, relay string) (net.Conn, error) { return dial(ctx, "udp", relay) },
	})
	if err != nil {
		t.Fatalf("UDPAssociate: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	if u.Transport() != o.over {
		t.Fatalf("transport %s", u.Transport())
	}
	if udpError {
		if o := u.Legs.Remote.UDPError; o.Outcome != gateway.Applied || !o.Value {
			t.Fatalf("udp error %+v", o)
		}
	}
	if ttl != 0 {
		if o := u.Legs.Remote.TTL; o.Outcome != gateway.Applied || o.Value != ttl {
			t.Fatalf("ttl %+v", o)
		}
	}
	return u
}

// expectError sends probes to dst until an Error message comes back and
// checks its code, destination and reporter.
func expectError(t *testing.T, u *bsocks6.UDPAssoc, dst netip.AddrPort, size int, code s6.ErrorCode, reporter netip.Addr) {
	t.Helper()
	buf := make([]byte, 2048)
	probe := make([]byte, size)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if err := u.WriteTo(probe, gateway.AddrFromAddrPort(dst)); err != nil {
			t.Fatalf("WriteTo %v: %v", dst, err)
		}
		u.SetReadDeadline(time.Now().Add(time.Second))
		pkt, err := u.ReadFrom(buf)
		if err != nil {
			continue // a lost probe (neighbour discovery); send another
		}
		if pkt.Kind != gateway.PacketICMP {
			t.Fatalf("a datagram from %v instead of an Error message", pkt.From)
		}
		got, ok := s6.ErrorCodeForICMP(pkt.ICMP)
		if !ok || got != code || pkt.ICMP.Dest != dst || pkt.ICMP.Reporter != reporter {
			t.Fatalf("error %+v (code %d), want code %d for %v reported by %v", pkt.ICMP, got, code, dst, reporter)
		}
		t.Logf("Error message code %d (%s) for %v from %v", got, got, dst, reporter)
		return
	}
	t.Fatalf("no Error message for %v", dst)
}

// s6uMetric reads one sample from the admin endpoint at admin inside the
// namespace n.
func s6uMetric(t *testing.T, n *netns, admin, sample string) float64 {
	t.Helper()
	dial := s6uDialer(n)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, sample+" ") {
			v, err := strconv.ParseFloat(strings.TrimPrefix(line, sample+" "), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// expectNoError sends probes to dst and checks that nothing comes back.
func expectNoError(t *testing.T, u *bsocks6.UDPAssoc, dst netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 2048)
	for range 3 {
		if err := u.WriteTo([]byte("probe"), gateway.AddrFromAddrPort(dst)); err != nil {
			t.Fatal(err)
		}
		u.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if pkt, err := u.ReadFrom(buf); err == nil {
			t.Fatalf("received %+v although the client did not opt in", pkt)
		}
	}
}

// TestSOCKS6UDPErrorMessages: ICMP errors at the far end reach the client
// as Error messages with the router as reporter: TTL expired (code 3), an
// IPv4 unreachable route (code 2), an IPv6 unreachable route (ICMPv6 1/0,
// code 1) and an IPv6 datagram larger than the far link's MTU (code 4); a
// client that did not opt in gets none.
func TestSOCKS6UDPErrorMessages(t *testing.T) {
	l := newS6ULab(t)
	port := gatewaytest.FreePort(t)
	g := startGatewayCmd(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "s6" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {}
route {
  destinations = ["10.84.0.0/16", "fd84::/16"]
  backend      = "out"
}
`, port), l.gw.prefix())
	server := fmt.Sprintf("127.0.0.1:%d", port)
	dest4 := netip.AddrPortFrom(s6uDest4, l.echo)

	t.Run("echo", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true})
		buf := make([]byte, 2048)
		for _, dst := range []netip.AddrPort{dest4, netip.AddrPortFrom(s6uDest6, l.echo)} {
			for attempt := 0; ; attempt++ {
				u.WriteTo([]byte("ping"), gateway.AddrFromAddrPort(dst))
				u.SetReadDeadline(time.Now().Add(time.Second))
				pkt, err := u.ReadFrom(buf)
				if err == nil {
					if pkt.From.AddrPort() != dst || string(buf[:pkt.N]) != "ping" {
						t.Fatalf("%+v %q", pkt, buf[:pkt.N])
					}
					break
				}
				if attempt == 5 {
					t.Fatalf("no echo from %v: %v", dst, err)
				}
			}
		}
	})
	t.Run("ttl expired", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true, ttl: 1})
		expectError(t, u, dest4, 32, s6.ErrorCodeTTLExpired, s6uRouter4)
	})
	t.Run("ttl expired, datagrams over tcp", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true, ttl: 1, over: bsocks6.UDPOverTCP})
		expectError(t, u, dest4, 32, s6.ErrorCodeTTLExpired, s6uRouter4)
	})
	t.Run("ipv4 unreachable route", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true})
		expectError(t, u, netip.AddrPortFrom(s6uUnr4, 5000), 32, s6.ErrorCodeHostUnreachable, s6uRouter4)
	})
	t.Run("ipv6 unreachable route", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true})
		expectError(t, u, netip.AddrPortFrom(s6uUnr6, 5000), 32, s6.ErrorCodeNetUnreachable, s6uRouter6)
	})
	t.Run("ipv6 datagram too big", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{udpError: true, df: true})
		if o := u.Legs.Remote.DF; o.Outcome != gateway.Applied || !o.Value {
			t.Fatalf("df %+v", o)
		}
		expectError(t, u, netip.AddrPortFrom(s6uDest6, l.echo), 1400, s6.ErrorCodeDatagramTooBig, s6uRouter6)
	})
	t.Run("not opted in", func(t *testing.T) {
		u := s6uAssociate(t, l, server, s6uOpts{ttl: 1})
		if u.Legs.Remote.UDPError.Wanted() {
			t.Fatalf("udp error %+v", u.Legs.Remote.UDPError)
		}
		expectNoError(t, u, dest4)
		expectNoError(t, u, netip.AddrPortFrom(s6uUnr4, 5000))
		// The errors did happen; the frontend kept them from the client.
		if n := s6uMetric(t, l.gw, g.Addr("admin"), `sixgate_icmp_errors_total{frontend="s6",result="not_opted_in"}`); n < 2 {
			t.Fatalf("%v ICMP errors withheld from the client that did not opt in, want at least 2", n)
		}
	})
}

// TestSOCKS6UDPErrorTwoHops: sixgate A (socks6 frontend, socks6 backend)
// relays through sixgate B (socks6 frontend, direct backend); a TTL
// expired at the far end reaches A's client as an Error message.
func TestSOCKS6UDPErrorTwoHops(t *testing.T) {
	l := newS6ULab(t)
	portA, portB := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	startGatewayCmd(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "b" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {}
route {
  destinations = ["10.84.0.0/16", "fd84::/16"]
  backend      = "out"
}
`, portB), l.gw.prefix())
	startGatewayCmd(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "a" {
  listen = "127.0.0.1:%d"
}
backend "socks6" "b" {
  server = "127.0.0.1:%d"
}
route {
  destinations = ["10.84.0.0/16", "fd84::/16"]
  backend      = "b"
}
`, portA, portB), l.gw.prefix())
	u := s6uAssociate(t, l, fmt.Sprintf("127.0.0.1:%d", portA), s6uOpts{udpError: true, ttl: 1})
	expectError(t, u, netip.AddrPortFrom(s6uDest4, l.echo), 32, s6.ErrorCodeTTLExpired, s6uRouter4)

	// Without TTL 1 the same path carries datagrams both ways.
	u2 := s6uAssociate(t, l, fmt.Sprintf("127.0.0.1:%d", portA), s6uOpts{udpError: true})
	buf := make([]byte, 2048)
	dst := gateway.AddrFromAddrPort(netip.AddrPortFrom(s6uDest4, l.echo))
	for attempt := 0; ; attempt++ {
		u2.WriteTo([]byte("two hops"), dst)
		u2.SetReadDeadline(time.Now().Add(time.Second))
		pkt, err := u2.ReadFrom(buf)
		if err == nil {
			if pkt.From != dst || string(buf[:pkt.N]) != "two hops" {
				t.Fatalf("%+v %q", pkt, buf[:pkt.N])
			}
			break
		}
		if attempt == 5 {
			t.Fatalf("no echo through two hops: %v", err)
		}
	}
}
