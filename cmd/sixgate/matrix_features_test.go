package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"

	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
	s6 "github.com/sixgate/sixgate/translate/socks6"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// TestMatrixFeatures checks that features a client asks for are translated
// across a pair and applied at the far end, with the backend an upstream
// SOCKS 6 proxy (a second sixgate), in network namespaces:
//
//	gw      lo: the front sixgate (SOCKS 6, SOCKS 5 and TURN frontends,
//	        backend "socks6"), the upstream sixgate (frontend "socks6",
//	        backend "direct") and every client
//	        eth0 10.86.1.1/24 fd86:1::1/64, default via the router
//	router  eth0 10.86.1.2/24 fd86:1::2/64
//	        eth1 10.86.2.1/24 fd86:2::1/64, MTU 1280
//	        forwarding, no ICMP rate limit; 10.86.8.0/24 via dest
//	dest    eth0 10.86.2.2/24 fd86:2::2/64, MTU 1280; forwarding;
//	        10.86.8.0/24 via the router (a routing loop: a datagram to
//	        10.86.8.8 bounces until its TTL runs out, and the hop where it
//	        does answers ICMP Time Exceeded); UDP servers that report the
//	        TTL and the size of what they receive
//
// Each feature is judged for each client protocol; the expected outcomes
// are fixed in mxFeatExpected and the table is printed at the end.
func TestMatrixFeatures(t *testing.T) {
	start := time.Now()
	l := newFeatLab(t)
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))
	results := map[string]mxResult{}
	for _, f := range mxFeatures {
		for _, fe := range mxFrontends {
			key := f.name + "/" + fe
			want := mxFeatExpected(f.name, fe)
			cell := f.cells[fe]
			if cell == nil {
				results[key] = mxResult{outcome: mxNA, detail: want.why}
				if want.outcome != mxNA {
					t.Errorf("%s: no cell for an expected %s", key, want.outcome)
				}
				continue
			}
			t.Run(f.name+"/"+fe, func(t *testing.T) {
				res := mxResult{outcome: mxFail, detail: "stopped: see the subtest's log"}
				defer func() {
					results[key] = res
					if res.outcome != want.outcome {
						t.Errorf("%s, %s client: %s (%s), want %s %s", f.name, fe, res.outcome, res.detail, want.outcome, want.why)
					}
				}()
				res = cell(t, l)
			})
		}
	}
	t.Logf("features in %v", time.Since(start).Round(time.Millisecond))
	t.Log("\n" + mxFeatTable(results))
}

// mxFeature is one feature, judged per client protocol.
type mxFeature struct {
	name  string
	title string
	cells map[string]func(t *testing.T, l *featLab) mxResult
}

var mxFeatures = []mxFeature{
	{"ttl", "TTL on leg 2, seen at the far end (IP_RECVTTL)", map[string]func(*testing.T, *featLab) mxResult{
		"socks6": featS6TTL, "turn": featTURNTTL,
	}},
	{"df-v4", "DF on leg 2 / DONT-FRAGMENT: an IPv4 datagram above the far link's MTU is not fragmented", map[string]func(*testing.T, *featLab) mxResult{
		"socks6": featS6DF4, "turn": featTURNDF4,
	}},
	{"df-v6", "DF on leg 2 / DONT-FRAGMENT: an IPv6 datagram above the far link's MTU is reported too big", map[string]func(*testing.T, *featLab) mxResult{
		"socks6": featS6DF6, "turn": featTURNDF6,
	}},
	{"port-parity", "Port Parity / EVEN-PORT R=1 reaches the upstream, which holds port+1", map[string]func(*testing.T, *featLab) mxResult{
		"socks6": featS6Parity, "turn": featTURNParity,
	}},
	{"icmp-ttl-expired", "ICMP Time Exceeded at the far end reaches the client", map[string]func(*testing.T, *featLab) mxResult{
		"socks6": featS6ICMP, "turn": featTURNICMP, "socks5": featS5ICMP,
	}},
}

// mxFeatExpected fixes every feature cell's outcome.
func mxFeatExpected(feature, fe string) mxExpect {
	switch {
	case fe == "socks5" && feature == "icmp-ttl-expired":
		return mxExpect{mxRefused, "SOCKS 5 cannot carry ICMP errors: no message, the association survives (counted not_expressible)"}
	case fe == "socks5":
		return mxExpect{mxNA, "SOCKS 5 has no stack options"}
	case fe == "turn" && feature == "ttl":
		return mxExpect{mxRefused, "the TTL TURN copies per datagram (RFC 8656 §14) has no SOCKS 6 form: the far end sees the upstream's default"}
	}
	return mxExpect{mxPass, ""}
}

func mxFeatTable(results map[string]mxResult) string {
	var b strings.Builder
	notes := mxNotes{}
	b.WriteString("| feature (backend: socks6 upstream) |")
	for _, fe := range mxFrontends {
		b.WriteString(" " + fe + " client |")
	}
	b.WriteString("\n|---|---|---|---|\n")
	for _, f := range mxFeatures {
		fmt.Fprintf(&b, "| %s |", f.title)
		for _, fe := range mxFrontends {
			r, ok := results[f.name+"/"+fe]
			if ok && r.outcome != mxFail && r.outcome != mxNA {
				r.short = r.detail
			}
			b.WriteString(" " + mxCellText(r, ok, mxFeatExpected(f.name, fe), notes) + " |")
		}
		b.WriteString("\n")
	}
	b.WriteString(notes.String())
	return b.String()
}

// Lab addresses.
var (
	flRouterF = netip.MustParseAddr("10.86.2.1")
	flDest4   = netip.MustParseAddr("10.86.2.2")
	flDest6   = netip.MustParseAddr("fd86:2::2")
	flLoop4   = netip.MustParseAddrPort("10.86.8.8:5000")
)

// flBig is the size of the datagrams that do not fit the far link (MTU
// 1280) in one packet; flBigMin is what the far end counts as one of them.
const (
	flBig    = 1400
	flBigMin = 1300
)

type featLab struct {
	gw, router, dest *netns
	// echo4 and echo6 are the far end's UDP servers; each answers
	// "ttl=N len=L" (N is -1 for IPv6) and counts the datagrams of at
	// least flBigMin bytes in big4 / big6.
	echo4, echo6 netip.AddrPort
	big4, big6   atomic.Int64
	up           *gatewayProc
	topo         *mxTopo
}

func newFeatLab(t *testing.T) *featLab {
	t.Helper()
	l := &featLab{gw: newNetns(t), router: newNetns(t), dest: newNetns(t)}
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
	l.gw.in("addr", "add", "10.86.1.1/24", "dev", "eth0")
	l.gw.in("-6", "addr", "add", "fd86:1::1/64", "dev", "eth0", "nodad")
	l.router.in("addr", "add", "10.86.1.2/24", "dev", "eth0")
	l.router.in("-6", "addr", "add", "fd86:1::2/64", "dev", "eth0", "nodad")
	l.router.in("addr", "add", "10.86.2.1/24", "dev", "eth1")
	l.router.in("-6", "addr", "add", "fd86:2::1/64", "dev", "eth1", "nodad")
	l.dest.in("addr", "add", "10.86.2.2/24", "dev", "eth0")
	l.dest.in("-6", "addr", "add", "fd86:2::2/64", "dev", "eth0", "nodad")
	links := []struct {
		n   *netns
		dev string
	}{{l.gw, "eth0"}, {l.router, "eth0"}, {l.router, "eth1"}, {l.dest, "eth0"}}
	for _, x := range links {
		x.n.in("link", "set", x.dev, "up")
	}
	l.gw.in("route", "add", "default", "via", "10.86.1.2")
	l.gw.in("-6", "route", "add", "default", "via", "fd86:1::2")
	l.dest.in("route", "add", "default", "via", "10.86.2.1")
	l.dest.in("-6", "route", "add", "default", "via", "fd86:2::1")
	// The routing loop for Time Exceeded.
	l.router.in("route", "add", "10.86.8.0/24", "via", "10.86.2.2")
	l.dest.in("route", "add", "10.86.8.0/24", "via", "10.86.2.1")
	for _, n := range []*netns{l.router, l.dest} {
		n.sh("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
			"net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0",
			"net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.default.send_redirects=0")
	}
	for _, x := range links {
		flWaitUp(t, x.n, x.dev)
	}
	l.echo4 = l.farServer(t, "udp4", &l.big4)
	l.echo6 = l.farServer(t, "udp6", &l.big6)

	dests := `"10.86.0.0/16", "fd86::/16"`
	upPort := gatewaytest.FreePort(t)
	l.up = startGatewayCmd(t, mxUpstreamConfig(upPort, dests), l.gw.prefix())
	l.topo = startMxTopo(t, mxBackendHCL("socks6", fmt.Sprintf("127.0.0.1:%d", upPort), ""), dests, l.gw.prefix())
	return l
}

// flWaitUp waits until a link is operationally up (a new veth drops what
// it is given until then).
func flWaitUp(t *testing.T, n *netns, dev string) {
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

// farServer runs a UDP server in the dest namespace on the lab address of
// the network's family and returns its address.
func (l *featLab) farServer(t *testing.T, network string, big *atomic.Int64) netip.AddrPort {
	t.Helper()
	ip := flDest4
	if network == "udp6" {
		ip = flDest6
	}
	var pc *net.UDPConn
	var err error
	l.dest.do(func() { pc, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))) })
	if err != nil {
		t.Fatal(err)
	}
	var p4 *ipv4.PacketConn
	if network == "udp4" {
		p4 = ipv4.NewPacketConn(pc)
		if err := p4.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			ttl := -1
			var n int
			var from net.Addr
			var err error
			if p4 != nil {
				var cm *ipv4.ControlMessage
				n, cm, from, err = p4.ReadFrom(buf)
				if cm != nil {
					ttl = cm.TTL
				}
			} else {
				n, from, err = pc.ReadFrom(buf)
			}
			if err != nil {
				return
			}
			if n >= flBigMin {
				big.Add(1)
			}
			pc.WriteTo([]byte(fmt.Sprintf("ttl=%d len=%d", ttl, n)), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return netip.AddrPortFrom(ip, uint16(pc.LocalAddr().(*net.UDPAddr).Port))
}

var farReplyRE = regexp.MustCompile(`^ttl=(-?\d+) len=(\d+)$`)

// parseFar splits a far server's answer.
func parseFar(b []byte) (ttl, n int, err error) {
	m := farReplyRE.FindSubmatch(b)
	if m == nil {
		return 0, 0, fmt.Errorf("not a far-end answer: %q", b)
	}
	ttl, _ = strconv.Atoi(string(m[1]))
	n, _ = strconv.Atoi(string(m[2]))
	return ttl, n, nil
}

// dial dials from inside the gateway namespace.
func (l *featLab) dial(ctx context.Context, network, addr string) (conn net.Conn, err error) {
	l.gw.do(func() { conn, err = (&net.Dialer{}).DialContext(ctx, network, addr) })
	return conn, err
}

// metric reads one sample of the front sixgate's /metrics from inside the
// gateway namespace.
func (l *featLab) metric(t *testing.T, sample string) float64 {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: l.dial}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + l.topo.g.Addr("admin") + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// portHolder returns the pid of the process holding a UDP port in the
// gateway namespace, or 0.
func (l *featLab) portHolder(port uint16) (int, error) {
	out, err := exec.Command("ip", "netns", "exec", l.gw.name, "ss", "-H", "-uanp", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ss: %v: %s", err, out)
	}
	m := regexp.MustCompile(`pid=(\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, nil
	}
	return strconv.Atoi(string(m[1]))
}

// heldByUpstream checks that the upstream sixgate holds port.
func (l *featLab) heldByUpstream(port uint16) error {
	pid, err := l.portHolder(port)
	if err != nil {
		return err
	}
	if pid == 0 {
		return fmt.Errorf("nobody holds port %d", port)
	}
	if up := l.up.cmd.Process.Pid; pid != up {
		return fmt.Errorf("port %d is held by pid %d, not the upstream sixgate (%d; the front is %d)", port, pid, up, l.topo.g.cmd.Process.Pid)
	}
	return nil
}

// --- SOCKS 6 client --------------------------------------------------------

// s6Assoc opens a mapped association from inside the gateway namespace,
// opted in to Error messages, with the given leg-2 options.
func (l *featLab) s6Assoc(t *testing.T, remote gateway.StackOptions) (*bsocks6.UDPAssoc, error) {
	remote.UDPError = gateway.Want(true)
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: l.topo.s6, Dial: l.dial})
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.UDPAssociate(mxCtx(t, 10*time.Second), &bsocks6.UDPOptions{
		ReceiveFirst: true, Legs: s6.Legs{Remote: remote},
		DialPacket: func(ctx context.Context, relay string) (net.Conn, error) { return l.dial(ctx, "udp", relay) },
	})
	if err != nil {
		return nil, fmt.Errorf("udp associate: %w", err)
	}
	t.Cleanup(func() { u.Close() })
	return u, nil
}

// s6Far sends msg to a far server until it answers (five tries).
func s6Far(u *bsocks6.UDPAssoc, dst netip.AddrPort, msg []byte) (ttl, n int, err error) {
	buf := make([]byte, 2048)
	err = errors.New("no answer")
	for range 5 {
		if werr := u.WriteTo(msg, gateway.AddrFromAddrPort(dst)); werr != nil {
			err = werr
			continue
		}
		u.SetReadDeadline(time.Now().Add(time.Second))
		pkt, rerr := u.ReadFrom(buf)
		if rerr != nil {
			err = rerr
			continue
		}
		if pkt.Kind != gateway.PacketData {
			err = fmt.Errorf("error message %+v", pkt.ICMP)
			continue
		}
		return parseFar(buf[:pkt.N])
	}
	return 0, 0, err
}

// s6Error sends probes to dst until an Error message comes back.
func s6Error(u *bsocks6.UDPAssoc, dst netip.AddrPort, size int) (gateway.ICMPError, s6.ErrorCode, error) {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if err := u.WriteTo(make([]byte, size), gateway.AddrFromAddrPort(dst)); err != nil {
			return gateway.ICMPError{}, 0, err
		}
		u.SetReadDeadline(time.Now().Add(time.Second))
		pkt, err := u.ReadFrom(buf)
		if err != nil || pkt.Kind != gateway.PacketICMP {
			continue
		}
		code, ok := s6.ErrorCodeForICMP(pkt.ICMP)
		if !ok {
			return pkt.ICMP, 0, fmt.Errorf("an ICMP error %+v with no Error code", pkt.ICMP)
		}
		return pkt.ICMP, code, nil
	}
	return gateway.ICMPError{}, 0, fmt.Errorf("no Error message for %v", dst)
}

func featS6TTL(t *testing.T, l *featLab) mxResult {
	const want = 9
	u, err := l.s6Assoc(t, gateway.StackOptions{TTL: gateway.Want[uint8](want)})
	if err != nil {
		return mxFailed(err)
	}
	if o := u.Legs.Remote.TTL; o.Outcome != gateway.Applied || o.Value != want {
		return mxFailed(fmt.Errorf("TTL %+v", o))
	}
	ttl, _, err := s6Far(u, l.echo4, []byte("ttl"))
	if err != nil {
		return mxFailed(err)
	}
	// One router between the upstream and the far end.
	if ttl != want-1 {
		return mxFailed(fmt.Errorf("the far end saw TTL %d, want %d (%d minus one hop)", ttl, want-1, want))
	}
	return mxOK("TTL %d requested, the far end saw %d after one hop", want, ttl)
}

// bigDropped sends flBig-byte datagrams with send and checks that none
// reaches the far end, while a small one does (answered is true once the
// far end answered it).
func (l *featLab) bigDropped(big *atomic.Int64, send func(size int) error, answered func() bool) error {
	before := big.Load()
	for range 5 {
		if err := send(flBig); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !answered() {
		if time.Now().After(deadline) {
			return errors.New("a small datagram got no answer: the association does not carry datagrams")
		}
		if err := send(64); err != nil {
			return err
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := big.Load() - before; n != 0 {
		return fmt.Errorf("%d datagrams of %d bytes reached the far end (fragmented: DF not applied)", n, flBig)
	}
	return nil
}

// bigArrives sends flBig-byte datagrams until the far end counts one.
func (l *featLab) bigArrives(big *atomic.Int64, send func(size int) error) error {
	before := big.Load()
	deadline := time.Now().Add(5 * time.Second)
	for big.Load() == before {
		if time.Now().After(deadline) {
			return fmt.Errorf("no datagram of %d bytes reached the far end without DF either", flBig)
		}
		if err := send(flBig); err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// s6Sender sends to dst through u and records whether the far end
// answered a small datagram.
func s6Sender(u *bsocks6.UDPAssoc, dst netip.AddrPort) (send func(int) error, answered func() bool) {
	var ok atomic.Bool
	go func() {
		buf := make([]byte, 2048)
		for {
			u.SetReadDeadline(time.Now().Add(10 * time.Second))
			pkt, err := u.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, gateway.ErrDropped) || !isTimeout(err) {
					return
				}
				continue
			}
			if pkt.Kind == gateway.PacketData {
				if _, n, err := parseFar(buf[:pkt.N]); err == nil && n < flBigMin {
					ok.Store(true)
				}
			}
		}
	}()
	return func(size int) error { return u.WriteTo(make([]byte, size), gateway.AddrFromAddrPort(dst)) }, ok.Load
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func featS6DF4(t *testing.T, l *featLab) mxResult {
	u, err := l.s6Assoc(t, gateway.StackOptions{DF: gateway.Want(true)})
	if err != nil {
		return mxFailed(err)
	}
	if o := u.Legs.Remote.DF; o.Outcome != gateway.Applied || !o.Value {
		return mxFailed(fmt.Errorf("DF %+v", o))
	}
	send, answered := s6Sender(u, l.echo4)
	if err := l.bigDropped(&l.big4, send, answered); err != nil {
		return mxFailed(err)
	}
	// Control: without DF the same datagrams arrive, fragmented.
	u2, err := l.s6Assoc(t, gateway.StackOptions{})
	if err != nil {
		return mxFailed(err)
	}
	send2, _ := s6Sender(u2, l.echo4)
	if err := l.bigArrives(&l.big4, send2); err != nil {
		return mxFailed(err)
	}
	return mxOK("with DF no %d-byte datagram crossed the 1280 link; without DF it arrived fragmented", flBig)
}

func featS6DF6(t *testing.T, l *featLab) mxResult {
	u, err := l.s6Assoc(t, gateway.StackOptions{DF: gateway.Want(true)})
	if err != nil {
		return mxFailed(err)
	}
	if o := u.Legs.Remote.DF; o.Outcome != gateway.Applied || !o.Value {
		return mxFailed(fmt.Errorf("DF %+v", o))
	}
	icmp, code, err := s6Error(u, l.echo6, flBig)
	if err != nil {
		return mxFailed(err)
	}
	if code != s6.ErrorCodeDatagramTooBig || icmp.Dest != l.echo6 {
		return mxFailed(fmt.Errorf("Error code %d (%+v), want %d for %v", code, icmp, s6.ErrorCodeDatagramTooBig, l.echo6))
	}
	return mxOK("Error message code %d (datagram too big) for %v", code, icmp.Dest)
}

func featS6Parity(t *testing.T, l *featLab) mxResult {
	want := gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}
	u, err := l.s6Assoc(t, gateway.StackOptions{PortParity: gateway.Want(want)})
	if err != nil {
		return mxFailed(err)
	}
	if o := u.Legs.Remote.PortParity; o.Outcome != gateway.Applied || o.Value != want {
		return mxFailed(fmt.Errorf("port parity %+v", o))
	}
	port := u.Bound.Port
	if port%2 != 0 {
		return mxFailed(fmt.Errorf("relay port %d is odd", port))
	}
	for _, p := range []uint16{port, port + 1} {
		if err := l.heldByUpstream(p); err != nil {
			return mxFailed(err)
		}
	}
	return mxOK("relay port %d even; the upstream sixgate holds %d and %d", port, port, port+1)
}

func featS6ICMP(t *testing.T, l *featLab) mxResult {
	u, err := l.s6Assoc(t, gateway.StackOptions{})
	if err != nil {
		return mxFailed(err)
	}
	icmp, code, err := s6Error(u, flLoop4, 32)
	if err != nil {
		return mxFailed(err)
	}
	if code != s6.ErrorCodeTTLExpired || icmp.Dest != flLoop4 || (icmp.Reporter != flRouterF && icmp.Reporter != flDest4) {
		return mxFailed(fmt.Errorf("Error code %d %+v, want %d for %v from the loop", code, icmp, s6.ErrorCodeTTLExpired, flLoop4))
	}
	return mxOK("Error message code %d (TTL expired) for %v, reported by %v", code, icmp.Dest, icmp.Reporter)
}

// --- TURN client -----------------------------------------------------------

// turn returns a raw TURN client whose socket lives in the gateway
// namespace.
func (l *featLab) turn(t *testing.T) *rawTURN {
	t.Helper()
	var c *net.UDPConn
	var err error
	l.gw.do(func() { c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(l.topo.turn)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawTURN{t: t, c: c, user: "user", pass: "pass", key: tt.LongTermKey("user", "sixgate", "pass")}
}

// allocate allocates a UDP relay with attrs, allows peers and returns the
// result.
func (l *featLab) allocate(r *rawTURN, peers []netip.AddrPort, attrs ...stun.Setter) (tt.AllocateResult, error) {
	resp, code := r.do(tt.TypeAllocateRequest, append([]stun.Setter{tt.RequestedTransport{Protocol: tt.ProtoUDP}}, attrs...)...)
	if code != 0 {
		return tt.AllocateResult{}, fmt.Errorf("allocate: %d", code)
	}
	res, err := tt.ParseAllocateResponse(resp)
	if err != nil {
		return res, err
	}
	for _, p := range peers {
		if _, code := r.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: p}); code != 0 {
			return res, fmt.Errorf("permission for %v: %d", p, code)
		}
	}
	return res, nil
}

func turnSend(r *rawTURN, peer netip.AddrPort, size int) error {
	b, err := tt.AppendSendIndication(nil, [12]byte{7, 7}, peer, make([]byte, size), false)
	if err != nil {
		return err
	}
	_, err = r.c.Write(b)
	return err
}

// turnRead returns the next Data indication within d.
func turnRead(r *rawTURN, d time.Duration) (tt.DataIndication, error) {
	buf := make([]byte, 2048)
	deadline := time.Now().Add(d)
	for {
		r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(buf)
		if err != nil {
			return tt.DataIndication{}, err
		}
		m := new(stun.Message)
		if tt.Decode(buf[:n], m) != nil || m.Type != tt.TypeDataIndication {
			continue
		}
		d, err := tt.ParseData(m)
		if err != nil {
			return d, err
		}
		d.Data = append([]byte(nil), d.Data...)
		return d, nil
	}
}

func featTURNTTL(t *testing.T, l *featLab) mxResult {
	r := l.turn(t)
	if _, err := l.allocate(r, []netip.AddrPort{l.echo4}); err != nil {
		return mxFailed(err)
	}
	// RFC 8656 §14: the relay copies the client packet's TTL minus one.
	rc, err := r.c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 20) })
	for range 5 {
		if err := turnSend(r, l.echo4, 16); err != nil {
			return mxFailed(err)
		}
		d, err := turnRead(r, time.Second)
		if err != nil || d.HasICMP {
			continue
		}
		ttl, _, err := parseFar(d.Data)
		if err != nil {
			return mxFailed(err)
		}
		if ttl == 18 {
			return mxOK("client TTL 20: the far end saw %d (TTL-1 at each relay hop)", ttl)
		}
		return mxRefusal("client packet TTL 20, the far end saw %d (the upstream's default minus one hop)", ttl)
	}
	return mxFailed(errors.New("no answer from the far end"))
}

// turnSender sends Send indications to dst and records whether the far
// end answered a small datagram.
func turnSender(r *rawTURN, dst netip.AddrPort) (send func(int) error, answered func() bool) {
	return func(size int) error { return turnSend(r, dst, size) }, func() bool {
		for {
			d, err := turnRead(r, 300*time.Millisecond)
			if err != nil {
				return false
			}
			if _, n, err := parseFar(d.Data); !d.HasICMP && err == nil && n < flBigMin {
				return true
			}
		}
	}
}

func featTURNDF4(t *testing.T, l *featLab) mxResult {
	r := l.turn(t)
	if _, err := l.allocate(r, []netip.AddrPort{l.echo4}, tt.DontFragment{}); err != nil {
		return mxFailed(err)
	}
	send, answered := turnSender(r, l.echo4)
	if err := l.bigDropped(&l.big4, send, answered); err != nil {
		return mxFailed(err)
	}
	r2 := l.turn(t)
	if _, err := l.allocate(r2, []netip.AddrPort{l.echo4}); err != nil {
		return mxFailed(err)
	}
	send2, _ := turnSender(r2, l.echo4)
	if err := l.bigArrives(&l.big4, send2); err != nil {
		return mxFailed(err)
	}
	return mxOK("with DONT-FRAGMENT no %d-byte datagram crossed the 1280 link; without it it arrived fragmented", flBig)
}

func featTURNDF6(t *testing.T, l *featLab) mxResult {
	r := l.turn(t)
	if _, err := l.allocate(r, []netip.AddrPort{l.echo6}, tt.RequestedAddressFamily(tt.FamilyIPv6), tt.DontFragment{}); err != nil {
		return mxFailed(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if err := turnSend(r, l.echo6, flBig); err != nil {
			return mxFailed(err)
		}
		d, err := turnRead(r, time.Second)
		if err != nil {
			continue
		}
		if !d.HasICMP {
			return mxFailed(fmt.Errorf("a %d-byte answer: the datagram crossed the 1280 link", len(d.Data)))
		}
		if d.ICMP.Type != 2 || d.Peer != l.echo6 {
			return mxFailed(fmt.Errorf("ICMP %+v for %v, want ICMPv6 type 2 for %v", d.ICMP, d.Peer, l.echo6))
		}
		return mxOK("ICMP attribute ICMPv6 type %d code %d (packet too big) for %v", d.ICMP.Type, d.ICMP.Code, d.Peer)
	}
	return mxFailed(errors.New("no ICMP attribute for the too-big datagram"))
}

func featTURNParity(t *testing.T, l *featLab) mxResult {
	r := l.turn(t)
	res, err := l.allocate(r, nil, tt.EvenPort{Reserve: true})
	if err != nil {
		return mxFailed(err)
	}
	port := res.Relayed[0].Port()
	if port%2 != 0 || res.ReservationToken == nil {
		return mxFailed(fmt.Errorf("relay %v token %v", res.Relayed, res.ReservationToken))
	}
	for _, p := range []uint16{port, port + 1} {
		if err := l.heldByUpstream(p); err != nil {
			return mxFailed(err)
		}
	}
	r2 := l.turn(t)
	res2, err := l.allocate(r2, []netip.AddrPort{l.echo4}, *res.ReservationToken)
	if err != nil {
		return mxFailed(fmt.Errorf("with the RESERVATION-TOKEN: %w", err))
	}
	if got := res2.Relayed[0].Port(); got != port+1 {
		return mxFailed(fmt.Errorf("the RESERVATION-TOKEN gave port %d, want %d", got, port+1))
	}
	return mxOK("relay port %d even, port %d held by the upstream sixgate, RESERVATION-TOKEN took it", port, port+1)
}

func featTURNICMP(t *testing.T, l *featLab) mxResult {
	r := l.turn(t)
	if _, err := l.allocate(r, []netip.AddrPort{flLoop4}); err != nil {
		return mxFailed(err)
	}
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		if err := turnSend(r, flLoop4, 32); err != nil {
			return mxFailed(err)
		}
		d, err := turnRead(r, time.Second)
		if err != nil {
			continue
		}
		if !d.HasICMP || d.ICMP.Type != 11 || d.ICMP.Code != 0 || d.Peer != flLoop4 {
			return mxFailed(fmt.Errorf("indication %+v, want ICMP 11/0 for %v", d, flLoop4))
		}
		return mxOK("ICMP attribute type %d code %d (time exceeded) for %v", d.ICMP.Type, d.ICMP.Code, d.Peer)
	}
	return mxFailed(errors.New("no ICMP attribute"))
}

// --- SOCKS 5 client --------------------------------------------------------

func featS5ICMP(t *testing.T, l *featLab) mxResult {
	ctx := mxCtx(t, 10*time.Second)
	c, err := l.dial(ctx, "tcp", l.topo.s5)
	if err != nil {
		return mxFailed(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, _ := s5.Greeting{Methods: []s5.Method{s5.MethodNoAuth}}.Append(nil)
	c.Write(b)
	if m, err := s5.ReadMethodSelection(c); err != nil || m != s5.MethodNoAuth {
		return mxFailed(fmt.Errorf("method %v %v", m, err))
	}
	b, _ = s5.Request{Command: s5.CmdUDPAssociate, Dest: gateway.Addr{IP: netip.IPv4Unspecified()}}.Append(nil)
	c.Write(b)
	rep, err := s5.ReadReply(c)
	if err != nil || rep.Code != s5.RepSucceeded {
		return mxFailed(fmt.Errorf("udp associate: %v %v", rep.Code, err))
	}
	c.SetDeadline(time.Time{})
	relay := mxLoopback(rep.Bound)
	var pc *net.UDPConn
	l.gw.do(func() { pc, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) })
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	send := func(dst netip.AddrPort, payload []byte) error {
		h, err := s5.UDPHeader{Addr: gateway.AddrFromAddrPort(dst)}.Append(nil)
		if err != nil {
			return err
		}
		_, err = pc.WriteToUDPAddrPort(append(h, payload...), relay)
		return err
	}
	recv := func(d time.Duration) ([]byte, error) {
		buf := make([]byte, 2048)
		pc.SetReadDeadline(time.Now().Add(d))
		n, _, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, err
		}
		_, payload, err := s5.ParseUDPHeader(buf[:n])
		return payload, err
	}
	sample := `sixgate_icmp_errors_total{frontend="s5",result="not_expressible"}`
	before := l.metric(t, sample)
	for range 3 {
		if err := send(flLoop4, []byte("into the loop")); err != nil {
			return mxFailed(err)
		}
		if got, err := recv(500 * time.Millisecond); err == nil {
			return mxFailed(fmt.Errorf("the SOCKS 5 client received %q after a TTL expired", got))
		}
	}
	for try := 0; ; try++ {
		if err := send(l.echo4, []byte("after the loop")); err != nil {
			return mxFailed(err)
		}
		got, err := recv(time.Second)
		if err == nil {
			if _, n, err := parseFar(got); err != nil || n != len("after the loop") {
				return mxFailed(fmt.Errorf("answer %q: %v", got, err))
			}
			break
		}
		if try == 4 {
			return mxFailed(fmt.Errorf("the association does not carry datagrams after the ICMP error: %w", err))
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for l.metric(t, sample) <= before {
		if time.Now().After(deadline) {
			return mxFailed(errors.New("the front never counted the Time Exceeded as not expressible"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	return mxRefusal("no message; the association survives (the next echo came back); counted not_expressible")
}
