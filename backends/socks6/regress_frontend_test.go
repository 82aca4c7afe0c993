package socks6

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Regression tests for problems this package's tests found in the SOCKS 6
// frontend.

// TestFrontendBacklogSessionExpiry: a session whose only activity is a
// backlog BIND's control connection expires after session_idle_timeout
// (lastUsed is refreshed only by Requests, not by live connections). The
// next Request of the session (the Accept) gets Session Invalid, the
// listener is closed, but the control connection is left open, so the
// client cannot tell its listener is gone. Either the session must stay
// alive while its control connection is open, or the proxy must close the
// control connection when it drops the session.
func TestFrontendBacklogSessionExpiry(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true, limits: `  session_idle_timeout = "1s"`})
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true})
	ctx := testCtx(t, 20*time.Second)
	b, err := c.Bind(ctx, ipAddr("127.0.0.1", 0), &BindOptions{Legs: s6.Legs{Remote: gateway.StackOptions{Backlog: gateway.Want[uint16](2)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	time.Sleep(1500 * time.Millisecond) // longer than session_idle_timeout; the control connection is open
	peer, err := net.Dial("tcp", b.Addr.String())
	if err != nil {
		t.Fatalf("listener gone while its control connection is open: %v", err)
	}
	defer peer.Close()
	conn, acceptErr := b.Accept(ctx)
	if acceptErr == nil {
		conn.Close()
		return // the session was kept alive: fixed
	}
	b.conn.SetReadDeadline(time.Now().Add(time.Second))
	_, rerr := b.conn.Read(make([]byte, 1))
	if errors.Is(rerr, io.EOF) {
		return // the proxy closed the control connection with the session: fixed
	}
	t.Fatalf("Accept: %v; control connection still open (read: %v)", acceptErr, rerr)
}

// sourceConn is an unconnected UDP socket used as a client's datagram
// channel: Write sends to the relay endpoint, Read returns what comes from
// anywhere and records where it came from.
type sourceConn struct {
	*net.UDPConn
	relay netip.AddrPort
	mu    sync.Mutex
	from  []netip.AddrPort
}

func (c *sourceConn) Write(b []byte) (int, error) { return c.UDPConn.WriteToUDPAddrPort(b, c.relay) }

func (c *sourceConn) Read(b []byte) (int, error) {
	n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
	if err == nil {
		c.mu.Lock()
		c.from = append(c.from, from)
		c.mu.Unlock()
	}
	return n, err
}

// TestFrontendWildcardRelaySource: with udp_listen on a wildcard address
// ("0.0.0.0:port", which Go binds as a dual-stack [::] socket) the relay
// must answer an IPv4 client from the address the client sent to. It
// answers from the kernel's default source instead (127.0.0.1 here, the
// client sent to 127.0.0.2), so a client with a connected socket, or behind
// a NAT or stateful firewall, never receives anything although the mapping
// is confirmed.
//
// Cause: frontends/socks6/endpoint_linux.go writeTo builds an IPV6_PKTINFO
// control message with the IPv4-mapped local address on the dual-stack
// socket, and golang.org/x/net/ipv6 ControlMessage.Marshal silently omits
// IPV6_PKTINFO when Src is IPv4 (or IPv4-mapped). For an IPv4 destination
// on an AF_INET6 socket Linux takes the IPv4 path (udp_sendmsg), which
// accepts SOL_IP control messages: writeTo should send IP_PKTINFO
// (ipi_spec_dst = the local address) when the client is IPv4, whatever the
// socket's family.
func TestFrontendWildcardRelaySource(t *testing.T) {
	relayPort := gatewaytest.FreePort(t)
	up := startUpstream(t, upstreamOpts{users: true, udpListen: fmt.Sprintf("0.0.0.0:%d", relayPort)})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	relay := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(relayPort))
	var sc *sourceConn
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Server: relay.String(), ReceiveFirst: true,
		DialPacket: func(context.Context, string) (net.Conn, error) {
			pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			sc = &sourceConn{UDPConn: pc, relay: relay}
			return sc, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	echoDatagrams(t, u, echo.gatewayAddr(), 3)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, from := range sc.from {
		if from != relay {
			t.Fatalf("the relay answered from %v; the client sent to %v", from, relay)
		}
	}
}

// TestFrontendWildcardRelayClientTTL: with udp_listen on a wildcard
// address, TTL on the client–proxy leg is echoed as applied (9) but the
// relay's datagrams to an IPv4 client leave with the default TTL (64).
//
// Cause: the same writeTo sends IPV6_HOPLIMIT (and IPV6_TCLASS for TOS)
// control messages on the dual-stack socket; Linux ignores SOL_IPV6
// control messages other than IPV6_PKTINFO for an IPv4 destination. For an
// IPv4 client writeTo should send IP_TTL and IP_TOS.
func TestFrontendWildcardRelayClientTTL(t *testing.T) {
	relayPort := gatewaytest.FreePort(t)
	up := startUpstream(t, upstreamOpts{users: true, udpListen: fmt.Sprintf("0.0.0.0:%d", relayPort)})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	var tc *ttlConn
	legs := s6.Legs{Client: gateway.StackOptions{TTL: gateway.Want[uint8](9)}}
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Legs: legs, ReceiveFirst: true,
		Server: fmt.Sprintf("127.0.0.1:%d", relayPort),
		DialPacket: func(ctx context.Context, relay string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "udp4", relay)
			if err != nil {
				return nil, err
			}
			tc = &ttlConn{UDPConn: conn.(*net.UDPConn)}
			tc.p = ipv4.NewPacketConn(tc.UDPConn)
			if err := tc.p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
				conn.Close()
				return nil, err
			}
			return tc, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if ct := u.Legs.Client.TTL; ct.Outcome != gateway.Applied || ct.Value != 9 {
		t.Fatalf("client leg ttl %+v", ct)
	}
	echoDatagrams(t, u, echo.gatewayAddr(), 3)
	if got := tc.ttl.Load(); got != 9 {
		t.Fatalf("the relay's datagrams carry TTL %d; the proxy echoed TTL 9 as applied", got)
	}
}

// TestFrontendWildcardDTLSSource: with dtls_listen on a wildcard address
// the DTLS endpoint answers from the kernel's default source address, not
// the one the client sent to (dtlsPeer.Write uses WriteToUDPAddrPort with
// no source), so the handshake of a client that reached another local
// address (127.0.0.2 here) never completes and the client falls back to the
// control connection. The DTLS endpoint needs the same per-peer source
// address as the UDP one (IP_PKTINFO / IPV6_PKTINFO, remembered per peer).
func TestFrontendWildcardDTLSSource(t *testing.T) {
	cert, key := writeCert(t)
	dtlsPort := gatewaytest.FreePort(t)
	up := startUpstream(t, upstreamOpts{users: true, certFile: cert, keyFile: key})
	// The harness's dtls option binds 127.0.0.1; rebind on the wildcard.
	up.opts.dtls = false
	cfg := strings.Replace(up.config(), "  tls {", fmt.Sprintf("  dtls_listen = \"0.0.0.0:%d\"\n  tls {", dtlsPort), 1)
	if err := os.WriteFile(up.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	up.restart()
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass,
		TLS: &tls.Config{RootCAs: caPool(t, cert)}})
	u, err := c.UDPAssociate(testCtx(t, 15*time.Second), &UDPOptions{Over: UDPOverDTLS, ReceiveFirst: true,
		Server: fmt.Sprintf("127.0.0.2:%d", dtlsPort)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	echoDatagrams(t, u, echo.gatewayAddr(), 3)
	if got := u.Transport(); got != UDPOverDTLS {
		t.Fatalf("transport %s: the DTLS handshake through 127.0.0.2 failed", got)
	}
}
