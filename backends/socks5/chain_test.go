package socks5

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sixgate/sixgate/backends/socks5/dantetest"
	"github.com/sixgate/sixgate/gateway"
)

// These tests chain backends with `via`: a socks5 Backend whose server is
// reached through another socks5 Backend.

func TestChainConnectArmonThenDante(t *testing.T) {
	t.Parallel()
	echo := startTCPEcho(t)
	armon := startArmon(t, map[string]string{"alice": "s3cret"})
	dante := dantetest.Start(t, dantetest.Options{Auth: true})
	hop1 := newBackend(t, "hop1", Config{Server: armon.addr, Username: "alice", Password: "s3cret"}, Options{})
	hop2 := newBackend(t, "hop2", Config{Server: dante.Addr, Username: dantetest.User, Password: dantetest.Password}, Options{Via: hop1})
	initial := []byte("through two hops")
	st, err := hop2.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: echo.addr(), InitialData: initial, Policy: &denyPolicy{}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Conn.Close()
	echoRoundTrip(t, st.Conn, initial)
	if armon.conns.Load() != 1 {
		t.Errorf("armon got %d connections, want 1 (the stream to Dante)", armon.conns.Load())
	}
}

func TestChainBindArmonThenDante(t *testing.T) {
	t.Parallel()
	armon := startArmon(t, nil)
	dante := dantetest.Start(t, dantetest.Options{})
	hop1 := newBackend(t, "hop1", Config{Server: armon.addr}, Options{})
	hop2 := newBackend(t, "hop2", Config{Server: dante.Addr}, Options{Via: hop1})
	bindExchange(t, hop2, &denyPolicy{})
}

func TestChainUDPTwoDantes(t *testing.T) {
	t.Parallel()
	echo := gateway.AddrFromAddrPort(startUDPEcho(t))
	d1 := dantetest.Start(t, dantetest.Options{})
	d2 := dantetest.Start(t, dantetest.Options{Auth: true})
	hop1 := newBackend(t, "hop1", Config{Server: d1.Addr}, Options{})
	hop2 := newBackend(t, "hop2", Config{Server: d2.Addr, Username: dantetest.User, Password: dantetest.Password}, Options{Via: hop1})
	a, err := hop2.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{Policy: &denyPolicy{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	udpCheck(t, a, echo, 200)
}

func TestChainUDPViaArmonUnsupported(t *testing.T) {
	t.Parallel()
	armon := startArmon(t, nil)
	dante := dantetest.Start(t, dantetest.Options{})
	hop1 := newBackend(t, "hop1", Config{Server: armon.addr}, Options{})
	hop2 := newBackend(t, "hop2", Config{Server: dante.Addr}, Options{Via: hop1})
	_, err := hop2.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{})
	reasonIs(t, err, gateway.ReasonCommandNotSupported)
}

// streamOnly is a via backend that carries streams but no datagrams.
type streamOnly struct {
	gateway.Backend
	dials int
}

func (s *streamOnly) Dial(ctx context.Context, req *gateway.StreamRequest) (*gateway.Stream, error) {
	s.dials++
	return s.Backend.Dial(ctx, req)
}

func (s *streamOnly) Associate(context.Context, *gateway.AssocRequest) (gateway.Association, error) {
	return nil, gateway.NewError(gateway.ReasonCommandNotSupported, "stream-only: associate", errors.New("no datagrams here"))
}

func TestChainUDPViaStreamOnlyBackend(t *testing.T) {
	t.Parallel()
	armon := startArmon(t, nil)
	via := &streamOnly{Backend: newBackend(t, "hop1", Config{Server: armon.addr}, Options{})}
	hop2 := newBackend(t, "hop2", Config{Server: "127.0.0.1:9"}, Options{Via: via})
	_, err := hop2.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{})
	reasonIs(t, err, gateway.ReasonCommandNotSupported)
	if via.dials != 0 || armon.conns.Load() != 0 {
		t.Errorf("the request reached the network (%d via dials, %d armon connections)", via.dials, armon.conns.Load())
	}
	if hop2.Health() != nil {
		t.Errorf("a via without datagrams marks the server unhealthy: %v", hop2.Health())
	}
}

func TestChainServerUnreachableThroughVia(t *testing.T) {
	t.Parallel()
	armon := startArmon(t, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	gone := ln.Addr().String()
	ln.Close()
	hop1 := newBackend(t, "hop1", Config{Server: armon.addr}, Options{})
	hop2 := newBackend(t, "hop2", Config{Server: gone}, Options{Via: hop1})
	_, err := hop2.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: mustAddr(t, "192.0.2.1:80")})
	// hop1's server refused to reach hop2's server: a broken chain, not
	// the destination refusing.
	reasonIs(t, err, gateway.ReasonGeneral)
	if hop2.Health() == nil {
		t.Error("Health = nil")
	}
}
