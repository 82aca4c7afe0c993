package socks6

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// buildRuntime parses a configuration whose backends are socks6 blocks and
// builds it as sixgate does: via targets first, routes and policy live.
func buildRuntime(t *testing.T, src string) *gateway.Runtime {
	t.Helper()
	reg := gateway.NewRegistry()
	reg.Backend("socks6", Plugin())
	cfg, diags := gateway.ParseConfig("test.hcl", []byte(src), reg)
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	rt, err := gateway.Build(cfg, gateway.Deps{Log: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(rt.Retire)
	return rt
}

// TestBackendViaChain builds, from HCL, a backend "far" that reaches its
// upstream through backend "near": two sixgate processes in a chain. A
// CONNECT and a BIND go through the gateway's own router and policy.
func TestBackendViaChain(t *testing.T) {
	near := startUpstream(t, upstreamOpts{users: true})
	far := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	rt := buildRuntime(t, fmt.Sprintf(`
backend "socks6" "near" {
  server   = %q
  username = %q
  password = %q
}
backend "socks6" "far" {
  server   = %q
  username = %q
  password = %q
  via      = "near"
}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "far"
}
`, near.Addr, testUser, testPass, far.Addr, testUser, testPass))
	ctx := testCtx(t, 15*time.Second)

	dest := ipAddr("127.0.0.1", e.port)
	st, route, err := rt.Connect(ctx, &gateway.StreamRequest{Dest: dest, InitialData: []byte("hop")})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if route.BackendName != "far" || st.Peer != dest || !st.Bound.IP.IsLoopback() {
		t.Errorf("route %s, stream peer %v bound %v", route.BackendName, st.Peer, st.Bound)
	}
	got := make([]byte, 3)
	st.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(st.Conn, got); err != nil || string(got) != "hop" {
		t.Fatalf("initial data through the chain: %q, %v", got, err)
	}
	roundTrip(t, st.Conn, 64<<10)
	st.Conn.Close()

	// BIND through the chain: the far upstream listens; the peer is checked
	// by the route's policy.
	b, _, err := rt.Bind(ctx, &gateway.BindRequest{Bind: ipAddr("127.0.0.1", 0)})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	defer b.Close()
	peer, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ps, err := b.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer ps.Conn.Close()
	if want := gateway.AddrFromNet(peer.LocalAddr()); ps.Peer != want {
		t.Errorf("peer %v, want %v", ps.Peer, want)
	}
	exchange(t, ps.Conn, peer)

	// The near upstream carried streams to the far one only; each upstream
	// authenticated the gateway once and then used its session.
	if got := near.metric(authMetric("success")); got != 1 {
		t.Errorf("near upstream: %v credential authentications, want 1", got)
	}
	if got := far.metric(authMetric("success")); got != 1 {
		t.Errorf("far upstream: %v credential authentications, want 1", got)
	}
	if got := near.metric(authMetric("session")); got != 1 {
		t.Errorf("near upstream: %v session authentications, want 1", got)
	}
	farAddr := "dest=" + far.Addr
	waitLog(t, near, farAddr)
	if strings.Contains(near.Log(), "dest="+dest.String()) {
		t.Error("the near upstream connected to the destination itself")
	}
}

// waitLog waits until the upstream's log contains s.
func waitLog(t *testing.T, u *upstream, s string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(u.Log(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("upstream log lacks %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type policyFunc func(netip.AddrPort) error

func (f policyFunc) Allow(ap netip.AddrPort) error { return f(ap) }

func TestBackendPolicy(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	rt := buildRuntime(t, fmt.Sprintf(`
backend "socks6" "up" {
  server   = %q
  username = %q
  password = %q
}
backend "socks6" "local" {
  server   = %q
  username = %q
  password = %q
  resolve  = "local"
}
route {
  destinations = ["127.0.0.0/8", "localhost"]
  commands     = ["connect"]
  backend      = "up"
}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "up"
}
`, u.Addr, testUser, testPass, u.Addr, testUser, testPass))
	up := rt.Backends["up"].(*Backend)
	local := rt.Backends["local"].(*Backend)
	ctx := testCtx(t, 15*time.Second)
	m := gateway.Match{Command: gateway.CmdConnect}
	_, pol, err := rt.Router.Stream(m, ipAddr("127.0.0.1", e.port))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("allowed", func(t *testing.T) {
		st, err := up.Dial(ctx, &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", e.port), Policy: pol,
			Options: gateway.StackOptions{TTL: gateway.Want[uint8](9)}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		defer st.Conn.Close()
		if st.Options.TTL.Outcome != gateway.Applied || st.Options.TTL.Value != 9 {
			t.Errorf("TTL outcome %+v, want applied 9", st.Options.TTL)
		}
		roundTrip(t, st.Conn, 1000)
	})
	t.Run("denied IP sends nothing", func(t *testing.T) {
		before := up.Client().Stats().Requests
		_, err := up.Dial(ctx, &gateway.StreamRequest{Dest: ipAddr("10.9.8.7", 80), Policy: pol})
		wantReason(t, err, gateway.ReasonNotAllowed)
		if after := up.Client().Stats().Requests; after != before {
			t.Errorf("%d Requests sent for a denied destination", after-before)
		}
	})
	t.Run("refused maps back", func(t *testing.T) {
		_, err := up.Dial(ctx, &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", closedPort(t)), Policy: pol})
		wantReason(t, err, gateway.ReasonRefused)
	})
	t.Run("resolve local", func(t *testing.T) {
		st, err := local.Dial(ctx, &gateway.StreamRequest{Dest: gateway.Addr{Name: "localhost", Port: e.port}, Policy: pol,
			Options: gateway.StackOptions{HappyEyeballs: gateway.Want(true)}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		roundTrip(t, st.Conn, 1000)
		st.Conn.Close()
		if !st.Peer.IP.IsLoopback() || st.Peer.Port != e.port {
			t.Errorf("peer %v, want the resolved loopback address", st.Peer)
		}
		if st.Options.HappyEyeballs.Outcome != gateway.Unsupported {
			t.Errorf("Happy Eyeballs %v, want unsupported", st.Options.HappyEyeballs.Outcome)
		}
		// The upstream saw an address, not the name.
		waitLog(t, u, "dest="+st.Peer.String())
		before := local.Client().Stats().Requests
		deny := policyFunc(func(netip.AddrPort) error { return errors.New("nothing is allowed") })
		_, err = local.Dial(ctx, &gateway.StreamRequest{Dest: gateway.Addr{Name: "localhost", Port: e.port}, Policy: deny})
		wantReason(t, err, gateway.ReasonNotAllowed)
		if after := local.Client().Stats().Requests; after != before {
			t.Errorf("%d Requests sent for a name whose addresses are all denied", after-before)
		}
	})
	t.Run("remote name", func(t *testing.T) {
		st, err := up.Dial(ctx, &gateway.StreamRequest{Dest: gateway.Addr{Name: "localhost", Port: e.port}, Policy: pol})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		roundTrip(t, st.Conn, 1000)
		st.Conn.Close()
		waitLog(t, u, "dest=localhost:")
	})
	t.Run("listen with a denied peer", func(t *testing.T) {
		onlyV6 := policyFunc(func(ap netip.AddrPort) error {
			if ap.Addr().Is4() {
				return errors.New("no IPv4 peers")
			}
			return nil
		})
		b, err := up.Listen(ctx, &gateway.BindRequest{Bind: ipAddr("127.0.0.1", 0), Policy: onlyV6})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer b.Close()
		peer, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		_, err = b.Accept(ctx)
		wantReason(t, err, gateway.ReasonNotAllowed)
		peer.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := peer.Read(make([]byte, 1)); err == nil {
			t.Error("the denied peer's connection stayed open")
		}
	})
	t.Run("listen backlog", func(t *testing.T) {
		_, apol, err := rt.Router.Association(gateway.Match{Command: gateway.CmdBind})
		if err != nil {
			t.Fatal(err)
		}
		b, err := up.Listen(ctx, &gateway.BindRequest{Bind: ipAddr("127.0.0.1", 0), Policy: apol,
			Options: gateway.StackOptions{Backlog: gateway.Want[uint16](4)}})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer b.Close()
		if bl := b.Options().Backlog; bl.Outcome != gateway.Applied || bl.Value == 0 {
			t.Fatalf("backlog %+v", bl)
		}
		var wg sync.WaitGroup
		for range 2 {
			peer, err := net.Dial("tcp", b.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				peer.Write([]byte("x"))
			}()
		}
		for i := range 2 {
			st, err := b.Accept(ctx)
			if err != nil {
				t.Fatalf("Accept %d: %v", i, err)
			}
			st.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(st.Conn, make([]byte, 1)); err != nil {
				t.Errorf("peer %d data: %v", i, err)
			}
			st.Conn.Close()
		}
		wg.Wait()
	})
	t.Run("listen backlog skips a denied peer", func(t *testing.T) {
		var deniedPort atomic.Uint32
		pol := policyFunc(func(ap netip.AddrPort) error {
			if uint32(ap.Port()) == deniedPort.Load() {
				return errors.New("this peer is denied")
			}
			return nil
		})
		b, err := up.Listen(ctx, &gateway.BindRequest{Bind: ipAddr("127.0.0.1", 0), Policy: pol,
			Options: gateway.StackOptions{Backlog: gateway.Want[uint16](4)}})
		if err != nil {
			t.Fatalf("Listen: %v", err)
		}
		defer b.Close()
		bad, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		deniedPort.Store(uint32(bad.LocalAddr().(*net.TCPAddr).Port))
		time.Sleep(50 * time.Millisecond) // queued first
		good, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer good.Close()
		st, err := b.Accept(ctx)
		if err != nil {
			t.Fatalf("Accept: %v", err)
		}
		defer st.Conn.Close()
		if want := gateway.AddrFromNet(good.LocalAddr()); st.Peer != want {
			t.Fatalf("Accept returned %v, want the allowed peer %v", st.Peer, want)
		}
		exchange(t, st.Conn, good)
	})
	t.Run("associate", func(t *testing.T) {
		// The upstream has no UDP relay endpoint: datagrams go over the
		// control connection.
		a, err := up.Associate(ctx, &gateway.AssocRequest{})
		if err != nil {
			t.Fatalf("Associate: %v", err)
		}
		defer a.Close()
		if got := a.(*association).u.Transport(); got != UDPOverTCP {
			t.Fatalf("transport %s, want tcp", got)
		}
	})
	t.Run("close tears the session down", func(t *testing.T) {
		id := up.Client().SessionID()
		if id == nil {
			t.Fatal("no session to tear down")
		}
		up.Close()
		rep := rawExchange(t, u.Addr, &s6.Request{Command: s6.CmdNoop, Addr: ipAddr("0.0.0.0", 0), Options: s6.Options{SessionID: id}})
		if rep.Type != s6.AuthFailure || !rep.Options.SessionInvalid {
			t.Fatalf("session still valid after Close: %+v", rep)
		}
	})
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBackendHealth(t *testing.T) {
	port := closedPort(t)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	server := fmt.Sprintf("127.0.0.1:%d", port)
	b, err := New(&gateway.Env{Clock: clock}, "up", &Config{Server: server})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Health(); err != nil {
		t.Fatalf("Health before any dial: %v", err)
	}
	_, err = b.Dial(testCtx(t, 5*time.Second), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 80)})
	// The upstream refusing is not the destination refusing.
	wantReason(t, err, gateway.ReasonGeneral)
	herr := b.Health()
	if herr == nil || !strings.Contains(herr.Error(), "refused") {
		t.Fatalf("Health = %v, want the refused dial", herr)
	}
	clock.add(29 * time.Second)
	if b.Health() == nil {
		t.Fatal("Health forgot the failure before 30s")
	}
	clock.add(2 * time.Second)
	if err := b.Health(); err != nil {
		t.Fatalf("Health after 31s: %v", err)
	}

	// A successful dial clears it at once.
	_, err = b.Dial(testCtx(t, 5*time.Second), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 80)})
	if b.Health() == nil {
		t.Fatal("no failure recorded")
	}
	ln, err := net.Listen("tcp", server)
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	u := serveEcho(t, ln) // not SOCKS 6, but the dial itself succeeds
	_ = u
	_, err = b.Dial(testCtx(t, 5*time.Second), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 80)})
	if err == nil {
		t.Fatal("an echo server passed for a SOCKS 6 proxy")
	}
	if err := b.Health(); err != nil {
		t.Fatalf("Health after a successful dial: %v", err)
	}

	// After Close nothing is dialed.
	b.Close()
	_, err = b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 80)})
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Dial after Close: %v", err)
	}
}

func TestBackendTLSAndInitialDataBeyond16KiB(t *testing.T) {
	cert, key := writeCert(t)
	u := startUpstream(t, upstreamOpts{certFile: cert, keyFile: key})
	e := newEcho(t, "tcp4", "127.0.0.1:0")
	b, err := New(nil, "tls", &Config{Server: u.Addr, TLS: &TLSConfig{CAFile: cert, ServerName: "upstream.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	big := make([]byte, 20000)
	for i := range big {
		big[i] = byte(i)
	}
	st, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", e.port), InitialData: big})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer st.Conn.Close()
	got := make([]byte, len(big))
	st.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(st.Conn, got); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != big[i] {
			t.Fatalf("byte %d of the initial data differs", i)
		}
	}
	// Without the CA the upstream is refused.
	nb, err := New(nil, "tls", &Config{Server: u.Addr, TLS: &TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = nb.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", e.port)})
	wantReason(t, err, gateway.ReasonGeneral)
	if nb.Health() == nil {
		t.Error("a failed TLS handshake does not count against health")
	}
}
