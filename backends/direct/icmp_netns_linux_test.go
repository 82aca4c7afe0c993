//go:build linux

package direct

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// icmpLab is three fresh network namespaces:
//
//	gateway  eth0 10.81.1.1/24 fd81:1::1/64
//	   |
//	router   eth0 10.81.1.2/24 fd81:1::2/64 (forwarding, no ICMP rate limit)
//	         eth1 10.81.2.1/24 fd81:2::1/64 (MTU 1280)
//	   |     unreachable routes 10.81.9.0/24 and fd81:9::/64
//	dest     eth0 10.81.2.2/24 fd81:2::2/64 (MTU 1280), a UDP echo server
type icmpLab struct {
	gw, router, dest string
	echo             uint16 // the echo server's port in dest
}

var labs atomic.Int32

var (
	labGW4     = netip.MustParseAddr("10.81.1.1")
	labGW6     = netip.MustParseAddr("fd81:1::1")
	labRouter4 = netip.MustParseAddr("10.81.1.2")
	labRouter6 = netip.MustParseAddr("fd81:1::2")
	labDest4   = netip.MustParseAddr("10.81.2.2")
	labDest6   = netip.MustParseAddr("fd81:2::2")
	labUnr4    = netip.MustParseAddr("10.81.9.9")
	labUnr6    = netip.MustParseAddr("fd81:9::9")
)

func newICMPLab(t *testing.T) *icmpLab {
	t.Helper()
	requireRoot(t)
	n := labs.Add(1)
	l := &icmpLab{
		gw:     newNetns(t, fmt.Sprintf("g%d", n)),
		router: newNetns(t, fmt.Sprintf("r%d", n)),
		dest:   newNetns(t, fmt.Sprintf("d%d", n)),
	}
	ip := func(ns string, args ...string) { run(t, append([]string{"ip", "-n", ns}, args...)...) }
	sysctl := func(ns string, kv ...string) { sysctlIn(t, ns, kv...) }
	// No duplicate address detection, not even for the link-local
	// addresses of the links about to be made: no waiting for addresses.
	for _, ns := range []string{l.gw, l.router, l.dest} {
		sysctl(ns, "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	run(t, "ip", "link", "add", "eth0", "netns", l.gw, "type", "veth", "peer", "name", "eth0", "netns", l.router)
	run(t, "ip", "link", "add", "eth1", "netns", l.router, "type", "veth", "peer", "name", "eth0", "netns", l.dest)
	ip(l.router, "link", "set", "eth1", "mtu", "1280")
	ip(l.dest, "link", "set", "eth0", "mtu", "1280")
	ip(l.gw, "addr", "add", "10.81.1.1/24", "dev", "eth0")
	ip(l.gw, "-6", "addr", "add", "fd81:1::1/64", "dev", "eth0", "nodad")
	ip(l.router, "addr", "add", "10.81.1.2/24", "dev", "eth0")
	ip(l.router, "-6", "addr", "add", "fd81:1::2/64", "dev", "eth0", "nodad")
	ip(l.router, "addr", "add", "10.81.2.1/24", "dev", "eth1")
	ip(l.router, "-6", "addr", "add", "fd81:2::1/64", "dev", "eth1", "nodad")
	ip(l.dest, "addr", "add", "10.81.2.2/24", "dev", "eth0")
	ip(l.dest, "-6", "addr", "add", "fd81:2::2/64", "dev", "eth0", "nodad")
	for _, x := range [][2]string{{l.gw, "eth0"}, {l.router, "eth0"}, {l.router, "eth1"}, {l.dest, "eth0"}} {
		ip(x[0], "link", "set", x[1], "up")
	}
	ip(l.gw, "route", "add", "default", "via", "10.81.1.2")
	ip(l.gw, "-6", "route", "add", "default", "via", "fd81:1::2")
	ip(l.dest, "route", "add", "default", "via", "10.81.2.1")
	ip(l.dest, "-6", "route", "add", "default", "via", "fd81:2::1")
	// A new link drops what it is given until the kernel's link watch
	// has activated it (up to a second later): wait for that, so no
	// neighbour solicitation is lost.
	for _, x := range [][2]string{{l.gw, "eth0"}, {l.router, "eth0"}, {l.router, "eth1"}, {l.dest, "eth0"}} {
		waitLinkUp(t, x[0], x[1])
	}
	ip(l.router, "route", "add", "unreachable", "10.81.9.0/24")
	ip(l.router, "-6", "route", "add", "unreachable", "fd81:9::/64")
	sysctl(l.router, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
		"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")
	sysctl(l.dest, "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0")

	var (
		pc  net.PacketConn
		err error
	)
	inNetns(t, l.dest, func() { pc, err = net.ListenPacket("udp", "[::]:0") })
	if err != nil {
		t.Fatalf("echo in %s: %v", l.dest, err)
	}
	e := serveUDPEcho(t, pc.(*net.UDPConn))
	l.echo = e.addr().Port()
	return l
}

// sysctlIn sets "key=value" sysctls in the namespace ns (through /proc/sys
// from a thread inside it, which is much quicker than ip netns exec).
func sysctlIn(t *testing.T, ns string, kv ...string) {
	t.Helper()
	var err error
	inNetns(t, ns, func() {
		for _, s := range kv {
			k, v, _ := strings.Cut(s, "=")
			if err = os.WriteFile("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), []byte(v), 0); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("sysctl in %s: %v", ns, err)
	}
}

// waitLinkUp waits until the link dev in ns is operationally up.
func waitLinkUp(t *testing.T, ns, dev string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).CombinedOutput()
		if err == nil && strings.Contains(string(out), "state UP") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s is not up: %s", dev, ns, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// associate opens an association inside the gateway namespace.
func (l *icmpLab) associate(t *testing.T, b *Backend, req *gateway.AssocRequest) *association {
	t.Helper()
	var (
		a   gateway.Association
		err error
	)
	inNetns(t, l.gw, func() { a, err = b.Associate(context.Background(), req) })
	if err != nil {
		t.Fatalf("Associate in %s: %v", l.gw, err)
	}
	t.Cleanup(func() { a.Close() })
	return a.(*association)
}

func wantICMP(t *testing.T, p pkt, want gateway.ICMPError) {
	t.Helper()
	if p.ICMP != want {
		t.Fatalf("ICMP error %+v\nwant           %+v", p.ICMP, want)
	}
}

// echoes checks that the association still relays: a datagram to the echo
// server comes back.
func (l *icmpLab) echoes(t *testing.T, a gateway.Association, ch <-chan pkt, ip netip.Addr, meta gateway.DatagramMeta) {
	t.Helper()
	dst := netip.AddrPortFrom(ip, l.echo)
	if err := a.WriteTo([]byte("still here"), gateway.AddrFromAddrPort(dst), meta); err != nil {
		t.Fatalf("WriteTo %v: %v", dst, err)
	}
	p := next(t, ch, gateway.PacketData)
	if string(p.data) != "still here" || p.From.AddrPort() != dst {
		t.Fatalf("echo %q from %v, want from %v", p.data, p.From, dst)
	}
}

func TestICMPTimeExceededNetns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		family    int
		assocTTL  bool // the TTL comes from the association's stack option
		dest      netip.Addr
		v6        bool
		typ, code uint8
		reporter  netip.Addr
	}{
		{name: "ipv4 option", family: 4, assocTTL: true, dest: labDest4, typ: 11, reporter: labRouter4},
		{name: "ipv4 per datagram", family: 4, dest: labDest4, typ: 11, reporter: labRouter4},
		{name: "ipv6 option", family: 6, assocTTL: true, dest: labDest6, v6: true, typ: 3, reporter: labRouter6},
		{name: "ipv6 per datagram", family: 6, dest: labDest6, v6: true, typ: 3, reporter: labRouter6},
		{name: "dual-stack ipv4", dest: labDest4, typ: 11, reporter: labRouter4},
		{name: "dual-stack ipv6", dest: labDest6, v6: true, typ: 3, reporter: labRouter6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newICMPLab(t)
			b := newBackend(t, Config{}, Options{})
			req := &gateway.AssocRequest{Family: tc.family, Options: gateway.StackOptions{UDPError: gateway.Want(true)}}
			meta := gateway.DatagramMeta{TTL: 1}
			if tc.assocTTL {
				req.Options.TTL = gateway.Want[uint8](1)
				meta = gateway.DatagramMeta{}
			}
			a := l.associate(t, b, req)
			if tc.assocTTL && a.Options().TTL != applied[uint8](1) {
				t.Fatalf("TTL option %+v", a.Options().TTL)
			}
			ch := startReader(t, a)
			dst := netip.AddrPortFrom(tc.dest, l.echo)
			if err := a.WriteTo([]byte("traceroute"), gateway.AddrFromAddrPort(dst), meta); err != nil {
				t.Fatal(err)
			}
			wantICMP(t, next(t, ch, gateway.PacketICMP), gateway.ICMPError{
				V6: tc.v6, Type: tc.typ, Code: 0, Dest: dst, Reporter: tc.reporter,
			})
			l.echoes(t, a, ch, tc.dest, gateway.DatagramMeta{TTL: 64})
		})
	}
}

func TestICMPUnreachableNetns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		family    int
		dest      netip.AddrPort
		v6        bool
		typ, code uint8
		reporter  netip.Addr
	}{
		{name: "ipv4 host unreachable", family: 4, dest: netip.AddrPortFrom(labUnr4, 53), typ: 3, code: 1, reporter: labRouter4},
		{name: "ipv6 no route", family: 6, dest: netip.AddrPortFrom(labUnr6, 53), v6: true, typ: 1, code: 0, reporter: labRouter6},
		{name: "ipv4 port unreachable", family: 4, dest: netip.AddrPortFrom(labDest4, 9), typ: 3, code: 3, reporter: labDest4},
		{name: "ipv6 port unreachable", family: 6, dest: netip.AddrPortFrom(labDest6, 9), v6: true, typ: 1, code: 4, reporter: labDest6},
		{name: "dual-stack ipv4 port unreachable", dest: netip.AddrPortFrom(labDest4, 9), typ: 3, code: 3, reporter: labDest4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newICMPLab(t)
			b := newBackend(t, Config{}, Options{})
			a := l.associate(t, b, &gateway.AssocRequest{Family: tc.family})
			ch := startReader(t, a)
			// Several in a row: each one is reported, and the errors
			// the kernel leaves pending never stop the association.
			for i := range 3 {
				if err := a.WriteTo([]byte{byte(i)}, gateway.AddrFromAddrPort(tc.dest), gateway.DatagramMeta{}); err != nil {
					t.Logf("WriteTo %d: %v", i, err) // a pending error may refuse one; it is retried once
				}
				wantICMP(t, next(t, ch, gateway.PacketICMP), gateway.ICMPError{
					V6: tc.v6, Type: tc.typ, Code: tc.code, Dest: tc.dest, Reporter: tc.reporter,
				})
			}
			echo := labDest4
			if tc.v6 {
				echo = labDest6
			}
			l.echoes(t, a, ch, echo, gateway.DatagramMeta{})
		})
	}
}

func TestICMPTooBigNetns(t *testing.T) {
	for _, tc := range []struct {
		name      string
		family    int
		dest      netip.Addr
		v6        bool
		typ, code uint8
		router    netip.Addr
		local     netip.Addr
		assocDF   bool
	}{
		{name: "ipv6", family: 6, dest: labDest6, v6: true, typ: 2, router: labRouter6, local: labGW6},
		{name: "ipv6 option", family: 6, dest: labDest6, v6: true, typ: 2, router: labRouter6, local: labGW6, assocDF: true},
		{name: "ipv4", family: 4, dest: labDest4, typ: 3, code: 4, router: labRouter4, local: labGW4},
		{name: "dual-stack ipv4", dest: labDest4, typ: 3, code: 4, router: labRouter4, local: labGW4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newICMPLab(t)
			b := newBackend(t, Config{}, Options{})
			req := &gateway.AssocRequest{Family: tc.family}
			meta := gateway.DatagramMeta{DF: true}
			if tc.assocDF {
				req.Options.DF = gateway.Want(true)
				meta = gateway.DatagramMeta{}
			}
			a := l.associate(t, b, req)
			ch := startReader(t, a)
			dst := netip.AddrPortFrom(tc.dest, l.echo)
			big := make([]byte, 1400)
			if err := a.WriteTo(big, gateway.AddrFromAddrPort(dst), meta); err != nil {
				t.Fatalf("first WriteTo: %v", err)
			}
			wantICMP(t, next(t, ch, gateway.PacketICMP), gateway.ICMPError{
				V6: tc.v6, Type: tc.typ, Code: tc.code, MTU: 1280, Dest: dst, Reporter: tc.router,
			})
			// The path MTU is known now: the kernel refuses the next
			// one itself, and that is reported the same way.
			err := a.WriteTo(big, gateway.AddrFromAddrPort(dst), meta)
			if !errors.Is(err, syscall.EMSGSIZE) {
				t.Fatalf("second WriteTo: %v, want EMSGSIZE", err)
			}
			wantICMP(t, next(t, ch, gateway.PacketICMP), gateway.ICMPError{
				V6: tc.v6, Type: tc.typ, Code: tc.code, MTU: 1280, Dest: dst, Reporter: tc.local, Local: true,
			})
			// A datagram that fits goes through.
			l.echoes(t, a, ch, tc.dest, meta)
		})
	}
}
