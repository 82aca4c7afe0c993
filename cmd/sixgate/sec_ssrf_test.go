package main

// SSRF suite (issue 12, part 2). sixgate runs in a network namespace where
// every forbidden destination exists for real: loopback, 10.0.0.1,
// 169.254.169.254 and fe80::1 are local addresses with a canary listener
// that records any connection, and a DNS server answers names that point at
// them. The only route is a catch-all to the direct backend that lists no
// special range, so none of them may be reached: SOCKS 5 answers REP 0x02
// (0x04 for a name that does not resolve or is not a name), SOCKS 6
// answers an Operation Reply 0x02 (0x04 for a name that does not resolve;
// an IP-literal-looking name is not a valid SOCKS 6 name and the Request is
// refused without a reply, §2.1). Two more frontends have a route that
// unlocks loopback, to show that the gateway's own admin and listener ports
// stay out of reach even then. A name that resolves to a public-looking
// address first and to 127.0.0.1 afterwards must be dialled at the address
// checked, or fail.

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// secNsDialer dials from inside a network namespace.
func secNsDialer(ns *netns) func(network, laddr, raddr string) (net.Conn, error) {
	return func(network, laddr, raddr string) (c net.Conn, err error) {
		d := net.Dialer{Timeout: 3 * time.Second}
		if laddr != "" {
			a, err := net.ResolveTCPAddr("tcp", laddr)
			if err != nil {
				return nil, err
			}
			d.LocalAddr = a
		}
		ns.do(func() { c, err = d.Dial(network, raddr) })
		return c, err
	}
}

// secSynWatch records the TCP SYNs a host receives (a raw socket in its
// namespace), by destination port.
type secSynWatch struct {
	mu    sync.Mutex
	ports map[uint16]int
}

func secWatchSYNs(t *testing.T, ns *netns, ip string) *secSynWatch {
	w := &secSynWatch{ports: map[uint16]int{}}
	var conn *net.IPConn
	ns.do(func() {
		var err error
		conn, err = net.ListenIP("ip4:tcp", &net.IPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Errorf("raw socket: %v", err)
		}
	})
	if conn == nil {
		t.FailNow()
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 14 && buf[13]&0x12 == 0x02 { // SYN without ACK
				w.mu.Lock()
				w.ports[uint16(buf[2])<<8|uint16(buf[3])]++
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *secSynWatch) count(port uint16) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ports[port]
}

// secSsrfEnv is the namespace, its canaries and the gateway.
type secSsrfEnv struct {
	st       *secTarget
	canaries *secCanary
	pubSeen  func() int
	dns      *dnsServer
	admin    netip.AddrPort
	syns     *secSynWatch
	ports    map[string]int
}

const (
	secCanaryPort = 7777 // every forbidden address listens here
	secOpenPort   = 7778 // 127.0.0.1: reachable through the "open" frontends
	secPubIP      = "11.0.0.1"
)

func secNewSSRFEnv(t *testing.T) *secSsrfEnv {
	ns := newNetns(t)
	for _, a := range []string{"10.0.0.1/32", "169.254.169.254/32", secPubIP + "/32"} {
		ns.in("addr", "add", a, "dev", "lo")
	}
	ns.in("addr", "add", "fe80::1/64", "dev", "lo")
	// A remote host on a veth link, to see whether a SYN leaves the host.
	remote := newNetns(t)
	ns.in("link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", remote.name)
	ns.in("addr", "add", "11.1.0.1/24", "dev", "v0")
	ns.in("link", "set", "v0", "up")
	remote.in("addr", "add", "11.1.0.2/24", "dev", "v1")
	remote.in("link", "set", "v1", "up")

	e := &secSsrfEnv{ports: map[string]int{"s6": 1080, "s5": 1081, "s6open": 1082, "s5open": 1083}}
	var dnsPC net.PacketConn
	var pubMu sync.Mutex
	pubHits := 0
	ns.do(func() {
		e.canaries = secListenCanary(t,
			fmt.Sprintf("127.0.0.1:%d", secCanaryPort), fmt.Sprintf("[::1]:%d", secCanaryPort),
			fmt.Sprintf("10.0.0.1:%d", secCanaryPort), fmt.Sprintf("169.254.169.254:%d", secCanaryPort),
			fmt.Sprintf("[fe80::1%%lo]:%d", secCanaryPort), fmt.Sprintf("127.0.0.2:%d", secCanaryPort))
		ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", secPubIP, secCanaryPort))
		if err != nil {
			t.Error(err)
			return
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				pubMu.Lock()
				pubHits++
				pubMu.Unlock()
				go func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(10 * time.Second))
					buf := make([]byte, 512)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						c.Write(buf[:n])
					}
				}()
			}
		}()
		secStartEcho(t, fmt.Sprintf("127.0.0.1:%d", secOpenPort))
		dnsPC, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	e.pubSeen = func() int { pubMu.Lock(); defer pubMu.Unlock(); return pubHits }
	e.syns = secWatchSYNs(t, remote, "11.1.0.2")

	pub, lo := netip.MustParseAddr(secPubIP), netip.MustParseAddr("127.0.0.1")
	e.dns = startDNS(t, dnsPC, map[string][]netip.Addr{
		"loopback.test": {lo},
		"lo6.test":      {netip.MustParseAddr("::1")},
		"meta.test":     {netip.MustParseAddr("169.254.169.254")},
		"private.test":  {netip.MustParseAddr("10.0.0.1")},
		"admin.test":    {lo},
		"mixed.test":    {lo, pub}, // one answer with both
		"rebind.test":   {pub},     // alternates per question
		"later.test":    {pub},     // loopback after the first lookup
	})
	e.dns.mu.Lock() // the server is already answering
	e.dns.onQuery = func(name string, n int, table map[string][]netip.Addr) {
		switch name {
		case "rebind.test":
			if n%2 == 1 {
				table[name] = []netip.Addr{lo}
			} else {
				table[name] = []netip.Addr{pub}
			}
		case "later.test":
			if n >= 2 { // A and AAAA of the first lookup
				table[name] = []netip.Addr{lo}
			}
		}
	}
	e.dns.mu.Unlock()
	cfg := fmt.Sprintf(`
admin {
  listen = "127.0.0.1:9090"
}
resolver {
  servers = [%q]
  cache   = "0s"
}
limits {
  handshake_timeout = "1s"
}
frontend "socks6" "s6" {
  listen = "127.0.0.1:%d"
}
frontend "socks5" "s5" {
  listen = "127.0.0.1:%d"
}
frontend "socks6" "s6open" {
  listen = "127.0.0.1:%d"
}
frontend "socks5" "s5open" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {
  dial_timeout = "1s"
}
route {
  frontends    = ["s6open", "s5open"]
  destinations = ["127.0.0.0/8", "::1/128"]
  backend      = "out"
}
route {
  backend = "out"
}
`, dnsPC.LocalAddr().String(), e.ports["s6"], e.ports["s5"], e.ports["s6open"], e.ports["s5open"])
	g := startGatewayCmd(t, cfg, ns.prefix())
	e.admin = netip.MustParseAddrPort("127.0.0.1:9090")
	e.st = &secTarget{t: t, proc: g, admin: "127.0.0.1:9090", handshake: time.Second, dialer: secNsDialer(ns),
		echo: netip.AddrPortFrom(pub, secCanaryPort), fe: map[string]string{}}
	for fe, p := range e.ports {
		e.st.fe[fe] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return e
}

// secSsrfDest is a forbidden destination and the reply it gets.
type secSsrfDest struct {
	label string
	atyp  byte // 1, 3 or 4
	addr  []byte
	port  uint16
	// code5 is the SOCKS 5 REP; code6 the SOCKS 6 Operation Reply code, or
	// -1 for a Request refused without reply (not a valid SOCKS 6 name).
	code5 byte
	code6 int
}

func secV4(s string) []byte { a := netip.MustParseAddr(s).As4(); return a[:] }
func secV6(s string) []byte { a := netip.MustParseAddr(s).As16(); return a[:] }
func secDest4(s string, port uint16) secSsrfDest {
	return secSsrfDest{label: s, atyp: 1, addr: secV4(s), port: port, code5: 2, code6: 2}
}
func secDest6(s string, port uint16) secSsrfDest {
	return secSsrfDest{label: "[" + s + "]", atyp: 4, addr: secV6(s), port: port, code5: 2, code6: 2}
}
func secDestName(name string, port uint16, code5 byte, code6 int) secSsrfDest {
	return secSsrfDest{label: fmt.Sprintf("name %q", name), atyp: 3, addr: []byte(name), port: port, code5: code5, code6: code6}
}

// cases turns destinations into raw cases for a SOCKS 5 and a SOCKS 6
// frontend.
func secSsrfCases(dests []secSsrfDest, fe5, fe6 string) []secCase {
	var out []secCase
	for _, d := range dests {
		a5, a6 := d.addr, d.addr
		if d.atyp == 3 {
			a5, a6 = secS5Name(string(d.addr)), secS6Name(string(d.addr))
		}
		out = append(out, secCase{name: d.label, fe: fe5, spec: fmt.Sprintf("RFC 1928 §6 X'%02x'", d.code5),
			steps: []secStep{secExpect([]byte{5, 1, 0}, "0500"), secExpect(secS5Req(1, d.atyp, a5, d.port), secS5Rep(d.code5))}})
		c6 := secCase{name: d.label, fe: fe6, spec: fmt.Sprintf("§3.4 code 0x%02x", d.code6)}
		req := secS6Req(1, 0, d.port, d.atyp, a6, nil)
		if d.code6 < 0 {
			c6.spec = "§2.1: not a valid name, refused without a reply"
			c6.steps = []secStep{secSend(req)}
		} else {
			c6.steps = []secStep{secExpect(req, secS6AuthOK+secS6Op(byte(d.code6)))}
		}
		out = append(out, c6)
	}
	return out
}

func TestSecSSRF(t *testing.T) {
	e := secNewSSRFEnv(t)
	st := e.st
	for _, fe := range []string{"s5", "s6", "s5open", "s6open"} {
		if err := st.validConnect(fe, ""); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	base := st.snapshot()
	const p = secCanaryPort
	forbidden := []secSsrfDest{
		secDest4("127.0.0.1", p), secDest4("127.0.0.2", p), secDest4("127.255.255.254", p), secDest4("0.0.0.0", p),
		secDest4("10.0.0.1", p), secDest4("169.254.169.254", p),
		secDest6("::1", p), secDest6("::", p), secDest6("::ffff:127.0.0.1", p), secDest6("::ffff:169.254.169.254", p),
		secDest6("::ffff:10.0.0.1", p), secDest6("::127.0.0.1", p), secDest6("64:ff9b::7f00:1", p), secDest6("fe80::1", p),
		secDestName("127.1", p, 4, -1),
		secDestName("0x7f.1", p, 4, 4),
		secDestName("2130706433", p, 4, -1),
		secDestName("0177.0.0.1", p, 4, -1),
		secDestName("127.0.0.1.", p, 2, 2),
		secDestName("[::1]", p, 2, 2),
		secDestName("::ffff:127.0.0.1", p, 2, 2),
		secDestName("fe80::1%lo", p, 4, -1),
		secDestName("localhost", p, 2, 2),
		secDestName("LOCALHOST.", p, 2, 2),
		secDestName("loopback.test", p, 2, 2),
		secDestName("lo6.test", p, 2, 2),
		secDestName("meta.test", p, 2, 2),
		secDestName("private.test", p, 2, 2),
	}
	t.Run("special ranges", func(t *testing.T) {
		st.runAll(t, secSsrfCases(forbidden, "s5", "s6"))
	})
	// The gateway's own sockets, through frontends whose route unlocks
	// loopback: still not allowed.
	named := func(d secSsrfDest, what string) secSsrfDest {
		d.label = fmt.Sprintf("%s port %d (%s)", d.label, d.port, what)
		return d
	}
	own := []secSsrfDest{
		named(secDest4("127.0.0.1", e.admin.Port()), "admin"), named(secDest6("::ffff:127.0.0.1", e.admin.Port()), "admin"),
		named(secDestName("admin.test", e.admin.Port(), 2, 2), "admin"), named(secDestName("localhost", e.admin.Port(), 2, 2), "admin"),
	}
	for fe, fp := range e.ports {
		own = append(own, named(secDest4("127.0.0.1", uint16(fp)), "listener of "+fe))
	}
	t.Run("own sockets", func(t *testing.T) {
		// Control: loopback itself is reachable through these frontends.
		for _, fe := range []string{"s5open", "s6open"} {
			if err := secOpenControl(st, fe); err != nil {
				t.Fatalf("control through %s: %v", fe, err)
			}
		}
		st.runAll(t, secSsrfCases(own, "s5open", "s6open"))
	})
	t.Run("resolution changes between check and dial", func(t *testing.T) {
		pubBefore := e.pubSeen()
		okCount := 0
		for _, name := range []string{"rebind.test", "later.test", "mixed.test"} {
			for i := range 4 {
				for _, fe := range []string{"s5", "s6"} {
					code, err := secNameConnect(st, fe, name, secCanaryPort)
					if err != nil {
						t.Fatalf("%s via %s (try %d): %v", name, fe, i, err)
					}
					switch {
					case code == 0:
						okCount++
					case code == 2 && name != "mixed.test":
					default:
						t.Errorf("%s via %s (try %d): reply 0x%02x, want 0x00 (the checked public address) or 0x02", name, fe, i, code)
					}
				}
			}
		}
		t.Logf("%d of 24 CONNECTs succeeded at the public address, the rest were refused", okCount)
		if okCount == 0 || e.pubSeen()-pubBefore != okCount {
			t.Errorf("%d successful CONNECTs, %d connections at the public address", okCount, e.pubSeen()-pubBefore)
		}
		if e.dns.count("later.test") < 2 {
			t.Errorf("later.test asked %d times", e.dns.count("later.test"))
		}
	})
	t.Run("port 0 sends no packet", func(t *testing.T) {
		// Control: a CONNECT to the remote host's closed port 9 reaches it
		// (a SYN is seen, the host refuses).
		cases := []secCase{
			{name: "control: 11.1.0.2:9 is refused by the host", fe: "s5", spec: "RFC 1928 §6 X'05'",
				steps: []secStep{secExpect([]byte{5, 1, 0}, "0500"), secExpect(secS5Req(1, 1, secV4("11.1.0.2"), 9), secS5Rep(0x05))}},
		}
		st.runAll(t, cases)
		if e.syns.count(9) == 0 {
			t.Fatal("the SYN watcher saw nothing: the check below would prove nothing")
		}
		st.runAll(t, []secCase{
			{name: "11.1.0.2:0", fe: "s5", spec: "RFC 1928 §6 X'02'",
				steps: []secStep{secExpect([]byte{5, 1, 0}, "0500"), secExpect(secS5Req(1, 1, secV4("11.1.0.2"), 0), secS5Rep(0x02))}},
			{name: "11.1.0.2:0", fe: "s6", spec: "§3.4 code 0x02",
				steps: []secStep{secExpect(secS6Req(1, 0, 0, 1, secV4("11.1.0.2"), nil), secS6AuthOK+secS6Op(0x02))}},
		})
		if n := e.syns.count(0); n > 0 {
			t.Errorf("%d SYNs to port 0 left the gateway", n)
		}
	})
	if hits := e.canaries.hits(); len(hits) > 0 {
		t.Errorf("forbidden destinations were reached: %s", strings.Join(hits, ", "))
	}
	st.settled(t, base, 5*time.Second)
}

// secOpenControl connects through an "open" frontend to 127.0.0.1:openPort.
func secOpenControl(st *secTarget, fe string) error {
	saved := st.echo
	st.echo = netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", secOpenPort))
	defer func() { st.echo = saved }()
	return st.validConnect(fe, "")
}

// secNameConnect CONNECTs to name:port and returns the reply code; on success
// the relay must work.
func secNameConnect(st *secTarget, fe, name string, port uint16) (byte, error) {
	conn, err := st.dial(fe, "")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	dest := gateway.Addr{Name: name, Port: port}
	var code byte
	if strings.HasPrefix(fe, "s5") {
		c, err := secSocks5Connect(conn, dest, "", "")
		if err != nil {
			return 0, err
		}
		code = byte(c)
		if c != s5.RepSucceeded {
			return code, nil
		}
	} else {
		c, err := secSocks6Connect(conn, dest, "", "")
		if err != nil {
			return 0, err
		}
		code = byte(c)
		if c != s6.ReplySuccess {
			return code, nil
		}
	}
	return code, secEchoCheck(conn)
}
