package turn

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	tt "github.com/sixgate/sixgate/translate/turn"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	handoffGrace = 20 * time.Millisecond
	repanic = true
	goleak.VerifyTestMain(m)
}

// testServer is a gateway with a TURN frontend "t" and the fake backend
// "out", on 127.0.0.1.
type testServer struct {
	t       testing.TB
	srv     *gateway.Server
	reg     *gateway.Registry
	backend *fakeBackend
	metrics *gateway.Metrics
	udp     netip.AddrPort
	tcp     netip.AddrPort
	hcl     string
}

const testUsers = `
users "staff" {
  user "alice" {
    password = "s3cret"
  }
  user "bob" {
    password = "hunter2"
  }
}
`

// serverConfig returns a configuration with the given frontend body lines
// and top-level extras.
func serverConfig(port int, frontendExtra, topExtra string) string {
	return fmt.Sprintf(`
admin {
  listen = "off"
}
%s
%s
frontend "turn" "t" {
  listen  = "127.0.0.1:%d"
  realm   = "sixgate"
  users   = "staff"
  secrets = ["rest-new", "rest-old"]
  %s
}
backend "fake" "out" {}
route {
  destinations = ["127.0.0.0/8", "::1/128"]
  backend      = "out"
}
route {
  backend = "out"
}
`, testUsers, topExtra, port, frontendExtra)
}

func startServer(t testing.TB, frontendExtra, topExtra string, be *fakeBackend) *testServer {
	t.Helper()
	if be == nil {
		be = &fakeBackend{}
	}
	reg := gateway.NewRegistry()
	reg.Frontend("turn", Plugin())
	reg.Backend("fake", gateway.BackendPlugin{
		NewConfig: func() any { return &struct{}{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Backend, error) {
			be.name = name
			return be, nil
		},
	})
	ts := &testServer{t: t, reg: reg, backend: be}
	var port int
	for range 20 {
		port = gatewaytest.FreePort(t)
		ts.hcl = serverConfig(port, frontendExtra, topExtra)
		cfg, diags := gateway.ParseConfig("test.hcl", []byte(ts.hcl), reg)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		ts.metrics = gateway.NewMetrics("test")
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		if os.Getenv("TURN_TEST_LOG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		ts.srv = gateway.NewServer(gateway.ServerOptions{Registry: reg, Log: log, Metrics: ts.metrics})
		if err := ts.srv.Start(cfg); err != nil {
			continue
		}
		break
	}
	ts.udp = netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))
	ts.tcp = ts.udp
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.srv.Shutdown(ctx)
	// Orphaned UDP allocations close after handoffGrace.
	time.Sleep(3 * handoffGrace)
}

// reload applies a new configuration text to the running server.
func (ts *testServer) reload(hcl string) {
	ts.t.Helper()
	cfg, diags := gateway.ParseConfig("test.hcl", []byte(hcl), ts.reg)
	if diags.HasErrors() {
		ts.t.Fatal(diags)
	}
	if err := ts.srv.Reload(cfg); err != nil {
		ts.t.Fatal(err)
	}
}

func (ts *testServer) dropped(reason string) float64 {
	return testutil.ToFloat64(ts.metrics.DatagramsDropped.WithLabelValues("t", reason))
}

// echoPeer is a UDP echo server on 127.0.0.1.
func echoPeer(t testing.TB) *net.UDPConn {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc
}

func apOf(c interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return gateway.AddrPortOf(c.LocalAddr())
}

// client is a raw TURN client over UDP or TCP built on pion/stun and
// translate/turn.
type client struct {
	t      testing.TB
	conn   net.Conn
	stream bool
	fr     *tt.Framer
	user   string
	pass   string
	realm  string
	nonce  string
	key    []byte
	// fingerprint adds FINGERPRINT to requests.
	fingerprint bool
	// pending holds messages read while waiting for a response.
	pending [][]byte
}

func dialClient(t testing.TB, network string, server netip.AddrPort, user, pass string) *client {
	t.Helper()
	c, err := net.Dial(network, server.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, stream: network == "tcp", user: user, pass: pass, realm: "sixgate"}
	if cl.stream {
		cl.fr = tt.NewFramer(c, nil)
	}
	return cl
}

// readRaw reads one message (datagram or stream frame) within d.
func (c *client) readRaw(d time.Duration) ([]byte, error) {
	if len(c.pending) > 0 {
		b := c.pending[0]
		c.pending = c.pending[1:]
		return b, nil
	}
	c.conn.SetReadDeadline(time.Now().Add(d))
	if c.stream {
		f, err := c.fr.Next()
		if err != nil {
			return nil, err
		}
		if f.Kind == tt.KindChannelData {
			out := make([]byte, 4+len(f.Data))
			binary.BigEndian.PutUint16(out, f.Channel)
			binary.BigEndian.PutUint16(out[2:], uint16(len(f.Data)))
			copy(out[4:], f.Data)
			return out, nil
		}
		return append([]byte(nil), f.Raw...), nil
	}
	buf := make([]byte, 70000)
	n, err := c.conn.Read(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// roundTrip sends raw bytes and waits for the response with the given
// transaction ID; other messages are kept for later reads.
func (c *client) roundTrip(raw []byte, tid [12]byte) *stun.Message {
	c.t.Helper()
	if _, err := c.conn.Write(raw); err != nil {
		c.t.Fatal(err)
	}
	return c.wait(tid)
}

func (c *client) wait(tid [12]byte) *stun.Message {
	c.t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	var keep [][]byte
	defer func() { c.pending = append(keep, c.pending...) }()
	for time.Now().Before(deadline) {
		b, err := c.readRaw(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for a response: %v", err)
		}
		if tt.Demux(b) == tt.KindSTUN {
			m := new(stun.Message)
			if err := tt.Decode(b, m); err == nil && m.TransactionID == tid && m.Type.Class != stun.ClassIndication {
				return m
			}
		}
		keep = append(keep, b)
	}
	c.t.Fatal("no response")
	return nil
}

// noResponse asserts nothing arrives within d.
func (c *client) noResponse(d time.Duration) {
	c.t.Helper()
	if b, err := c.readRaw(d); err == nil {
		c.t.Fatalf("unexpected message % x", b[:min(len(b), 32)])
	}
	if c.stream {
		// The framer keeps a read error; the timeout is not one.
		c.fr = tt.NewFramer(c.conn, nil)
	}
}

// build builds a message; with auth it carries the credentials and
// MESSAGE-INTEGRITY.
func (c *client) build(t stun.MessageType, auth bool, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	setters := []stun.Setter{t, stun.TransactionID}
	setters = append(setters, attrs...)
	if auth {
		if c.key == nil {
			c.key = tt.LongTermKey(c.user, c.realm, c.pass)
		}
		setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), stun.MessageIntegrity(c.key))
	}
	if c.fingerprint {
		setters = append(setters, stun.Fingerprint)
	}
	m, err := stun.Build(setters...)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// do sends a request with credentials, learning the nonce from a 401 or
// 438 first, and returns the response.
func (c *client) do(t stun.MessageType, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	for range 3 {
		if c.nonce == "" {
			m := c.build(t, false, attrs...)
			resp := c.roundTrip(m.Raw, m.TransactionID)
			if code(resp) != stun.CodeUnauthorized {
				return resp
			}
			c.learn(resp)
		}
		m := c.build(t, true, attrs...)
		resp := c.roundTrip(m.Raw, m.TransactionID)
		if code(resp) == stun.CodeStaleNonce {
			c.learn(resp)
			continue
		}
		return resp
	}
	c.t.Fatal("no nonce accepted")
	return nil
}

func (c *client) learn(resp *stun.Message) {
	var n stun.Nonce
	if err := n.GetFrom(resp); err != nil {
		c.t.Fatalf("challenge without nonce: %v", err)
	}
	c.nonce = string(n)
	var r stun.Realm
	if r.GetFrom(resp) == nil && c.realm == "" {
		c.realm = string(r)
	}
}

// code returns a response's ERROR-CODE, 0 for a success.
func code(m *stun.Message) stun.ErrorCode {
	if m.Type.Class == stun.ClassSuccessResponse {
		return 0
	}
	var e tt.ErrorCodeAttr
	if err := e.GetFrom(m); err != nil {
		return 1
	}
	return e.Code
}

func (c *client) expectCode(m *stun.Message, want stun.ErrorCode) {
	c.t.Helper()
	if got := code(m); got != want {
		var e tt.ErrorCodeAttr
		e.GetFrom(m)
		c.t.Fatalf("%s: got code %d (%s), want %d", m.Type, got, e.Reason, want)
	}
	if want != stun.CodeUnauthorized && want != stun.CodeStaleNonce && want != stun.CodeBadRequest && c.key != nil {
		if err := tt.VerifyIntegrity(m, c.key); err != nil && want != 0 {
			c.t.Fatalf("%s %d not signed: %v", m.Type, want, err)
		}
	}
}

// allocate allocates and returns the relayed addresses.
func (c *client) allocate(attrs ...stun.Setter) tt.AllocateResult {
	c.t.Helper()
	resp := c.do(tt.TypeAllocateRequest, append([]stun.Setter{tt.RequestedTransport{Protocol: tt.ProtoUDP}}, attrs...)...)
	c.expectCode(resp, 0)
	if err := tt.VerifyIntegrity(resp, c.key); err != nil {
		c.t.Fatalf("allocate success not signed: %v", err)
	}
	r, err := tt.ParseAllocateResponse(resp)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *client) permit(peers ...netip.AddrPort) {
	c.t.Helper()
	var attrs []stun.Setter
	for _, p := range peers {
		attrs = append(attrs, tt.PeerAddress{Addr: p})
	}
	c.expectCode(c.do(tt.TypeCreatePermissionRequest, attrs...), 0)
}

func (c *client) bind(ch uint16, peer netip.AddrPort) {
	c.t.Helper()
	c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(ch), tt.PeerAddress{Addr: peer}), 0)
}

func (c *client) send(peer netip.AddrPort, data []byte, df bool) {
	c.t.Helper()
	var tid [12]byte
	copy(tid[:], "sendsendsend")
	b, err := tt.AppendSendIndication(nil, tid, peer, data, df)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) sendChannel(ch uint16, data []byte) {
	c.t.Helper()
	b, err := tt.AppendChannelData(nil, ch, data, c.stream)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// readData waits for a Data indication or ChannelData and returns the peer
// (zero for ChannelData), the channel (0 for Data) and the payload.
func (c *client) readData(d time.Duration) (peer netip.AddrPort, ch uint16, data []byte, ind tt.DataIndication) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := c.readRaw(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for data: %v", err)
		}
		switch tt.Demux(b) {
		case tt.KindChannelData:
			cd, err := tt.ParseChannelData(b)
			if err != nil {
				c.t.Fatal(err)
			}
			return netip.AddrPort{}, cd.Number, append([]byte(nil), cd.Data...), ind
		case tt.KindSTUN:
			m := new(stun.Message)
			if tt.Decode(b, m) != nil || m.Type != tt.TypeDataIndication {
				continue
			}
			di, err := tt.ParseData(m)
			if err != nil {
				c.t.Fatal(err)
			}
			return di.Peer, 0, append([]byte(nil), di.Data...), di
		}
	}
	c.t.Fatal("no data")
	return
}

func mustEqual(t testing.TB, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
