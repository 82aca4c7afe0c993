package main

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// echoAddr runs a UDP echo server on 127.0.0.1 and returns its address.
func echoAddr(t *testing.T) netip.AddrPort {
	return udpEcho(t, "127.0.0.1:0").LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestSOCKS5UDPWithNodeClient(t *testing.T) {
	echo := echoAddr(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	startGateway(t, socks5Config(authPort, anonPort))
	for _, c := range []struct {
		port int
		auth []string
	}{{anonPort, nil}, {authPort, []string{"alice", "s3cret"}}} {
		args := append([]string{"127.0.0.1", fmt.Sprint(c.port), "127.0.0.1", fmt.Sprint(echo.Port()), "200"}, c.auth...)
		out, err := socks5upNodeUDP(t, args...)
		if err != nil || out != "UDP OK 200" {
			t.Fatalf("node client via port %d: %q %v", c.port, out, err)
		}
	}
}

// s5UDP is a minimal SOCKS 5 UDP ASSOCIATE for edge cases, on the codec.
type s5UDP struct {
	ctrl  net.Conn
	pc    *net.UDPConn
	relay netip.AddrPort
}

func openS5UDP(t *testing.T, proxy string, userPass ...string) *s5UDP {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s5Auth(t, c, userPass...)
	b, _ := s5.Request{Command: s5.CmdUDPAssociate, Dest: gateway.Addr{IP: netip.IPv4Unspecified()}}.Append(nil)
	c.Write(b)
	rep, err := s5.ReadReply(c)
	if err != nil || rep.Code != s5.RepSucceeded {
		t.Fatalf("udp associate: %v %v", rep.Code, err)
	}
	c.SetDeadline(time.Time{})
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &s5UDP{ctrl: c, pc: pc, relay: rep.Bound.AddrPort()}
}

// s5Auth negotiates no authentication, or RFC 1929 with userPass.
func s5Auth(t *testing.T, c net.Conn, userPass ...string) {
	t.Helper()
	want := s5.MethodNoAuth
	if len(userPass) == 2 {
		want = s5.MethodUserPass
	}
	b, _ := s5.Greeting{Methods: []s5.Method{want}}.Append(nil)
	c.Write(b)
	if m, err := s5.ReadMethodSelection(c); err != nil || m != want {
		t.Fatalf("method %v %v", m, err)
	}
	if want == s5.MethodUserPass {
		b, _ = s5.UserPassRequest{Username: userPass[0], Password: userPass[1]}.Append(nil)
		c.Write(b)
		if st, err := s5.ReadUserPassReply(c); err != nil || st != s5.UserPassSuccess {
			t.Fatalf("auth %d %v", st, err)
		}
	}
}

func (u *s5UDP) send(t *testing.T, from *net.UDPConn, frag byte, dst netip.AddrPort, payload string) {
	t.Helper()
	b, err := s5.UDPHeader{Frag: frag, Addr: gateway.AddrFromAddrPort(dst)}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.WriteToUDPAddrPort(append(b, payload...), u.relay); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next payload within d, or "" on timeout.
func (u *s5UDP) recv(t *testing.T, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 65536)
	u.pc.SetReadDeadline(time.Now().Add(d))
	n, _, err := u.pc.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ""
	}
	_, payload, err := s5.ParseUDPHeader(buf[:n])
	if err != nil {
		t.Fatalf("bad header from the relay: %v", err)
	}
	return string(payload)
}

// TestSOCKS5UDPEdgeCases: the client's first datagram fixes its port;
// datagrams from another port or address, and fragments, are dropped and
// counted; the association dies with its TCP connection.
func TestSOCKS5UDPEdgeCases(t *testing.T) {
	echo := echoAddr(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g := startGateway(t, socks5Config(authPort, anonPort))
	u := openS5UDP(t, fmt.Sprintf("127.0.0.1:%d", anonPort))
	u.send(t, u.pc, 0, echo, "first")
	if got := u.recv(t, 3*time.Second); got != "first" {
		t.Fatalf("echo %q", got)
	}
	// Another port of the same host: not the client's mapped endpoint.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	u.send(t, other, 0, echo, "intruder-port")
	// Another address entirely.
	foreign, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	u.send(t, foreign, 0, echo, "intruder-ip")
	u.send(t, u.pc, 1, echo, "fragment")
	u.send(t, u.pc, 0, echo, "second")
	if got := u.recv(t, 3*time.Second); got != "second" {
		t.Fatalf("after the dropped datagrams the echo was %q", got)
	}
	if got := u.recv(t, 300*time.Millisecond); got != "" {
		t.Fatalf("a dropped datagram was relayed: %q", got)
	}
	waitFor(t, "drop counters", func() bool {
		return g.metric(`sixgate_dropped_datagrams_total{frontend="anon",reason="foreign_source"}`) == 2 &&
			g.metric(`sixgate_dropped_datagrams_total{frontend="anon",reason="fragment"}`) == 1
	})
	// The association dies with its TCP connection: nothing more relayed.
	u.ctrl.Close()
	waitFor(t, "association closed", func() bool {
		return g.metric(`sixgate_associations_active{frontend="anon",kind="udp"}`) == 0
	})
	u.send(t, u.pc, 0, echo, "after close")
	if got := u.recv(t, 500*time.Millisecond); got != "" {
		t.Fatalf("relayed after the control connection closed: %q", got)
	}
}
