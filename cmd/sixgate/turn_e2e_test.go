package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"
	pionturn "github.com/pion/turn/v2"
	tt "github.com/sixgate/sixgate/translate/turn"
	"golang.org/x/net/ipv4"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// turnBackend is one backend the TURN tests relay through. More (an
// upstream `backend "socks6"`) plug in by adding an entry: hcl returns the
// backend block named "out" plus whatever it needs started first.
type turnBackend struct {
	name string
	hcl  func(t *testing.T) string
}

var turnBackends = []turnBackend{
	{name: "direct", hcl: func(*testing.T) string {
		return `backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
  bind_ipv6 = "::1"
}`
	}},
}

// turnConfig is a gateway with one TURN frontend on 127.0.0.1:port whose
// peers on loopback are allowed (test-only routes).
func turnConfig(port int, backendHCL, frontendExtra string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "staff" {
  user "user" {
    password = "pass"
  }
  user "alice" {
    password = "s3cret"
  }
  user "bob" {
    password = "hunter2"
  }
}
frontend "turn" "turn" {
  listen  = "127.0.0.1:%d"
  realm   = "sixgate"
  users   = "staff"
  secrets = ["rest-secret"]
  %s
}
%s
route {
  destinations = ["127.0.0.0/8", "::1/128"]
  backend      = "out"
}
route {
  backend = "out"
}
`, port, frontendExtra, backendHCL)
}

// startTURN starts a gateway with a TURN frontend on a free port.
func startTURN(t *testing.T, be turnBackend, frontendExtra string) (*gatewayProc, netip.AddrPort) {
	t.Helper()
	port := gatewaytest.FreePort(t)
	g := startGateway(t, turnConfig(port, be.hcl(t), frontendExtra))
	return g, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// udpEcho runs a UDP echo server on addr until the test ends.
func udpEcho(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.(*net.UDPConn)
}

// TestTURNPionClient relays through sixgate with pion/turn/v2's client:
// Allocate, CreatePermission, ChannelBind (pion binds on first send), data
// both ways to a UDP echo peer, Refresh, and deletion.
func TestTURNPionClient(t *testing.T) {
	for _, be := range turnBackends {
		t.Run(be.name, func(t *testing.T) {
			_, srv := startTURN(t, be, "")
			echo := udpEcho(t, "127.0.0.1:0")
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cl, err := pionturn.NewClient(&pionturn.ClientConfig{
				STUNServerAddr: srv.String(), TURNServerAddr: srv.String(), Conn: conn,
				Username: "user", Password: "pass", Realm: "sixgate",
				LoggerFactory: logging.NewDefaultLoggerFactory(),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.Listen(); err != nil {
				t.Fatal(err)
			}
			mapped, err := cl.SendBindingRequest()
			if err != nil || mapped.String() != conn.LocalAddr().String() {
				t.Fatalf("binding: %v %v", mapped, err)
			}
			relayConn, err := cl.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer relayConn.Close()
			relay := relayConn.LocalAddr().(*net.UDPAddr)
			if !relay.IP.IsLoopback() || relay.Port == 0 {
				t.Fatalf("relay %v", relay)
			}
			if err := cl.CreatePermission(echo.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2000)
			for i := range 50 {
				msg := bytes.Repeat([]byte{byte(i)}, 100+i*20)
				if _, err := relayConn.WriteTo(msg, echo.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				relayConn.SetReadDeadline(time.Now().Add(3 * time.Second))
				n, from, err := relayConn.ReadFrom(buf)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if from.String() != echo.LocalAddr().String() || !bytes.Equal(buf[:n], msg) {
					t.Fatalf("message %d: %d bytes from %v", i, n, from)
				}
			}
		})
	}
}

// uclientLoss runs turnutils_uclient against the gateway with
// turnutils_peer as the echo peer and returns the loss percentage and the
// output.
func uclientLoss(t *testing.T, srv netip.AddrPort, peerPort int, args ...string) (float64, string) {
	t.Helper()
	argv := append([]string{"-u", "user", "-w", "pass", "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort),
		"-p", strconv.Itoa(int(srv.Port()))}, args...)
	argv = append(argv, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "turnutils_uclient", argv...).CombinedOutput()
	if err != nil {
		t.Fatalf("turnutils_uclient %s: %v\n%s", strings.Join(argv, " "), err, tail(out))
	}
	return parseLoss(t, string(out)), string(out)
}

var lossRE = regexp.MustCompile(`Total lost packets (\d+) \(([0-9.]+)%\)`)
var sentRE = regexp.MustCompile(`Total transmit time is \d+`)

func parseLoss(t *testing.T, out string) float64 {
	t.Helper()
	m := lossRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no loss summary in uclient output:\n%s", tail([]byte(out)))
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	return v
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// startPeer runs turnutils_peer on 127.0.0.1 and returns its port.
func startPeer(t *testing.T) int {
	t.Helper()
	if _, err := exec.LookPath("turnutils_peer"); err != nil {
		t.Fatal("turnutils_peer is not installed (.ci/setup installs coturn)")
	}
	port := gatewaytest.FreePort(t)
	cmd := exec.Command("turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(200 * time.Millisecond)
	return port
}

// TestTURNUclient runs coturn's turnutils_uclient through sixgate: channels
// (default) and Send/Data indications (-s), over UDP and TCP (-t), each a
// bounded run that must lose nothing.
func TestTURNUclient(t *testing.T) {
	if _, err := exec.LookPath("turnutils_uclient"); err != nil {
		t.Fatal("turnutils_uclient is not installed (.ci/setup installs coturn)")
	}
	for _, be := range turnBackends {
		t.Run(be.name, func(t *testing.T) {
			// uclient picks channel numbers from RFC 5766's 0x4000-0x7FFF.
			_, srv := startTURN(t, be, "legacy_channels = true")
			peerPort := startPeer(t)
			for _, tc := range []struct {
				name string
				args []string
			}{
				{"udp-channels", nil},
				{"udp-send", []string{"-s"}},
				{"tcp-channels", []string{"-t"}},
				{"tcp-send", []string{"-t", "-s"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					args := append([]string{"-m", "10", "-n", "500", "-l", "200", "-z", "5"}, tc.args...)
					loss, out := uclientLoss(t, srv, peerPort, args...)
					if loss != 0 {
						t.Fatalf("loss %.3f%%:\n%s", loss, tail([]byte(out)))
					}
					t.Logf("%s: 0%% loss (%s)", tc.name, sentRE.FindString(out))
				})
			}
		})
	}
}

// rawTURN is a minimal TURN client over UDP for the protocol checks that
// need the real backend.
type rawTURN struct {
	t     *testing.T
	c     *net.UDPConn
	user  string
	pass  string
	nonce string
	key   []byte
}

func newRawTURN(t *testing.T, srv netip.AddrPort, user, pass string) *rawTURN {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawTURN{t: t, c: c, user: user, pass: pass, key: tt.LongTermKey(user, "sixgate", pass)}
}

func (r *rawTURN) roundTrip(m *stun.Message) *stun.Message {
	r.t.Helper()
	if _, err := r.c.Write(m.Raw); err != nil {
		r.t.Fatal(err)
	}
	buf := make([]byte, 70000)
	deadline := time.Now().Add(3 * time.Second)
	for {
		r.c.SetReadDeadline(deadline)
		n, err := r.c.Read(buf)
		if err != nil {
			r.t.Fatalf("%s: %v", m.Type, err)
		}
		resp := new(stun.Message)
		if tt.Decode(buf[:n], resp) == nil && resp.TransactionID == m.TransactionID {
			return resp
		}
	}
}

// do sends an authenticated request (learning the nonce first) and returns
// the response and its ERROR-CODE (0 for success).
func (r *rawTURN) do(typ stun.MessageType, attrs ...stun.Setter) (*stun.Message, stun.ErrorCode) {
	r.t.Helper()
	for range 3 {
		setters := append([]stun.Setter{typ, stun.TransactionID}, attrs...)
		if r.nonce != "" {
			setters = append(setters, stun.NewUsername(r.user), stun.NewRealm("sixgate"), stun.NewNonce(r.nonce), stun.MessageIntegrity(r.key))
		}
		resp := r.roundTrip(stun.MustBuild(setters...))
		c := respCode(resp)
		if c == stun.CodeUnauthorized || c == stun.CodeStaleNonce {
			var n stun.Nonce
			if n.GetFrom(resp) == nil && (r.nonce == "" || c == stun.CodeStaleNonce) {
				r.nonce = string(n)
				continue
			}
		}
		return resp, c
	}
	r.t.Fatal("nonce never accepted")
	return nil, 0
}

func respCode(m *stun.Message) stun.ErrorCode {
	if m.Type.Class == stun.ClassSuccessResponse {
		return 0
	}
	var e tt.ErrorCodeAttr
	e.GetFrom(m)
	return e.Code
}

func (r *rawTURN) mustDo(want stun.ErrorCode, typ stun.MessageType, attrs ...stun.Setter) *stun.Message {
	r.t.Helper()
	resp, c := r.do(typ, attrs...)
	if c != want {
		var e tt.ErrorCodeAttr
		e.GetFrom(resp)
		r.t.Fatalf("%s: code %d %q, want %d", typ, c, e.Reason, want)
	}
	return resp
}

func (r *rawTURN) allocate(attrs ...stun.Setter) tt.AllocateResult {
	r.t.Helper()
	resp := r.mustDo(0, tt.TypeAllocateRequest, append([]stun.Setter{tt.RequestedTransport{Protocol: tt.ProtoUDP}}, attrs...)...)
	if err := tt.VerifyIntegrity(resp, r.key); err != nil {
		r.t.Fatal(err)
	}
	res, err := tt.ParseAllocateResponse(resp)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// TestTURNDirectFeatures checks the features that depend on the direct
// backend: EVEN-PORT with a RESERVATION-TOKEN taken by a second Allocate,
// an IPv6 relay, DONT-FRAGMENT, Refresh(0) by another user (441), peer
// 0.0.0.0 (403) and TURN REST credentials.
func TestTURNDirectFeatures(t *testing.T) {
	_, srv := startTURN(t, turnBackends[0], "")
	t.Run("even-port reservation", func(t *testing.T) {
		a := newRawTURN(t, srv, "alice", "s3cret")
		r := a.allocate(tt.EvenPort{Reserve: true})
		if r.Relayed[0].Port()%2 != 0 || r.ReservationToken == nil {
			t.Fatalf("relay %v token %v", r.Relayed, r.ReservationToken)
		}
		b := newRawTURN(t, srv, "bob", "hunter2")
		r2 := b.allocate(*r.ReservationToken)
		if r2.Relayed[0].Port() != r.Relayed[0].Port()+1 {
			t.Fatalf("token gave %v, want port %d", r2.Relayed[0], r.Relayed[0].Port()+1)
		}
		c := newRawTURN(t, srv, "bob", "hunter2")
		c.mustDo(stun.CodeInsufficientCapacity, tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoUDP}, *r.ReservationToken)
	})
	t.Run("ipv6 relay", func(t *testing.T) {
		a := newRawTURN(t, srv, "alice", "s3cret")
		r := a.allocate(tt.RequestedAddressFamily(tt.FamilyIPv6))
		if r.Relayed[0].Addr() != netip.MustParseAddr("::1") {
			t.Fatalf("relay %v", r.Relayed)
		}
		echo6 := udpEcho(t, "[::1]:0")
		peer := netip.MustParseAddrPort(echo6.LocalAddr().String())
		a.mustDo(0, tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer})
		send, _ := tt.AppendSendIndication(nil, [12]byte{9}, peer, []byte("over v6"), false)
		a.c.Write(send)
		buf := make([]byte, 200)
		a.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := a.c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m := new(stun.Message)
		if err := tt.Decode(buf[:n], m); err != nil {
			t.Fatal(err)
		}
		d, err := tt.ParseData(m)
		if err != nil || d.Peer != peer || string(d.Data) != "over v6" {
			t.Fatalf("data %+v %v", d, err)
		}
	})
	t.Run("bursts keep order and TTL", func(t *testing.T) {
		// A burst of ChannelData sent with one sendmmsg lands in one
		// read batch, whose datagrams go to the peer together: each
		// keeps the client's TTL minus one (RFC 8656 §14) and its place.
		a := newRawTURN(t, srv, "alice", "s3cret")
		a.allocate()
		echo := ttlEcho(t)
		a.mustDo(0, tt.TypeChannelBindRequest, tt.ChannelNumber(0x4001), tt.PeerAddress{Addr: echo})
		p := ipv4.NewPacketConn(a.c)
		if err := p.SetTTL(7); err != nil {
			t.Fatal(err)
		}
		burst := func(frames ...[]byte) {
			t.Helper()
			msgs := make([]ipv4.Message, len(frames))
			for i, f := range frames {
				msgs[i].Buffers = [][]byte{f}
			}
			for sent := 0; sent < len(msgs); {
				n, err := p.WriteBatch(msgs[sent:], 0)
				if err != nil {
					t.Fatal(err)
				}
				sent += n
			}
		}
		var frames [][]byte
		for i := range 8 {
			f, _ := tt.AppendChannelData(nil, 0x4001, fmt.Appendf(nil, "burst %d", i), false)
			frames = append(frames, f)
		}
		burst(frames...)
		buf := make([]byte, 2000)
		for i := range 8 {
			a.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := a.c.Read(buf)
			if err != nil {
				t.Fatalf("echo %d: %v", i, err)
			}
			cd, err := tt.ParseChannelData(buf[:n])
			if err != nil {
				t.Fatalf("echo %d: %v", i, err)
			}
			if want := fmt.Sprintf("ttl=6 burst %d", i); string(cd.Data) != want {
				t.Fatalf("echo %d: %q, want %q", i, cd.Data, want)
			}
		}

		// Data sent just before a Refresh that ends the allocation, in
		// the same burst, still reaches the peer.
		sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		sinkAP := sink.LocalAddr().(*net.UDPAddr).AddrPort()
		a.mustDo(0, tt.TypeChannelBindRequest, tt.ChannelNumber(0x4002), tt.PeerAddress{Addr: sinkAP})
		frames = frames[:0]
		for i := range 16 {
			f, _ := tt.AppendChannelData(nil, 0x4002, fmt.Appendf(nil, "last words %d", i), false)
			frames = append(frames, f)
		}
		refresh := stun.MustBuild(tt.TypeRefreshRequest, stun.TransactionID, tt.Lifetime(0),
			stun.NewUsername(a.user), stun.NewRealm("sixgate"), stun.NewNonce(a.nonce), stun.MessageIntegrity(a.key))
		burst(append(frames, refresh.Raw)...)
		for i := range 16 {
			sink.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := sink.Read(buf)
			if want := fmt.Sprintf("last words %d", i); err != nil || string(buf[:n]) != want {
				t.Fatalf("peer got %q (%v), want %q: data sent before the Refresh is relayed", buf[:n], err, want)
			}
		}
	})
	t.Run("dont-fragment", func(t *testing.T) {
		a := newRawTURN(t, srv, "alice", "s3cret")
		a.allocate(tt.DontFragment{})
		a.mustDo(0, tt.TypeRefreshRequest, tt.Lifetime(0))
	})
	t.Run("refresh by another user", func(t *testing.T) {
		a := newRawTURN(t, srv, "alice", "s3cret")
		a.allocate()
		b := &rawTURN{t: t, c: a.c, user: "bob", pass: "hunter2", key: tt.LongTermKey("bob", "sixgate", "hunter2"), nonce: a.nonce}
		b.mustDo(stun.CodeWrongCredentials, tt.TypeRefreshRequest, tt.Lifetime(0))
		a.mustDo(0, tt.TypeRefreshRequest)
	})
	t.Run("forbidden peers", func(t *testing.T) {
		a := newRawTURN(t, srv, "alice", "s3cret")
		a.allocate()
		for _, p := range []string{"0.0.0.0:9", "0.0.0.0:0", srv.String(), "169.254.169.254:80"} {
			a.mustDo(stun.CodeForbidden, tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort(p)})
		}
		a.mustDo(stun.CodePeerAddrFamilyMismatch, tt.TypeCreatePermissionRequest,
			tt.PeerAddress{Addr: netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), 9)})
	})
	t.Run("rest credentials", func(t *testing.T) {
		exp := time.Now().Add(time.Hour)
		for _, u := range []string{tt.RESTUsername(exp, "carol"), tt.RESTUsername(exp, "")} {
			a := newRawTURN(t, srv, u, tt.RESTPassword("rest-secret", u))
			a.allocate()
		}
		old := tt.RESTUsername(time.Now().Add(-time.Minute), "carol")
		a := newRawTURN(t, srv, old, tt.RESTPassword("rest-secret", old))
		a.mustDo(stun.CodeUnauthorized, tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoUDP})
	})
}
