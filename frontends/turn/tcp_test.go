package turn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	tt "github.com/sixgate/sixgate/translate/turn"
)

var tcpTransport = tt.RequestedTransport{Protocol: tt.ProtoTCP}

// tcpEcho is a TCP echo server on 127.0.0.1 that echoes until the client
// half-closes, then half-closes too. conns receives every accepted
// connection.
type tcpEcho struct {
	ln    *net.TCPListener
	conns chan *net.TCPConn // accepted connections, for tests that want them
	wg    sync.WaitGroup
	// open is every connection still being served, closed by the cleanup;
	// one accepted after the cleanup began is closed at once.
	mu     sync.Mutex
	open   map[*net.TCPConn]struct{}
	closed bool
}

func startTCPEcho(t testing.TB) *tcpEcho {
	t.Helper()
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	e := &tcpEcho{ln: ln, conns: make(chan *net.TCPConn, 16), open: make(map[*net.TCPConn]struct{})}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			e.mu.Lock()
			if e.closed {
				e.mu.Unlock()
				c.Close()
				continue
			}
			e.open[c] = struct{}{}
			e.mu.Unlock()
			select {
			case e.conns <- c:
			default:
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer func() {
					c.Close()
					e.mu.Lock()
					delete(e.open, c)
					e.mu.Unlock()
				}()
				io.Copy(c, c)
				c.CloseWrite()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	// The cleanup closes every connection: one the test never read from
	// conns (the gateway may hold its far end open for long, as a peer
	// connection waiting for its ConnectionBind does) would otherwise
	// keep the wait below going.
	t.Cleanup(func() {
		ln.Close()
		e.mu.Lock()
		e.closed = true
		for c := range e.open {
			c.Close()
		}
		e.mu.Unlock()
		e.wg.Wait()
	})
	return e
}

func (e *tcpEcho) addr() netip.AddrPort { return gateway.AddrPortOf(e.ln.Addr()) }

// allocateTCP makes a TCP allocation on a TCP control connection.
func (c *client) allocateTCP(attrs ...stun.Setter) tt.AllocateResult {
	c.t.Helper()
	resp := c.do(tt.TypeAllocateRequest, append([]stun.Setter{tcpTransport}, attrs...)...)
	c.expectCode(resp, 0)
	r, err := tt.ParseAllocateResponse(resp)
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

// connectPeer sends Connect and returns the CONNECTION-ID.
func (c *client) connectPeer(peer netip.AddrPort) tt.ConnectionID {
	c.t.Helper()
	resp := c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: peer})
	c.expectCode(resp, 0)
	if err := tt.VerifyIntegrity(resp, c.key); err != nil {
		c.t.Fatalf("connect success not signed: %v", err)
	}
	var id tt.ConnectionID
	if err := id.GetFrom(resp); err != nil {
		c.t.Fatal(err)
	}
	return id
}

// waitAttempt waits for a ConnectionAttempt indication.
func (c *client) waitAttempt(d time.Duration) (tt.ConnectionID, netip.AddrPort, []byte) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := c.readRaw(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("waiting for a connectionattempt: %v", err)
		}
		m := new(stun.Message)
		if tt.Decode(b, m) != nil || m.Type != tt.TypeConnectionAttemptIndication {
			continue
		}
		id, peer, err := tt.ParseConnectionAttempt(m)
		if err != nil {
			c.t.Fatal(err)
		}
		return id, peer, b
	}
	c.t.Fatal("no connectionattempt")
	return 0, netip.AddrPort{}, nil
}

// readMessage reads exactly one STUN message from a stream, leaving what
// follows it unread.
func readMessage(t testing.TB, conn net.Conn) *stun.Message {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
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

// dataConn opens a data connection and sends ConnectionBind for id (with
// extra bytes in the same write), signed with the control connection's
// nonce unless fresh: then it learns a nonce for the new connection first.
// It returns the connection and the response.
func (c *client) dataConn(server netip.AddrPort, id tt.ConnectionID, extra []byte, fresh bool) (net.Conn, *stun.Message) {
	c.t.Helper()
	conn, err := net.Dial("tcp", server.String())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	nonce := c.nonce
	if fresh {
		m := stun.MustBuild(tt.TypeConnectionBindRequest, stun.TransactionID, id)
		conn.Write(m.Raw)
		resp := readMessage(c.t, conn)
		if code(resp) != stun.CodeUnauthorized {
			c.t.Fatalf("unauthenticated connectionbind: code %d", code(resp))
		}
		var n stun.Nonce
		if err := n.GetFrom(resp); err != nil {
			c.t.Fatal(err)
		}
		nonce = string(n)
	}
	m := stun.MustBuild(tt.TypeConnectionBindRequest, stun.TransactionID, id,
		stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(nonce), stun.MessageIntegrity(c.key), stun.Fingerprint)
	if _, err := conn.Write(append(append([]byte(nil), m.Raw...), extra...)); err != nil {
		c.t.Fatal(err)
	}
	return conn, readMessage(c.t, conn)
}

func (c *client) bindData(server netip.AddrPort, id tt.ConnectionID, extra []byte, fresh bool) net.Conn {
	c.t.Helper()
	conn, resp := c.dataConn(server, id, extra, fresh)
	c.expectCode(resp, 0)
	if resp.Type != tt.TypeConnectionBindSuccess {
		c.t.Fatalf("response %s", resp.Type)
	}
	if err := tt.VerifyIntegrity(resp, c.key); err != nil {
		c.t.Fatalf("connectionbind success not signed: %v", err)
	}
	return conn
}

// roundTrip64K writes 64 KiB (after what was sent early) and reads the echo.
func roundTrip64K(t testing.TB, conn net.Conn, early []byte) {
	t.Helper()
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		errc <- err
	}()
	want := append(append([]byte(nil), early...), payload...)
	got := make([]byte, len(want))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	conn.SetReadDeadline(time.Time{})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echo differs")
	}
}

// closeAndDrain half-closes conn and expects EOF back (the echo peer ends
// after the half-close travels through the relay).
func closeAndDrain(t testing.TB, conn net.Conn) {
	t.Helper()
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := io.Copy(io.Discard, conn); err != nil || n != 0 {
		t.Fatalf("after half-close: %d bytes, %v", n, err)
	}
}

func (ts *testServer) sessions(cmd, result string) float64 {
	return testutil.ToFloat64(ts.metrics.Sessions.WithLabelValues("t", "turn", cmd, result))
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTCPConnect: Allocate a TCP relay, Connect to a TCP echo, bind a data
// connection (bytes sent right after ConnectionBind go first), 64 KiB both
// ways, half-close through the relay, one access-log session per data
// connection; with both stream framers, and with the ConnectionBind signed
// with the control connection's nonce or a fresh one.
func TestTCPConnect(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		fresh       bool
	}{
		{"control nonce", "", false},
		{"fresh nonce", "", true},
		{"legacy framer", "legacy_channels = true", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := &fakeBackend{}
			ts := startServer(t, tc.extra, "", be)
			echo := startTCPEcho(t)
			c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
			r := c.allocateTCP()
			if len(r.Relayed) != 1 || r.Relayed[0].Addr() != netip.MustParseAddr("127.0.0.1") || r.Relayed[0].Port() == 0 {
				t.Fatalf("relayed %v", r.Relayed)
			}
			c.permit(echo.addr())
			id := c.connectPeer(echo.addr())
			early := []byte("sent with the connectionbind")
			data := c.bindData(ts.tcp, id, early, tc.fresh)
			roundTrip64K(t, data, early)
			closeAndDrain(t, data)
			waitFor(t, 3*time.Second, "the access log", func() bool { return ts.sessions("connect", "ok") == 1 })
			if got := testutil.ToFloat64(ts.metrics.Bytes.WithLabelValues("t", "up")); got != float64(64<<10+len(early)) {
				t.Fatalf("bytes up %v", got)
			}
			be.mu.Lock()
			src, bl := be.sources, be.backlogs
			be.mu.Unlock()
			if len(src) != 1 || src[0] != r.Relayed[0] {
				t.Fatalf("dial source %v, want the relayed address %v", src, r.Relayed[0])
			}
			if len(bl) != 1 || !bl[0].Pending() || bl[0].Value != DefaultMaxTCPConnections {
				t.Fatalf("listen backlog %+v", bl)
			}
			// The peer may be connected again once the first connection
			// ended, and the allocation keeps serving requests.
			id2 := c.connectPeer(echo.addr())
			if id2 == id {
				t.Fatal("connection-id reused")
			}
			roundTrip64K(t, c.bindData(ts.tcp, id2, nil, false), nil)
			c.expectCode(c.do(tt.TypeRefreshRequest), 0)
		})
	}
}

// TestTCPErrors checks the RFC 6062 error codes in turn.md §6's order.
func TestTCPErrors(t *testing.T) {
	ts := startServer(t, "max_tcp_connections = 2", "", nil)
	echo := startTCPEcho(t)
	refused := func() netip.AddrPort {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ap := gateway.AddrPortOf(ln.Addr())
		ln.Close()
		return ap
	}()

	t.Run("allocate over udp is 400", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeAllocateRequest, tcpTransport), stun.CodeBadRequest)
	})
	t.Run("allocate with dont-fragment or even-port is 400", func(t *testing.T) {
		c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeAllocateRequest, tcpTransport, tt.DontFragment{}), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeAllocateRequest, tcpTransport, tt.EvenPort{}), stun.CodeBadRequest)
	})
	t.Run("connect on a udp allocation is 400", func(t *testing.T) {
		c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
		c.allocate()
		c.permit(echo.addr())
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: echo.addr()}), stun.CodeBadRequest)
	})
	t.Run("connect without an allocation is 437", func(t *testing.T) {
		c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: echo.addr()}), stun.CodeAllocMismatch)
	})

	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.allocateTCP()
	t.Run("400 no peer", func(t *testing.T) {
		c.expectCode(c.do(tt.TypeConnectRequest), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort("127.0.0.1:0")}), stun.CodeBadRequest)
	})
	t.Run("443 family", func(t *testing.T) {
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort("[::1]:80")}), stun.CodePeerAddrFamilyMismatch)
	})
	t.Run("403 denied by the routes", func(t *testing.T) {
		for _, p := range []string{"0.0.0.0:80", "10.1.2.3:80", "169.254.169.254:80", ts.tcp.String()} {
			c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort(p)}), stun.CodeForbidden)
		}
	})
	t.Run("403 without a permission", func(t *testing.T) {
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: echo.addr()}), stun.CodeForbidden)
	})
	t.Run("447 refused", func(t *testing.T) {
		c.permit(refused)
		resp := c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: refused})
		c.expectCode(resp, stun.CodeConnTimeoutOrFailure)
		waitFor(t, 2*time.Second, "the refused session", func() bool { return ts.sessions("connect", "connection_refused") == 1 })
		// A failed connection does not block the peer.
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: refused}), stun.CodeConnTimeoutOrFailure)
	})
	var id tt.ConnectionID
	t.Run("446 second connect", func(t *testing.T) {
		c.permit(echo.addr())
		id = c.connectPeer(echo.addr())
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: echo.addr()}), stun.CodeConnAlreadyExists)
	})
	t.Run("508 connection limit", func(t *testing.T) {
		other := startTCPEcho(t)
		c.permit(other.addr())
		c.connectPeer(other.addr())
		third := startTCPEcho(t)
		c.permit(third.addr())
		c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: third.addr()}), stun.CodeInsufficientCapacity)
	})
	t.Run("403 channelbind, send dropped", func(t *testing.T) {
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: echo.addr()}), stun.CodeForbidden)
		before := ts.dropped("tcp_relay")
		c.send(echo.addr(), []byte("x"), false)
		waitFor(t, 2*time.Second, "the send drop", func() bool { return ts.dropped("tcp_relay") == before+1 })
	})
	t.Run("connectionbind errors", func(t *testing.T) {
		// A CONNECTION-ID nobody issued.
		_, resp := c.dataConn(ts.tcp, id^0x5a5a5a5a, nil, true)
		c.expectCode(resp, stun.CodeBadRequest)
		// Over UDP.
		u := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		u.expectCode(u.do(tt.TypeConnectionBindRequest, id), stun.CodeBadRequest)
		// On the control connection.
		c.expectCode(c.do(tt.TypeConnectionBindRequest, id), stun.CodeBadRequest)
		// Another user.
		bob := *c
		bob.t, bob.user, bob.pass, bob.key = t, "bob", "hunter2", tt.LongTermKey("bob", "sixgate", "hunter2")
		_, resp = bob.dataConn(ts.tcp, id, nil, true)
		bob.expectCode(resp, stun.CodeWrongCredentials)
		// Without CONNECTION-ID.
		conn, err := net.Dial("tcp", ts.tcp.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		dc := &client{t: t, conn: conn, stream: true, fr: tt.NewFramer(conn, nil), user: "alice", pass: "s3cret", realm: "sixgate"}
		dc.expectCode(dc.do(tt.TypeConnectionBindRequest), stun.CodeBadRequest)
		// The right one still binds, once.
		roundTrip64K(t, c.bindData(ts.tcp, id, nil, false), nil)
		// Used up: with the control connection's nonce, which only a
		// pending CONNECTION-ID makes acceptable, 438 first; then 400.
		_, resp = c.dataConn(ts.tcp, id, nil, false)
		c.expectCode(resp, stun.CodeStaleNonce)
		_, resp = c.dataConn(ts.tcp, id, nil, true)
		c.expectCode(resp, stun.CodeBadRequest)
	})
}

// TestTCPDisabled: tcp_relays = false, or a backend without streams, answer
// 442.
func TestTCPDisabled(t *testing.T) {
	ts := startServer(t, "tcp_relays = false", "", nil)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.expectCode(c.do(tt.TypeAllocateRequest, tcpTransport), stun.CodeUnsupportedTransProto)
	ts2 := startServer(t, "", "", &fakeBackend{noStreams: true})
	c2 := dialClient(t, "tcp", ts2.tcp, "alice", "s3cret")
	c2.expectCode(c2.do(tt.TypeAllocateRequest, tcpTransport), stun.CodeUnsupportedTransProto)
	c2.allocate() // UDP still works
}

// TestTCPBindTimeout: a connection not bound within connection_bind_timeout
// is closed, logged as a timeout, and its CONNECTION-ID is gone.
func TestTCPBindTimeout(t *testing.T) {
	ts := startServer(t, `connection_bind_timeout = "200ms"`, "", nil)
	echo := startTCPEcho(t)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.allocateTCP()
	c.permit(echo.addr())
	start := time.Now()
	id := c.connectPeer(echo.addr())
	select {
	case <-echo.conns:
	case <-time.After(2 * time.Second):
		t.Fatal("the echo saw no connection")
	}
	// The echo goroutine closes its side once it sees EOF.
	waitFor(t, 3*time.Second, "the timeout", func() bool { return ts.sessions("connect", "timeout") == 1 })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("closed after %v", d)
	}
	_, resp := c.dataConn(ts.tcp, id, nil, true)
	c.expectCode(resp, stun.CodeBadRequest)
	// The peer can be connected again.
	c.connectPeer(echo.addr())
}

// TestTCPPeerInitiated: a peer connecting to the relayed address is
// announced with a ConnectionAttempt when it has a permission, and relayed
// after ConnectionBind; without a permission it is closed and counted.
func TestTCPPeerInitiated(t *testing.T) {
	ts := startServer(t, "", "", nil)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	relay := c.allocateTCP().Relayed[0]

	// No permission: closed at once, no ConnectionAttempt.
	p0, err := net.Dial("tcp", relay.String())
	if err != nil {
		t.Fatal(err)
	}
	defer p0.Close()
	p0.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := p0.Read(make([]byte, 1)); err == nil {
		t.Fatal("a peer without permission was not closed")
	}
	waitFor(t, 2*time.Second, "the refusal", func() bool { return ts.sessions("bind", "not_allowed") == 1 })
	c.noResponse(100 * time.Millisecond)

	c.permit(netip.MustParseAddrPort("127.0.0.1:0"))
	peer, err := net.Dial("tcp", relay.String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	// The peer talks first: its bytes wait for the ConnectionBind.
	if _, err := peer.Write([]byte("hello from the peer")); err != nil {
		t.Fatal(err)
	}
	id, from, _ := c.waitAttempt(3 * time.Second)
	if from != gateway.AddrPortOf(peer.LocalAddr()) {
		t.Fatalf("connectionattempt peer %v, want %v", from, peer.LocalAddr())
	}
	data := c.bindData(ts.tcp, id, []byte("hello from the client"), false)
	buf := make([]byte, len("hello from the peer"))
	data.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(data, buf); err != nil || string(buf) != "hello from the peer" {
		t.Fatalf("client got %q, %v", buf, err)
	}
	buf = make([]byte, len("hello from the client"))
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello from the client" {
		t.Fatalf("peer got %q, %v", buf, err)
	}
	// A 64 KiB echo the other way round: the peer echoes.
	go func() { io.Copy(peer, peer); peer.Close() }()
	roundTrip64K(t, data, nil)
	data.Close()
	waitFor(t, 3*time.Second, "the access log", func() bool { return ts.sessions("bind", "ok") == 1 })
}

// TestTCPAllocationEnd: closing the control connection closes pending and
// bound peer connections and their data connections.
func TestTCPAllocationEnd(t *testing.T) {
	ts := startServer(t, "", "", nil)
	echo := startTCPEcho(t)
	other := startTCPEcho(t)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.allocateTCP()
	c.permit(echo.addr(), other.addr())
	data := c.bindData(ts.tcp, c.connectPeer(echo.addr()), nil, false)
	roundTrip64K(t, data, nil)
	c.connectPeer(other.addr()) // left pending
	var pending *net.TCPConn
	select {
	case pending = <-other.conns:
	case <-time.After(2 * time.Second):
		t.Fatal("no peer connection")
	}
	// The echo reads the pending connection; give it a moment to start.
	time.Sleep(20 * time.Millisecond)
	c.conn.Close()
	data.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.Copy(io.Discard, data); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		t.Fatalf("data connection: %v", err)
	}
	waitFor(t, 3*time.Second, "both sessions", func() bool {
		return ts.sessions("connect", "ok") == 2 && ts.sessions("turn-allocate", "ok") == 1
	})
	// The pending peer connection was closed too: its echo ended.
	pending.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := pending.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("pending peer connection still open: %v", err)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// TestTCPWildcardRelay: a backend listening on every address reports the
// server address the client used as the relayed address.
func TestTCPWildcardRelay(t *testing.T) {
	ts := startServer(t, "", "", &fakeBackend{wildcardListen: true})
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	r := c.allocateTCP()
	if r.Relayed[0].Addr() != ts.tcp.Addr() {
		t.Fatalf("relayed %v", r.Relayed[0])
	}
	// A dual-stack request gets the IPv4 relay and 440 for IPv6.
	d := dialClient(t, "tcp", ts.tcp, "bob", "hunter2")
	rd := d.allocateTCP(tt.AdditionalAddressFamily(tt.FamilyIPv6))
	if len(rd.Relayed) != 1 || rd.AddressError == nil || rd.AddressError.Code != stun.CodeAddrFamilyNotSupported {
		t.Fatalf("dual: %v %+v", rd.Relayed, rd.AddressError)
	}
	d.expectCode(d.do(tt.TypeRefreshRequest, tt.RequestedAddressFamily(tt.FamilyIPv6)), stun.CodePeerAddrFamilyMismatch)
	d.expectCode(d.do(tt.TypeRefreshRequest, tt.RequestedAddressFamily(tt.FamilyIPv4), tt.Lifetime(0)), 0)
	// Deleting a TCP or TLS allocation ends its connection.
	if _, err := d.readRaw(2 * time.Second); err == nil {
		t.Fatal("control connection open after refresh 0")
	}
}

func mustHexTCP(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTCPVectors runs turn.md §9's RFC 6062 vectors through the engine:
// the client's requests are built as TV22, TV23 and TV25 (checked byte for
// byte with the vectors' nonce, then sent with the server's), and the
// engine's Connect success and ConnectionAttempt must be TV24 and TV26 byte
// for byte (TV26 apart from its random transaction ID).
func TestTCPVectors(t *testing.T) {
	const (
		tv22 = "000300542112a442736978676174652d74763133001900040600000000060005616c696365000000001400077369786761746500001500103461396632633631653062336438353700080014" +
			"8b1e10f685012dcd79996ddca1ccc8cfc50d560f802800045383acac"
		tv23 = "000a00582112a442736978676174652d74763134001200080001cb725e12a44300060005616c6963650000000014000773697867617465000015001034613966326336316530623364383537" +
			"00080014420ff59aa5dbf7ad305108662f7da21a6bc345b1802800048826a901"
		tv24 = "010a00282112a442736978676174652d74763134002a000401020304000800142838f6b13b50baffa83702bd71c22d9dad7e924480280004e829c03d"
		tv25 = "000b00542112a442736978676174652d74763135002a00040102030400060005616c696365000000001400077369786761746500001500103461396632633631653062336438353700080014" +
			"53afb2d19bda836df25d0f165abe55a9a1f8f35080280004baa33480"
		tv26 = "001c00142112a442736978676174652d74763136002a000405060708001200080001cb735e12a443"
	)
	peer := netip.MustParseAddrPort("127.0.0.1:60000")
	peerLn, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(peer))
	if err != nil {
		t.Skip("127.0.0.1:60000 is taken:", err)
	}
	defer peerLn.Close()
	ids := make(chan tt.ConnectionID, 4)
	ids <- 0x01020304
	ids <- 0x05060708
	old := newConnectionID
	newConnectionID = func() tt.ConnectionID {
		select {
		case id := <-ids:
			return id
		default:
			return old()
		}
	}
	t.Cleanup(func() { newConnectionID = old }) // after the server stops

	ts := startServer(t, `software = ""`, "", nil)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.key = tt.LongTermKey("alice", "sixgate", "s3cret")
	tid := func(n string) [12]byte { var b [12]byte; copy(b[:], "sixgate-tv"+n); return b }
	build := func(typ stun.MessageType, id [12]byte, nonce string, attrs ...stun.Setter) *stun.Message {
		s := []stun.Setter{typ, stun.NewTransactionIDSetter(id)}
		s = append(s, attrs...)
		s = append(s, stun.NewUsername("alice"), stun.NewRealm("sixgate"), stun.NewNonce(nonce), stun.MessageIntegrity(c.key), stun.Fingerprint)
		return stun.MustBuild(s...)
	}
	const vecNonce = "4a9f2c61e0b3d857"
	for _, v := range []struct {
		name string
		m    *stun.Message
		want string
	}{
		{"tv22", build(tt.TypeAllocateRequest, tid("13"), vecNonce, tcpTransport), tv22},
		{"tv23", build(tt.TypeConnectRequest, tid("14"), vecNonce, tt.PeerAddress{Addr: peer}), tv23},
		{"tv25", build(tt.TypeConnectionBindRequest, tid("15"), vecNonce, tt.ConnectionID(0x01020304)), tv25},
	} {
		if !bytes.Equal(v.m.Raw, mustHexTCP(t, v.want)) {
			t.Fatalf("%s: the request builder does not give the vector:\n% x", v.name, v.m.Raw)
		}
	}
	// Learn the server's nonce, then send TV22 and TV23 with it.
	first := stun.MustBuild(tt.TypeAllocateRequest, stun.TransactionID, tcpTransport)
	c.learn(c.roundTrip(first.Raw, first.TransactionID))
	alloc := build(tt.TypeAllocateRequest, tid("13"), c.nonce, tcpTransport)
	aresp := c.roundTrip(alloc.Raw, alloc.TransactionID)
	c.expectCode(aresp, 0)
	ar, err := tt.ParseAllocateResponse(aresp)
	if err != nil {
		t.Fatal(err)
	}
	relay := ar.Relayed[0]
	c.permit(peer, netip.MustParseAddrPort("127.0.0.1:60001"))
	conn := build(tt.TypeConnectRequest, tid("14"), c.nonce, tt.PeerAddress{Addr: peer})
	resp := c.roundTrip(conn.Raw, conn.TransactionID)
	if !bytes.Equal(resp.Raw, mustHexTCP(t, tv24)) {
		t.Fatalf("connect success is not TV24:\n got % x\nwant %s", resp.Raw, tv24)
	}
	pc, err := peerLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// TV25 with the control connection's nonce binds the connection.
	dc, err := net.Dial("tcp", ts.tcp.String())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bind := build(tt.TypeConnectionBindRequest, tid("15"), c.nonce, tt.ConnectionID(0x01020304))
	dc.Write(bind.Raw)
	c.expectCode(readMessage(t, dc), 0)

	// TV26: a peer from 127.0.0.1:60001.
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:60001"))}
	p2, err := d.Dial("tcp", relay.String())
	if err != nil {
		t.Skip("cannot connect from 127.0.0.1:60001:", err)
	}
	defer p2.Close()
	_, _, raw := c.waitAttempt(3 * time.Second)
	want := mustHexTCP(t, tv26)
	if !bytes.Equal(raw[:8], want[:8]) || !bytes.Equal(raw[20:], want[20:]) {
		t.Fatalf("connectionattempt is not TV26 (transaction ID aside):\n got % x\nwant %s", raw, tv26)
	}
}

// TestTCPConnectDoesNotBlock: a slow dial leaves the control connection
// serving requests; a dial that times out is 447.
func TestTCPConnectDoesNotBlock(t *testing.T) {
	be := &fakeBackend{dialDelay: 700 * time.Millisecond}
	ts := startServer(t, "", "", be)
	echo := startTCPEcho(t)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.allocateTCP()
	c.permit(echo.addr())
	req := c.build(tt.TypeConnectRequest, true, tt.PeerAddress{Addr: echo.addr()})
	start := time.Now()
	if _, err := c.conn.Write(req.Raw); err != nil {
		t.Fatal(err)
	}
	c.expectCode(c.do(tt.TypeRefreshRequest), 0)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("refresh answered after %v, behind the dial", d)
	}
	resp := c.wait(req.TransactionID)
	c.expectCode(resp, 0)
	if d := time.Since(start); d < 700*time.Millisecond {
		t.Fatalf("connect answered after %v", d)
	}

	be.mu.Lock()
	be.dialDelay, be.dialErr = 0, gateway.NewError(gateway.ReasonTimeout, "fake: dial", errors.New("i/o timeout"))
	be.mu.Unlock()
	other := startTCPEcho(t)
	c.permit(other.addr())
	c.expectCode(c.do(tt.TypeConnectRequest, tt.PeerAddress{Addr: other.addr()}), stun.CodeConnTimeoutOrFailure)
}

// TestTCPOverTLS: control and data connections over TLS (the relay copies
// through buffers instead of splice).
func TestTCPOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeTestCert(t, dir)
	port := gatewaytest.FreePort(t)
	ts := startServer(t, fmt.Sprintf(`tls_listen = "127.0.0.1:%d"
  tls {
    cert_file = %q
    key_file  = %q
  }`, port, certFile, keyFile), "", nil)
	tlsAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	dialTLS := func() net.Conn {
		conn, err := tls.Dial("tcp", tlsAddr.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"stun.turn"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	echo := startTCPEcho(t)
	conn := dialTLS()
	c := &client{t: t, conn: conn, stream: true, fr: tt.NewFramer(conn, nil), user: "alice", pass: "s3cret", realm: "sixgate"}
	c.allocateTCP()
	c.permit(echo.addr())
	id := c.connectPeer(echo.addr())
	dc := dialTLS()
	m := stun.MustBuild(tt.TypeConnectionBindRequest, stun.TransactionID, id,
		stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce), stun.MessageIntegrity(c.key))
	if _, err := dc.Write(append(append([]byte(nil), m.Raw...), "early"...)); err != nil {
		t.Fatal(err)
	}
	c.expectCode(readMessage(t, dc), 0)
	roundTrip64K(t, dc, []byte("early"))
	dc.(*tls.Conn).CloseWrite()
	dc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := io.Copy(io.Discard, dc); err != nil || n != 0 {
		t.Fatalf("after half-close: %d, %v", n, err)
	}
	waitFor(t, 3*time.Second, "the access log", func() bool { return ts.sessions("connect", "ok") == 1 })
}

// writeTestCert writes a self-signed certificate for 127.0.0.1.
func writeTestCert(t testing.TB, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sixgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestTCPConfig checks the RFC 6062 settings.
func TestTCPConfig(t *testing.T) {
	n0, n70k, d := 0, 70000, "-1s"
	for _, c := range []Config{
		{MaxTCPConnections: &n0},
		{MaxTCPConnections: &n70k},
		{ConnectionBindTimeout: &d},
	} {
		if _, diags := c.compile(); !diags.HasErrors() {
			t.Errorf("%+v accepted", c)
		}
	}
	off, n := false, 3
	s, diags := (&Config{TCPRelays: &off, MaxTCPConnections: &n}).compile()
	if diags.HasErrors() || s.tcpRelays || s.maxTCPConns != 3 || s.bindTimeout != DefaultConnectionBindTimeout {
		t.Fatalf("%+v %v", s, diags)
	}
}
