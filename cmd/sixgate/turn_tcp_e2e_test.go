package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TURN TCP relays (RFC 6062) against the built binary: a pion/stun-driven
// client over TCP, through the direct backend and through a second sixgate
// (`frontend "socks6"` -> `backend "direct"`) reached with `backend
// "socks6"`; and coturn's turnutils_uclient in its TCP relay mode (-T),
// first against coturn's own turnserver, then against sixgate.

// tcpRelayBackends are the backends the TCP relay tests run through; hcl
// returns the backend block named "out", starting what it needs first.
var tcpRelayBackends = []turnBackend{
	{name: "direct", hcl: func(*testing.T) string {
		return `backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}`
	}},
	{name: "socks6", hcl: func(t *testing.T) string {
		port := gatewaytest.FreePort(t)
		startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "up" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, port))
		return fmt.Sprintf(`backend "socks6" "out" {
  server = "127.0.0.1:%d"
}`, port)
	}},
}

// tcpTURN is a TURN client on a TCP control connection, built on pion/stun
// and translate/turn.
type tcpTURN struct {
	t       *testing.T
	srv     netip.AddrPort
	conn    net.Conn
	fr      *tt.Framer
	user    string
	key     []byte
	nonce   string
	pending [][]byte
}

func dialTCPTURN(t *testing.T, srv netip.AddrPort, user, pass string) *tcpTURN {
	t.Helper()
	c, err := net.Dial("tcp", srv.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpTURN{t: t, srv: srv, conn: c, fr: tt.NewFramer(c, nil), user: user, key: tt.LongTermKey(user, "sixgate", pass)}
}

// next returns the next message: one kept earlier, or one read within d.
func (c *tcpTURN) next(d time.Duration) (*stun.Message, error) {
	if len(c.pending) > 0 {
		b := c.pending[0]
		c.pending = c.pending[1:]
		m := new(stun.Message)
		return m, tt.Decode(b, m)
	}
	c.conn.SetReadDeadline(time.Now().Add(d))
	f, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	m := new(stun.Message)
	return m, tt.Decode(append([]byte(nil), f.Raw...), m)
}

// roundTrip sends m and returns the response; indications are kept.
func (c *tcpTURN) roundTrip(m *stun.Message) *stun.Message {
	c.t.Helper()
	if _, err := c.conn.Write(m.Raw); err != nil {
		c.t.Fatal(err)
	}
	var keep [][]byte
	defer func() { c.pending = append(keep, c.pending...) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("%s: %v", m.Type, err)
		}
		if resp.TransactionID == m.TransactionID && resp.Type.Class != stun.ClassIndication {
			return resp
		}
		keep = append(keep, resp.Raw)
	}
}

func (c *tcpTURN) build(typ stun.MessageType, attrs ...stun.Setter) *stun.Message {
	s := append([]stun.Setter{typ, stun.TransactionID}, attrs...)
	if c.nonce != "" {
		s = append(s, stun.NewUsername(c.user), stun.NewRealm("sixgate"), stun.NewNonce(c.nonce), stun.MessageIntegrity(c.key))
	}
	return stun.MustBuild(append(s, stun.Fingerprint)...)
}

// do sends an authenticated request, learning the nonce first.
func (c *tcpTURN) do(typ stun.MessageType, attrs ...stun.Setter) (*stun.Message, stun.ErrorCode) {
	c.t.Helper()
	for range 3 {
		resp := c.roundTrip(c.build(typ, attrs...))
		code := respCode(resp)
		if code == stun.CodeUnauthorized && c.nonce == "" || code == stun.CodeStaleNonce {
			var n stun.Nonce
			if n.GetFrom(resp) == nil {
				c.nonce = string(n)
				continue
			}
		}
		return resp, code
	}
	c.t.Fatal("nonce never accepted")
	return nil, 0
}

func (c *tcpTURN) mustDo(want stun.ErrorCode, typ stun.MessageType, attrs ...stun.Setter) *stun.Message {
	c.t.Helper()
	resp, code := c.do(typ, attrs...)
	if code != want {
		var e tt.ErrorCodeAttr
		e.GetFrom(resp)
		c.t.Fatalf("%s: code %d %q, want %d", typ, code, e.Reason, want)
	}
	if want != stun.CodeUnauthorized && want != stun.CodeStaleNonce {
		if err := tt.VerifyIntegrity(resp, c.key); err != nil {
			c.t.Fatalf("%s: response not signed: %v", typ, err)
		}
	}
	return resp
}

func (c *tcpTURN) allocateTCP() netip.AddrPort {
	c.t.Helper()
	r, err := tt.ParseAllocateResponse(c.mustDo(0, tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoTCP}))
	if err != nil {
		c.t.Fatal(err)
	}
	return r.Relayed[0]
}

func (c *tcpTURN) permit(peers ...netip.AddrPort) {
	c.t.Helper()
	var attrs []stun.Setter
	for _, p := range peers {
		attrs = append(attrs, tt.PeerAddress{Addr: p})
	}
	c.mustDo(0, tt.TypeCreatePermissionRequest, attrs...)
}

func (c *tcpTURN) connect(peer netip.AddrPort) tt.ConnectionID {
	c.t.Helper()
	var id tt.ConnectionID
	if err := id.GetFrom(c.mustDo(0, tt.TypeConnectRequest, tt.PeerAddress{Addr: peer})); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// waitAttempt waits for a ConnectionAttempt indication.
func (c *tcpTURN) waitAttempt(d time.Duration) (tt.ConnectionID, netip.AddrPort) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := c.next(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for a connectionattempt: %v", err)
		}
		if m.Type == tt.TypeConnectionAttemptIndication {
			id, peer, err := tt.ParseConnectionAttempt(m)
			if err != nil {
				c.t.Fatal(err)
			}
			return id, peer
		}
	}
}

// readOne reads exactly one STUN message from a stream.
func readOne(t *testing.T, conn net.Conn) *stun.Message {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	hdr := make([]byte, 20)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	b := make([]byte, 20+int(binary.BigEndian.Uint16(hdr[2:])))
	copy(b, hdr)
	if _, err := io.ReadFull(conn, b[20:]); err != nil {
		t.Fatal(err)
	}
	m := new(stun.Message)
	if err := tt.Decode(b, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// bindData opens a data connection and sends ConnectionBind (signed with the
// control connection's nonce) followed by extra in the same write; it
// returns the connection and the response's code.
func (c *tcpTURN) bindData(id tt.ConnectionID, extra []byte) (net.Conn, stun.ErrorCode) {
	c.t.Helper()
	conn, err := net.Dial("tcp", c.srv.String())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	m := c.build(tt.TypeConnectionBindRequest, id)
	if _, err := conn.Write(append(append([]byte(nil), m.Raw...), extra...)); err != nil {
		c.t.Fatal(err)
	}
	resp := readOne(c.t, conn)
	code := respCode(resp)
	if code == stun.CodeStaleNonce {
		// The CONNECTION-ID is not pending any more: the control nonce is
		// no good here. Retry with this connection's.
		var n stun.Nonce
		n.GetFrom(resp)
		m = stun.MustBuild(tt.TypeConnectionBindRequest, stun.TransactionID, id, stun.NewUsername(c.user),
			stun.NewRealm("sixgate"), stun.NewNonce(string(n)), stun.MessageIntegrity(c.key))
		conn.Write(m.Raw)
		code = respCode(readOne(c.t, conn))
	}
	return conn, code
}

// tcpEchoServer echoes on 127.0.0.1 until the client half-closes.
func tcpEchoServer(t *testing.T) (netip.AddrPort, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case conns <- c:
			default:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return netip.MustParseAddrPort(ln.Addr().String()), conns
}

// echo64K writes 64 KiB and expects early+payload back, then half-closes and
// expects EOF.
func echo64K(t *testing.T, conn net.Conn, early []byte) time.Duration {
	t.Helper()
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		errc <- err
	}()
	want := append(append([]byte(nil), early...), payload...)
	got := make([]byte, len(want))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	d := time.Since(start)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs")
	}
	conn.(*net.TCPConn).CloseWrite()
	if n, err := io.Copy(io.Discard, conn); n != 0 || err != nil {
		t.Fatalf("after half-close: %d bytes, %v", n, err)
	}
	return d
}

// metricValue returns a sample's value from the admin /metrics page, or -1.
func metricValue(g *gatewayProc, sample string) float64 {
	_, body := g.get("/metrics")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, sample+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, sample+" "), 64)
			return v
		}
	}
	return -1
}

func waitMetric(t *testing.T, g *gatewayProc, sample string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for metricValue(g, sample) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", sample, metricValue(g, sample), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTURNTCPRelay: Allocate a TCP relay, Connect to a TCP echo, bind a data
// connection and echo 64 KiB, through the direct backend and through an
// upstream sixgate over SOCKS 6; then the error codes (447 refused, 403
// denied and without a permission, 446, 400 for a wrong CONNECTION-ID), the
// ConnectionBind timeout, and a peer-initiated connection.
func TestTURNTCPRelay(t *testing.T) {
	for _, be := range tcpRelayBackends {
		t.Run(be.name, func(t *testing.T) {
			g, srv := startTURN(t, be, `connection_bind_timeout = "500ms"`)
			echo, echoConns := tcpEchoServer(t)
			c := dialTCPTURN(t, srv, "alice", "s3cret")
			start := time.Now()
			relay := c.allocateTCP()
			t.Logf("allocate: relayed %v in %v", relay, time.Since(start))
			if !relay.Addr().IsLoopback() || relay.Port() == 0 {
				t.Fatalf("relayed address %v", relay)
			}

			t.Run("connect and 64 KiB", func(t *testing.T) {
				c.permit(echo)
				start := time.Now()
				id := c.connect(echo)
				connectTook := time.Since(start)
				start = time.Now()
				data, code := c.bindData(id, []byte("early bytes"))
				if code != 0 {
					t.Fatalf("connectionbind: %d", code)
				}
				bindTook := time.Since(start)
				echoTook := echo64K(t, data, []byte("early bytes"))
				t.Logf("connect %v, connectionbind %v, 64 KiB echo %v", connectTook, bindTook, echoTook)
				waitMetric(t, g, `sixgate_sessions_total{command="connect",frontend="turn",protocol="turn",result="ok"}`, 1)
			})
			t.Run("447 refused", func(t *testing.T) {
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				closed := netip.MustParseAddrPort(ln.Addr().String())
				ln.Close()
				c.permit(closed)
				c.mustDo(stun.CodeConnTimeoutOrFailure, tt.TypeConnectRequest, tt.PeerAddress{Addr: closed})
			})
			t.Run("403", func(t *testing.T) {
				c.mustDo(stun.CodeForbidden, tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort("10.9.8.7:80")})
				c.mustDo(stun.CodeForbidden, tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort("0.0.0.0:80")})
				// No CreatePermission for 127.0.0.2 yet: RFC 6062 installs
				// none, the digest requires one.
				c.mustDo(stun.CodeForbidden, tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), echo.Port())})
			})
			t.Run("446 and 400", func(t *testing.T) {
				id := c.connect(echo)
				c.mustDo(stun.CodeConnAlreadyExists, tt.TypeConnectRequest, tt.PeerAddress{Addr: echo})
				if _, code := c.bindData(id^0xffffffff, nil); code != stun.CodeBadRequest {
					t.Fatalf("wrong connection-id: %d", code)
				}
				data, code := c.bindData(id, nil)
				if code != 0 {
					t.Fatalf("connectionbind: %d", code)
				}
				echo64K(t, data, nil)
				// The connection ends (and its peer may be connected
				// again) once the relay has torn down, just after the
				// client saw EOF.
				waitMetric(t, g, `sixgate_sessions_total{command="connect",frontend="turn",protocol="turn",result="ok"}`, 2)
			})
			t.Run("connectionbind timeout", func(t *testing.T) {
				for len(echoConns) > 0 {
					<-echoConns
				}
				start := time.Now()
				id := c.connect(echo)
				var peer net.Conn
				select {
				case peer = <-echoConns:
				case <-time.After(5 * time.Second):
					t.Fatal("the echo saw no connection")
				}
				// The echo's copy ends when sixgate closes the unbound
				// connection; our read then sees EOF once the echo goroutine
				// closes its side. Poll the metric instead.
				_ = peer
				waitMetric(t, g, `sixgate_sessions_total{command="connect",frontend="turn",protocol="turn",result="timeout"}`, 1)
				t.Logf("unbound connection closed after %v (timeout 500ms)", time.Since(start))
				if _, code := c.bindData(id, nil); code != stun.CodeBadRequest {
					t.Fatalf("expired connection-id: %d", code)
				}
			})
			t.Run("peer-initiated", func(t *testing.T) {
				c.permit(netip.MustParseAddrPort("127.0.0.1:0"))
				peer, err := net.Dial("tcp", relay.String())
				if err != nil {
					t.Fatal(err)
				}
				defer peer.Close()
				peer.Write([]byte("peer first"))
				id, from := c.waitAttempt(5 * time.Second)
				if !from.Addr().IsLoopback() {
					t.Fatalf("connectionattempt from %v", from)
				}
				data, code := c.bindData(id, []byte("client second"))
				if code != 0 {
					t.Fatalf("connectionbind: %d", code)
				}
				buf := make([]byte, len("peer first"))
				data.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(data, buf); err != nil || string(buf) != "peer first" {
					t.Fatalf("client read %q %v", buf, err)
				}
				buf = make([]byte, len("client second"))
				peer.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "client second" {
					t.Fatalf("peer read %q %v", buf, err)
				}
				go func() { io.Copy(peer, peer); peer.(*net.TCPConn).CloseWrite() }()
				echo64K(t, data, nil)
				waitMetric(t, g, `sixgate_sessions_total{command="bind",frontend="turn",protocol="turn",result="ok"}`, 1)
			})
		})
	}
}

// uclientTCP runs turnutils_uclient -T (RFC 6062 relays, client to client:
// -T implies -y and ignores -e/-r, so no turnutils_peer is involved) and
// returns the loss, the output and how long it took.
func uclientTCP(t *testing.T, port int, args ...string) (float64, string, time.Duration, error) {
	t.Helper()
	argv := append([]string{"-T", "-u", "user", "-w", "pass", "-p", strconv.Itoa(port)}, args...)
	argv = append(argv, "127.0.0.1")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, "turnutils_uclient", argv...).CombinedOutput()
	d := time.Since(start)
	m := lossRE.FindStringSubmatch(string(out))
	if m == nil {
		if err == nil {
			err = fmt.Errorf("no loss summary")
		}
		return -1, string(out), d, err
	}
	v, _ := strconv.ParseFloat(m[2], 64)
	return v, string(out), d, err
}

var recvRE = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\n`)

// sentRecv returns uclient's final message counts, "sent/received".
func sentRecv(out string) string {
	m := recvRE.FindAllStringSubmatch(out, -1)
	if m == nil {
		return "?"
	}
	last := m[len(m)-1]
	return last[1] + "/" + last[2]
}

// TestTURNTCPUclientCoturn is the baseline: turnutils_uclient -T against
// coturn's own turnserver on 127.0.0.1 (config in a temp dir). It only
// reports what happened; TestTURNTCPUclient is the test against sixgate.
func TestTURNTCPUclientCoturn(t *testing.T) {
	if _, err := exec.LookPath("turnserver"); err != nil {
		t.Skip("coturn's turnserver is not installed")
	}
	dir := t.TempDir()
	port := gatewaytest.FreePort(t)
	cfg := fmt.Sprintf(`listening-ip=127.0.0.1
listening-port=%d
relay-ip=127.0.0.1
min-port=%d
max-port=%d
lt-cred-mech
user=user:pass
realm=sixgate
allow-loopback-peers
no-tls
no-dtls
no-cli
fingerprint
simple-log
log-file=stdout
userdb=%s
pidfile=%s
`, port, 40000+port%1000*20, 40000+port%1000*20+19, filepath.Join(dir, "turndb"), filepath.Join(dir, "turnserver.pid"))
	path := filepath.Join(dir, "turnserver.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("turnserver", "-c", path)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("turnserver did not start:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"-n", "50", "-m", "2", "-l", "1000", "-z", "5"},
		{"-n", "50", "-m", "10", "-l", "200", "-z", "5"},
	} {
		loss, out, d, err := uclientTCP(t, port, args...)
		t.Logf("coturn %s: loss %.1f%% (sent/received %s) in %v, err %v", strings.Join(args, " "), loss, sentRecv(out), d.Round(time.Millisecond), err)
	}
}

// TestTURNTCPUclient runs turnutils_uclient -T against sixgate (direct
// backend): pairs of clients each make a TCP allocation, permit each
// other's relayed address, one Connects to the other's relay, the other
// gets a ConnectionAttempt, both bind data connections and echo through
// two relays. It must lose nothing.
func TestTURNTCPUclient(t *testing.T) {
	if _, err := exec.LookPath("turnutils_uclient"); err != nil {
		t.Fatal("turnutils_uclient is not installed (.ci/setup installs coturn)")
	}
	g, srv := startTURN(t, tcpRelayBackends[0], "")
	for _, args := range [][]string{
		{"-n", "50", "-m", "2", "-l", "1000", "-z", "5"},
		{"-n", "50", "-m", "10", "-l", "200", "-z", "5"},
	} {
		loss, out, d, err := uclientTCP(t, int(srv.Port()), args...)
		if err != nil || loss != 0 {
			t.Fatalf("uclient %s: loss %.2f%%, %v\n%s", strings.Join(args, " "), loss, err, tail([]byte(out)))
		}
		t.Logf("sixgate %s: 0%% loss (sent/received %s) in %v", strings.Join(args, " "), sentRecv(out), d.Round(time.Millisecond))
	}
	if v := metricValue(g, `sixgate_sessions_total{command="bind",frontend="turn",protocol="turn",result="ok"}`); v < 6 {
		t.Fatalf("peer-initiated sessions %v", v)
	}
}
