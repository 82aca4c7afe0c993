package socks5

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// These tests run the backend against github.com/armon/go-socks5, a
// third-party SOCKS 5 server (CONNECT only), on 127.0.0.1.

// echoRoundTrip sends 64 KiB on a stream whose initial data was sent by
// Dial, half-closes, and checks that the echo is the initial data followed
// by the 64 KiB.
func echoRoundTrip(t *testing.T, c net.Conn, initial []byte) {
	t.Helper()
	payload := make([]byte, 64<<10)
	rand.Read(payload)
	c.SetDeadline(time.Now().Add(15 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(interface{ CloseWrite() error }).CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("write: %v", err)
	}
	want := append(append([]byte{}, initial...), payload...)
	if !bytes.Equal(got, want) {
		t.Fatalf("echo of %d bytes differs from the %d sent (initial data first: %v)", len(got), len(want), bytes.HasPrefix(got, initial))
	}
}

func TestArmonConnect(t *testing.T) {
	echo := startTCPEcho(t)
	for _, tt := range []struct {
		name  string
		creds map[string]string
		cfg   Config
	}{
		{"no auth", nil, Config{}},
		{"username/password", map[string]string{"alice": "s3cret"}, Config{Username: "alice", Password: "s3cret"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := startArmon(t, tt.creds)
			cfg := tt.cfg
			cfg.Server = srv.addr
			b := newBackend(t, "up", cfg, Options{})
			initial := []byte("initial data goes first")
			req := &gateway.StreamRequest{Dest: echo.addr(), InitialData: initial, Policy: &denyPolicy{}}
			req.Options.TTL = gateway.Want[uint8](9)
			st, err := b.Dial(testCtx(t, 10*time.Second), req)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Conn.Close()
			if st.Peer != echo.addr() {
				t.Errorf("Peer = %s, want %s", st.Peer, echo.addr())
			}
			if !st.Bound.IP.IsLoopback() || st.Bound.Port == 0 {
				t.Errorf("Bound = %s, want armon's outgoing loopback address", st.Bound)
			}
			if st.Options.TTL.Outcome != gateway.Unsupported {
				t.Errorf("TTL outcome %s, want unsupported", st.Options.TTL.Outcome)
			}
			echoRoundTrip(t, st.Conn, initial)
			if err := b.Health(); err != nil {
				t.Errorf("Health = %v", err)
			}
		})
	}
}

func TestArmonRefused(t *testing.T) {
	srv := startArmon(t, nil)
	b := newBackend(t, "up", Config{Server: srv.addr}, Options{})
	// A port nobody listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := gateway.AddrFromAddrPort(ln.Addr().(*net.TCPAddr).AddrPort())
	ln.Close()
	_, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: closed})
	reasonIs(t, err, gateway.ReasonRefused)
	if b.Health() != nil {
		t.Errorf("a refused destination marks the server unhealthy: %v", b.Health())
	}
}

func TestArmonPolicyDenied(t *testing.T) {
	srv := startArmon(t, nil)
	echo := startTCPEcho(t)
	b := newBackend(t, "up", Config{Server: srv.addr}, Options{})
	dest := echo.addr()
	p := &denyPolicy{deny: map[netip.AddrPort]bool{dest.AddrPort(): true}}
	_, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: dest, Policy: p})
	reasonIs(t, err, gateway.ReasonNotAllowed)
	if !errors.Is(err, errDenied) {
		t.Errorf("the policy's error is not in the chain: %v", err)
	}
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("the server got %d connections for a denied destination", n)
	}
	if n := echo.conns.Load(); n != 0 {
		t.Errorf("the destination got %d connections", n)
	}
	// IPv4-mapped addresses are judged unmapped.
	mapped := gateway.Addr{IP: netip.AddrFrom16(dest.IP.As16()), Port: dest.Port}
	_, err = b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: mapped, Policy: p})
	reasonIs(t, err, gateway.ReasonNotAllowed)
	if n := srv.conns.Load(); n != 0 {
		t.Errorf("the server got %d connections for a denied mapped destination", n)
	}
}

func TestArmonAuthFailures(t *testing.T) {
	srv := startArmon(t, map[string]string{"alice": "s3cret"})
	echo := startTCPEcho(t)
	for _, tt := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"wrong password", Config{Username: "alice", Password: "wrong"}, ErrBadCredentials},
		{"no credentials", Config{}, ErrNoAcceptableMethod},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1000, 0)}
			cfg := tt.cfg
			cfg.Server = srv.addr
			b := newBackend(t, "up", cfg, Options{Clock: clock})
			_, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: echo.addr()})
			reasonIs(t, err, gateway.ReasonAuthFailed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v is not %v", err, tt.want)
			}
			if h := b.Health(); !errors.Is(h, tt.want) {
				t.Errorf("Health = %v, want the failure", h)
			}
			clock.Add(31 * time.Second)
			if h := b.Health(); h != nil {
				t.Errorf("Health after 31s = %v, want nil", h)
			}
		})
	}
}

func TestArmonNameForwarded(t *testing.T) {
	srv := startArmon(t, nil)
	echo := startTCPEcho(t)
	b := newBackend(t, "up", Config{Server: srv.addr}, Options{})
	// armon resolves "localhost" itself (resolve = "remote" sends the name).
	dest := gateway.Addr{Name: "localhost", Port: echo.addr().Port}
	p := &denyPolicy{}
	st, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: dest, Policy: p})
	if err != nil {
		// localhost may resolve to ::1 first on some hosts, where the echo
		// does not listen; the point is that the name reached the server.
		reasonIs(t, err, gateway.ReasonRefused)
	} else {
		st.Conn.Close()
	}
	if len(p.asked) != 0 {
		t.Errorf("resolve = remote asked the policy about %v", p.asked)
	}
}

func TestArmonResolveLocal(t *testing.T) {
	srv := startArmon(t, nil)
	echo := startTCPEcho(t)
	denied := netip.MustParseAddr("127.0.0.2")
	res := staticResolver{"echo.test": {denied, echo.addr().IP}}
	b := newBackend(t, "up", Config{Server: srv.addr, Resolve: "local"}, Options{Resolver: res})
	p := &denyPolicy{deny: map[netip.AddrPort]bool{netip.AddrPortFrom(denied, 0): true}}
	st, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{
		Dest: gateway.Addr{Name: "echo.test", Port: echo.addr().Port}, Policy: p, InitialData: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if st.Peer != echo.addr() {
		t.Errorf("Peer = %s, want the allowed address %s", st.Peer, echo.addr())
	}
	echoRoundTrip(t, st.Conn, []byte("x"))
	st.Conn.Close()
	if srv.conns.Load() != 1 {
		t.Errorf("the server got %d connections, want 1 (the denied address is never asked for)", srv.conns.Load())
	}
	// A name with only denied addresses never reaches the server.
	res["denied.test"] = []netip.Addr{denied}
	_, err = b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: gateway.Addr{Name: "denied.test", Port: 80}, Policy: p})
	reasonIs(t, err, gateway.ReasonNotAllowed)
	_, err = b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: gateway.Addr{Name: "unknown.test", Port: 80}, Policy: p})
	reasonIs(t, err, gateway.ReasonHostUnreachable)
	if srv.conns.Load() != 1 {
		t.Errorf("the server got %d connections, want 1", srv.conns.Load())
	}
}

func TestArmonUnsupportedCommands(t *testing.T) {
	srv := startArmon(t, nil)
	b := newBackend(t, "up", Config{Server: srv.addr}, Options{})
	_, err := b.Listen(testCtx(t, 10*time.Second), &gateway.BindRequest{})
	reasonIs(t, err, gateway.ReasonCommandNotSupported)
	_, err = b.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{})
	reasonIs(t, err, gateway.ReasonCommandNotSupported)
}

func TestServerUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	b := newBackend(t, "up", Config{Server: addr}, Options{})
	_, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: mustAddr(t, "192.0.2.1:80")})
	// Not "connection refused": the client's destination did not refuse.
	reasonIs(t, err, gateway.ReasonGeneral)
	if b.Health() == nil {
		t.Error("Health = nil after the server refused")
	}
}
