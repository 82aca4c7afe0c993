package socks6

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

func TestConnectEcho(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e4 := newEcho(t, "tcp4", "127.0.0.1:0")
	e6 := newEcho(t, "tcp6", "[::1]:0")
	tests := []struct {
		name string
		dest gateway.Addr
	}{
		{"ipv4", ipAddr("127.0.0.1", e4.port)},
		{"ipv6", ipAddr("::1", e6.port)},
		{"domain name", gateway.Addr{Name: "localhost", Port: e4.port}},
	}
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := c.Connect(testCtx(t, 10*time.Second), tt.dest, nil)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer conn.Close()
			if !conn.Bound.IP.IsValid() || conn.Bound.Port == 0 {
				t.Errorf("Bound = %v, want the upstream's local endpoint", conn.Bound)
			}
			if conn.Peer != tt.dest {
				t.Errorf("Peer = %v, want %v", conn.Peer, tt.dest)
			}
			roundTrip(t, conn, 64<<10)
		})
	}
}

func TestConnectInitialDataAndFalseStart(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	for _, mode := range []AuthMode{Auth0RTT, AuthInBand} {
		t.Run(mode.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Auth: mode})
			initial := []byte("GET / HTTP/1.0\r\n")
			fs := []byte("Host: example\r\n\r\n")
			conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port),
				&ConnectOptions{InitialData: initial, FalseStart: fs})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer conn.Close()
			later := []byte("after the handshake")
			if _, err := conn.Write(later); err != nil {
				t.Fatal(err)
			}
			want := string(initial) + string(fs) + string(later)
			got := make([]byte, len(want))
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(conn, got); err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if string(got) != want {
				t.Fatalf("destination received %q, want %q (initial data first, then false start)", got, want)
			}
		})
	}
}

func TestConnectFailures(t *testing.T) {
	u := startUpstream(t, upstreamOpts{})
	c := mustClient(t, ClientConfig{Server: u.Addr})
	tests := []struct {
		name string
		dest gateway.Addr
		want gateway.Reason
		code s6.ReplyCode
	}{
		{"refused", ipAddr("127.0.0.1", closedPort(t)), gateway.ReasonRefused, s6.ReplyRefused},
		{"policy denied", ipAddr("192.0.2.1", 80), gateway.ReasonNotAllowed, s6.ReplyNotAllowed},
		{"policy denied name", gateway.Addr{Name: "denied.invalid", Port: 80}, gateway.ReasonNotAllowed, s6.ReplyNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Connect(testCtx(t, 10*time.Second), tt.dest, nil)
			wantReason(t, err, tt.want)
			re, ok := errorsAs[*ReplyError](err)
			if !ok || re.Code != tt.code {
				t.Fatalf("error %v: reply code %v, want %v", err, re, tt.code)
			}
		})
	}
}

// TestConnectTimeoutNetns runs the upstream in a namespace where
// 192.0.2.0/24 is routed into lo without an address there, so a SYN to it
// vanishes; the upstream's direct backend gives up after its dial_timeout
// and answers 0x09, which the client reports as a timeout.
func TestConnectTimeoutNetns(t *testing.T) {
	ns := newNetns(t)
	ns.ip("route", "add", "192.0.2.0/24", "dev", "lo")
	u := startUpstream(t, upstreamOpts{dialTimeout: "500ms", destinations: []string{"192.0.2.0/24"}, prefix: ns.prefix()})
	c := mustClient(t, ClientConfig{Server: u.Addr})
	var err error
	var elapsed time.Duration
	ns.do(func() {
		start := time.Now()
		var conn *Conn
		conn, err = c.Connect(testCtx(t, 10*time.Second), ipAddr("192.0.2.1", 80), nil)
		elapsed = time.Since(start)
		if conn != nil {
			conn.Close()
		}
	})
	wantReason(t, err, gateway.ReasonTimeout)
	if re, ok := errorsAs[*ReplyError](err); !ok || re.Code != s6.ReplyTimeout {
		t.Fatalf("error %v, want reply code 0x09", err)
	}
	if elapsed < 400*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("timed out after %v, want about the upstream's 500ms dial_timeout", elapsed)
	}
}

func TestAuthentication(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	tests := []struct {
		name       string
		user, pass string
		mode       AuthMode
		want       error // nil: success
	}{
		{"0-rtt good", testUser, testPass, Auth0RTT, nil},
		{"0-rtt bad", testUser, "wrong", Auth0RTT, ErrBadCredentials},
		{"in-band good", testUser, testPass, AuthInBand, nil},
		{"in-band bad", testUser, "wrong", AuthInBand, ErrBadCredentials},
		{"in-band unknown user", "mallory", "x", AuthInBand, ErrBadCredentials},
		{"no credentials", "", "", Auth0RTT, ErrNoAcceptableMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: u.Addr, Username: tt.user, Password: tt.pass, Auth: tt.mode})
			conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), nil)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				defer conn.Close()
				if tt.user != "" {
					if r, ok, _ := conn.AuthReply.Options.UserPassResult(); !ok || !r.OK() {
						t.Errorf("final Authentication Reply lacks the successful RFC 1929 reply: %+v", conn.AuthReply)
					}
				}
				roundTrip(t, conn, 1000)
				return
			}
			wantReason(t, err, gateway.ReasonAuthFailed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if st := c.Stats(); st.AuthFailures != 1 {
				t.Errorf("AuthFailures = %d, want 1", st.AuthFailures)
			}
		})
	}
	if n := u.metric(authMetric("success")); n != 2 {
		t.Errorf("upstream counted %v successful authentications, want 2", n)
	}
}

func TestSessionReuse(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true, WindowSize: 16})
	const n = 5
	var first []byte
	for i := range n {
		conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), nil)
		if err != nil {
			t.Fatalf("Connect %d: %v", i, err)
		}
		roundTrip(t, conn, 100)
		conn.Close()
		o := conn.AuthReply.Options
		if i == 0 {
			first = o.SessionID
			if first == nil || o.Window == nil {
				t.Fatalf("first reply opened no session/window: %+v", o)
			}
			continue
		}
		if !o.SessionOK || !o.IdempotenceAccepted || conn.Token == nil {
			t.Errorf("request %d: SessionOK=%v Accepted=%v token=%v", i, o.SessionOK, o.IdempotenceAccepted, conn.Token)
		}
	}
	if !bytes.Equal(c.SessionID(), first) {
		t.Errorf("session changed: %x, then %x", first, c.SessionID())
	}
	st := c.Stats()
	if st.SessionsOpened != 1 || st.TokensSpent != n-1 || st.Requests != n || st.SessionRecoveries != 0 {
		t.Errorf("stats %+v, want 1 session, %d tokens, %d requests", st, n-1, n)
	}
	// On the upstream's side: one Request carried credentials, the later
	// ones were authenticated by their Session ID alone.
	if got := u.metric(authMetric("success")); got != 1 {
		t.Errorf("upstream saw %v credential authentications, want 1", got)
	}
	if got := u.metric(authMetric("session")); got != n-1 {
		t.Errorf("upstream saw %v session authentications, want %d", got, n-1)
	}
}

func TestSessionInvalidRecovery(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true, WindowSize: 8})
	if _, err := c.Noop(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("Noop: %v", err)
	}
	old := c.SessionID()
	if old == nil {
		t.Fatal("Noop opened no session")
	}
	u.restart() // the new process knows no session
	conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), nil)
	if err != nil {
		t.Fatalf("Connect after the upstream forgot the session: %v", err)
	}
	roundTrip(t, conn, 1000)
	conn.Close()
	st := c.Stats()
	if st.SessionRecoveries != 1 || st.SessionsOpened != 2 {
		t.Errorf("stats %+v, want 1 recovery and 2 sessions", st)
	}
	if now := c.SessionID(); now == nil || bytes.Equal(now, old) {
		t.Errorf("session %x after recovery, old %x", now, old)
	}
	if got := u.metric(authMetric("session_invalid")); got != 1 {
		t.Errorf("upstream answered Session Invalid %v times, want 1", got)
	}
}

func TestSessionTeardown(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	for _, mode := range []AuthMode{Auth0RTT, AuthInBand} {
		t.Run(mode.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Auth: mode, Session: true})
			ctx := testCtx(t, 10*time.Second)
			if _, err := c.Noop(ctx); err != nil {
				t.Fatalf("Noop: %v", err)
			}
			id := c.SessionID()
			if err := c.Teardown(ctx); err != nil {
				t.Fatalf("Teardown: %v", err)
			}
			if c.SessionID() != nil {
				t.Fatal("session still known after Teardown")
			}
			// The proxy forgot it too.
			rep := rawExchange(t, u.Addr, &s6.Request{Command: s6.CmdNoop, Addr: ipAddr("0.0.0.0", 0),
				Options: s6.Options{SessionID: id}})
			if rep.Type != s6.AuthFailure || !rep.Options.SessionInvalid {
				t.Fatalf("old session still valid on the upstream: %+v", rep)
			}
			conn, err := c.Connect(ctx, ipAddr("127.0.0.1", e.port), nil)
			if err != nil {
				t.Fatalf("Connect after Teardown: %v", err)
			}
			conn.Close()
			if now := c.SessionID(); now == nil || bytes.Equal(now, id) {
				t.Errorf("no fresh session after Teardown: %x", now)
			}
			if st := c.Stats(); st.SessionsOpened != 2 {
				t.Errorf("SessionsOpened = %d, want 2", st.SessionsOpened)
			}
		})
	}
}

// rawExchange sends one Request with the codec alone and returns the first
// Authentication Reply.
func rawExchange(t testing.TB, server string, req *s6.Request) s6.AuthReply {
	t.Helper()
	conn, err := net.DialTimeout("tcp", server, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := s6.AppendRequest(nil, req, s6.Draft11)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	rep, err := s6.ReadAuthReply(conn, nil, s6.Draft11)
	if err != nil {
		t.Fatalf("raw exchange: %v", err)
	}
	return rep
}

func TestTokens(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true, WindowSize: 8})
	ctx := testCtx(t, 10*time.Second)
	rep, err := c.Noop(ctx)
	if err != nil {
		t.Fatalf("Noop: %v", err)
	}
	win := rep.Auth.Options.Window
	if win == nil || win.Size != 8 {
		t.Fatalf("Noop got window %+v, want 8 tokens", win)
	}
	dest := ipAddr("127.0.0.1", e.port)

	// The client spends the lowest token; the proxy accepts it once.
	conn, err := c.Connect(ctx, dest, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	conn.Close()
	if conn.Token == nil || *conn.Token != win.Base || !conn.AuthReply.Options.IdempotenceAccepted {
		t.Fatalf("token %v accepted=%v, want %d accepted", conn.Token, conn.AuthReply.Options.IdempotenceAccepted, win.Base)
	}
	// Spending it again is rejected (the client never reuses a token, so
	// the codec does it by hand).
	spent := *conn.Token
	raw := rawExchange(t, u.Addr, &s6.Request{Command: s6.CmdConnect, Addr: dest,
		Options: s6.Options{SessionID: c.SessionID(), Expenditure: &spent}})
	if raw.Type != s6.AuthFailure || !raw.Options.IdempotenceRejected {
		t.Fatalf("reused token: %+v, want Idempotence Rejected", raw)
	}

	// Spend the client's next token behind its back: its Request is then
	// rejected and retried once without a token.
	next := spent + 1
	raw = rawExchange(t, u.Addr, &s6.Request{Command: s6.CmdConnect, Addr: dest,
		Options: s6.Options{SessionID: c.SessionID(), Expenditure: &next}})
	if raw.Type != s6.AuthSuccess || !raw.Options.IdempotenceAccepted {
		t.Fatalf("raw spend of %d: %+v", next, raw)
	}
	conn, err = c.Connect(ctx, dest, nil)
	if err != nil {
		t.Fatalf("Connect with a token spent elsewhere: %v", err)
	}
	roundTrip(t, conn, 100)
	conn.Close()
	if conn.Token != nil {
		t.Errorf("retry carried token %d", *conn.Token)
	}
	st := c.Stats()
	if st.TokensRejected != 1 || st.TokensSpent != 1 {
		t.Errorf("stats %+v, want 1 token spent and 1 rejected", st)
	}
	// The rejection carried the window, so the next Request spends a token
	// the proxy accepts again.
	conn, err = c.Connect(ctx, dest, nil)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	conn.Close()
	if conn.Token == nil || !conn.AuthReply.Options.IdempotenceAccepted {
		t.Errorf("token after the rejection: %v", conn.Token)
	}
	if got := u.metric(authMetric("token_rejected")); got != 2 {
		t.Errorf("upstream rejected %v tokens, want 2", got)
	}
}

func TestBind(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass})
	ctx := testCtx(t, 10*time.Second)
	b, err := c.Bind(ctx, ipAddr("127.0.0.1", 0), nil)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	defer b.Close()
	if b.Backlog() || !b.Addr.IP.IsLoopback() || b.Addr.Port == 0 {
		t.Fatalf("binding %v backlog=%v", b.Addr, b.Backlog())
	}
	peer, err := net.Dial("tcp", b.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	conn, err := b.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer conn.Close()
	if want := gateway.AddrFromNet(peer.LocalAddr()); conn.Peer != want {
		t.Errorf("second reply names %v, want the peer %v", conn.Peer, want)
	}
	exchange(t, conn, peer)
	if _, err := b.Accept(ctx); err == nil {
		t.Error("a one-shot binding accepted a second peer")
	}
}

// exchange sends data both ways between two ends of a relayed stream.
func exchange(t testing.TB, a, b net.Conn) {
	t.Helper()
	a.SetDeadline(time.Now().Add(10 * time.Second))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	for _, dir := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "from the client"}, {b, a, "from the peer"}} {
		if _, err := dir.from.Write([]byte(dir.msg)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(dir.msg))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatalf("reading %q: %v", dir.msg, err)
		}
		if string(got) != dir.msg {
			t.Fatalf("got %q, want %q", got, dir.msg)
		}
	}
}

func TestBindBacklog(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true, WindowSize: 8})
	ctx := testCtx(t, 15*time.Second)
	b, err := c.Bind(ctx, ipAddr("127.0.0.1", 0), &BindOptions{Legs: s6.Legs{Remote: gateway.StackOptions{Backlog: gateway.Want[uint16](5)}}})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	defer b.Close()
	if bl := b.Legs.Remote.Backlog; !b.Backlog() || bl.Outcome != gateway.Applied || bl.Value == 0 {
		t.Fatalf("backlog not granted: %+v", bl)
	}
	const peers = 3
	var dialed []net.Conn
	for range peers {
		p, err := net.Dial("tcp", b.Addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		dialed = append(dialed, p)
	}
	byAddr := map[gateway.Addr]net.Conn{}
	for _, p := range dialed {
		byAddr[gateway.AddrFromNet(p.LocalAddr())] = p
	}
	for i := range peers {
		conn, err := b.Accept(ctx)
		if err != nil {
			t.Fatalf("Accept %d: %v", i, err)
		}
		defer conn.Close()
		p, ok := byAddr[conn.Peer]
		if !ok {
			t.Fatalf("Accept %d returned unknown peer %v", i, conn.Peer)
		}
		delete(byAddr, conn.Peer)
		exchange(t, conn, p)
	}
	if st := c.Stats(); st.SessionsOpened != 1 || st.Requests != 1+peers {
		t.Errorf("stats %+v, want one session and %d requests", st, 1+peers)
	}
}

func TestStackOptionsEcho(t *testing.T) {
	u := startUpstream(t, upstreamOpts{})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr})
	legs := s6.Legs{Remote: gateway.StackOptions{TTL: gateway.Want[uint8](42), TOS: gateway.Want[uint8](0x20)}}
	conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), &ConnectOptions{Legs: legs})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer conn.Close()
	r := conn.Legs.Remote
	if r.TTL.Outcome != gateway.Applied || r.TTL.Value != 42 {
		t.Errorf("TTL %+v, want applied 42", r.TTL)
	}
	if r.TOS.Outcome != gateway.Applied || r.TOS.Value != 0x20 {
		t.Errorf("TOS %+v, want applied 0x20", r.TOS)
	}
	var echoed int
	for _, so := range conn.OpReply.Options.Stack {
		if so.Leg == s6.LegRemote && (so.Kind == s6.StackTTL || so.Kind == s6.StackTOS) {
			echoed++
		}
	}
	if echoed != 2 {
		t.Errorf("Operation Reply stack options %+v, want TTL and TOS on leg 2", conn.OpReply.Options.Stack)
	}
	roundTrip(t, conn, 1000)
}

func TestTLS(t *testing.T) {
	cert, key := writeCert(t)
	u := startUpstream(t, upstreamOpts{users: true, certFile: cert, keyFile: key})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	pem, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true,
		TLS: &tls.Config{RootCAs: roots}})
	for i := range 2 {
		conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port),
			&ConnectOptions{InitialData: []byte("0rtt")})
		if err != nil {
			t.Fatalf("Connect %d over TLS: %v", i, err)
		}
		if _, ok := conn.Conn.(*tls.Conn); !ok {
			t.Errorf("connection is %T, want *tls.Conn", conn.Conn)
		}
		got := make([]byte, 4)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "0rtt" {
			t.Fatalf("initial data over TLS: %q, %v", got, err)
		}
		roundTrip(t, conn, 64<<10)
		conn.Close()
	}
	// BIND over TLS, on any address: the peer's data crosses the TLS leg.
	b, err := c.Bind(testCtx(t, 10*time.Second), gateway.Addr{}, nil)
	if err != nil {
		t.Fatalf("Bind over TLS: %v", err)
	}
	defer b.Close()
	peer, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(b.Addr.Port))))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	bc, err := b.Accept(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Accept over TLS: %v", err)
	}
	exchange(t, bc, peer)
	bc.Close()

	// A client that does not trust the certificate fails cleanly.
	bad := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, TLS: &tls.Config{}})
	_, err = bad.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), nil)
	wantReason(t, err, gateway.ReasonGeneral)
	if _, ok := errorsAs[*tls.CertificateVerificationError](err); !ok {
		t.Errorf("error %v does not carry the certificate problem", err)
	}
}

func TestConcurrentConnects(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true, WindowSize: 64})
	const n = 200
	ctx := testCtx(t, 60*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := c.Connect(ctx, ipAddr("127.0.0.1", e.port), &ConnectOptions{InitialData: []byte{byte(i)}})
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			msg := []byte{byte(i), 1, 2, 3}
			if _, err := conn.Write(msg[1:]); err != nil {
				errs <- err
				return
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(conn, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, msg) {
				errs <- errors.New("echo mismatch")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Connect: %v", err)
	}
	st := c.Stats()
	t.Logf("stats after %d parallel Connects: %+v", n, st)
	if st.SessionsOpened != 1 {
		t.Errorf("SessionsOpened = %d, want 1 shared session", st.SessionsOpened)
	}
	if st.TokensSpent == 0 {
		t.Error("no token was spent")
	}
	if got := u.metric(authMetric("success")); got != 1 {
		t.Errorf("upstream saw %v credential authentications, want 1", got)
	}
}

func TestDraft10(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true, dialect: "draft-10"})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	c := mustClient(t, ClientConfig{Server: u.Addr, Dialect: s6.Draft10, Username: testUser, Password: testPass, Session: true, WindowSize: 4})
	legs := s6.Legs{Remote: gateway.StackOptions{DF: gateway.Want(true), TTL: gateway.Want[uint8](33)}}
	for i := range 2 {
		conn, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", e.port), &ConnectOptions{Legs: legs, InitialData: []byte("-10")})
		if err != nil {
			t.Fatalf("Connect %d: %v", i, err)
		}
		r := conn.Legs.Remote
		if r.DF.Outcome != gateway.Applied || !r.DF.Value || r.TTL.Value != 33 {
			t.Errorf("DF %+v TTL %+v, want both applied", r.DF, r.TTL)
		}
		got := make([]byte, 3)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "-10" {
			t.Fatalf("initial data: %q, %v", got, err)
		}
		roundTrip(t, conn, 4096)
		conn.Close()
	}
	if st := c.Stats(); st.SessionsOpened != 1 || st.TokensSpent != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestNoopWithoutSession(t *testing.T) {
	u := startUpstream(t, upstreamOpts{})
	c := mustClient(t, ClientConfig{Server: u.Addr})
	rep, err := c.Noop(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("Noop: %v", err)
	}
	if rep.Auth.Type != s6.AuthSuccess || rep.Op.Code != s6.ReplySuccess || c.SessionID() != nil {
		t.Fatalf("Noop: %+v, session %x", rep, c.SessionID())
	}
	if err := c.Teardown(context.Background()); err != nil {
		t.Fatalf("Teardown without a session: %v", err)
	}
}
