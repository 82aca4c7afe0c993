package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"
	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// turnLab is three network namespaces in a row:
//
//	gw      lo: sixgate (TURN on 127.0.0.1) and the TURN client
//	        eth0 10.83.1.1/24, default via 10.83.1.2
//	router  eth0 10.83.1.2/24, eth1 10.83.2.1/24, forwarding, no ICMP rate
//	        limit, route unreachable 10.83.9.0/24
//	dest    eth0 10.83.2.2/24, default via 10.83.2.1
type turnLab struct{ gw, router, dest *netns }

func newTURNLab(t *testing.T) *turnLab {
	t.Helper()
	l := &turnLab{gw: newNetns(t), router: newNetns(t), dest: newNetns(t)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "link", "add", "eth0", "netns", l.gw.name, "type", "veth", "peer", "name", "eth0", "netns", l.router.name)
	run("ip", "link", "add", "eth1", "netns", l.router.name, "type", "veth", "peer", "name", "eth0", "netns", l.dest.name)
	l.gw.in("addr", "add", "10.83.1.1/24", "dev", "eth0")
	l.router.in("addr", "add", "10.83.1.2/24", "dev", "eth0")
	l.router.in("addr", "add", "10.83.2.1/24", "dev", "eth1")
	l.dest.in("addr", "add", "10.83.2.2/24", "dev", "eth0")
	l.gw.in("link", "set", "eth0", "up")
	l.router.in("link", "set", "eth0", "up")
	l.router.in("link", "set", "eth1", "up")
	l.dest.in("link", "set", "eth0", "up")
	l.gw.in("route", "add", "default", "via", "10.83.1.2")
	l.dest.in("route", "add", "default", "via", "10.83.2.1")
	l.router.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0")
	l.router.in("route", "add", "unreachable", "10.83.9.0/24")
	return l
}

// TestTURNICMP sends through a TURN allocation to a destination behind an
// unreachable route (the router answers Destination Unreachable), and with
// the client's own packet TTL lowered to 2 (RFC 8656 §14: the relay copies
// TTL-1, so the router answers Time Exceeded); both ICMP errors come back as
// Data indications with the ICMP attribute and the failed datagram's
// destination.
func TestTURNICMP(t *testing.T) {
	l := newTURNLab(t)
	port := gatewaytest.FreePort(t)
	cfg := fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "staff" {
  user "user" {
    password = "pass"
  }
}
frontend "turn" "turn" {
  listen = "127.0.0.1:%d"
  realm  = "sixgate"
  users  = "staff"
}
backend "direct" "out" {
  bind_ipv4 = "10.83.1.1"
}
route {
  destinations = ["10.83.0.0/16"]
  backend      = "out"
}
`, port)
	startGatewayCmd(t, cfg, l.gw.prefix())
	var conn *net.UDPConn
	l.gw.do(func() {
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			t.Error(err)
			return
		}
		conn = c
	})
	if conn == nil {
		t.FailNow()
	}
	defer conn.Close()
	c := &rawTURN{t: t, c: conn, user: "user", pass: "pass", key: tt.LongTermKey("user", "sixgate", "pass")}
	r := c.allocate()
	if r.Relayed[0].Addr() != netip.MustParseAddr("10.83.1.1") {
		t.Fatalf("relay %v", r.Relayed)
	}
	unreachable := netip.MustParseAddrPort("10.83.9.9:5000")
	far := netip.MustParseAddrPort("10.83.2.2:5000")
	c.mustDo(0, tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: unreachable}, tt.PeerAddress{Addr: far})

	expectICMP := func(peer netip.AddrPort, typ uint8) {
		t.Helper()
		buf := make([]byte, 1500)
		deadline := time.Now().Add(5 * time.Second)
		for {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no ICMP indication for %v: %v", peer, err)
			}
			m := new(stun.Message)
			if tt.Decode(buf[:n], m) != nil || m.Type != tt.TypeDataIndication {
				continue
			}
			d, err := tt.ParseData(m)
			if err != nil {
				t.Fatal(err)
			}
			if !d.HasICMP || d.Peer != peer || d.ICMP.Type != typ {
				t.Fatalf("indication %+v, want ICMP type %d for %v", d, typ, peer)
			}
			t.Logf("ICMP type %d code %d for %v", d.ICMP.Type, d.ICMP.Code, d.Peer)
			return
		}
	}
	send := func(peer netip.AddrPort) {
		b, err := tt.AppendSendIndication(nil, [12]byte{7}, peer, []byte("probe"), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	send(unreachable)
	expectICMP(unreachable, 3)

	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 2) })
	send(far)
	expectICMP(far, 11)
}
