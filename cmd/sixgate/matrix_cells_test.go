package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun"
	pionturn "github.com/pion/turn/v2"
	"golang.org/x/net/ipv4"

	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
	s6 "github.com/sixgate/sixgate/translate/socks6"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// The cells of TestMatrix, one function per frontend and capability. A
// cell returns its outcome; every wait in it is bounded.

// mxLoopback replaces an unspecified address (a proxy listening on any
// address) with 127.0.0.1, where the test's peers run.
func mxLoopback(a gateway.Addr) netip.AddrPort {
	ap := a.AddrPort()
	if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap.Port())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// ttlEcho runs a UDP echo server on 127.0.0.1 that answers "ttl=N payload"
// with the TTL the datagram arrived with (IP_RECVTTL), so a cell can see
// what the far end of the relay path sent.
func ttlEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ipv4.NewPacketConn(pc)
	if err := p.SetControlMessage(ipv4.FlagTTL, true); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, cm, from, err := p.ReadFrom(buf)
			if err != nil {
				return
			}
			ttl := -1
			if cm != nil {
				ttl = cm.TTL
			}
			pc.WriteTo(append([]byte(fmt.Sprintf("ttl=%d ", ttl)), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// parseTTLEcho splits a ttlEcho answer.
func parseTTLEcho(b []byte) (int, string, error) {
	s := string(b)
	head, rest, ok := strings.Cut(s, " ")
	if !ok || !strings.HasPrefix(head, "ttl=") {
		return 0, "", fmt.Errorf("not a ttl echo: %q", s)
	}
	ttl, err := strconv.Atoi(strings.TrimPrefix(head, "ttl="))
	return ttl, rest, err
}

// --- SOCKS 6 -------------------------------------------------------------

func mxS6Client(t *testing.T, topo *mxTopo) *bsocks6.Client {
	t.Helper()
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: topo.s6})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mxS6Stream(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	dst, err := gateway.ParseAddr(tg.tcpEcho)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mxS6Client(t, topo).Connect(mxCtx(t, 10*time.Second), dst, nil)
	if err != nil {
		return mxFailed(fmt.Errorf("connect: %w", err))
	}
	defer conn.Close()
	if err := echoRoundTrip(conn, "matrix stream over socks 6"); err != nil {
		return mxFailed(err)
	}
	return mxOK("CONNECT, echo")
}

// mxS6Assoc opens a mapped UDP association with the given leg-2 options.
func mxS6Assoc(t *testing.T, topo *mxTopo, remote gateway.StackOptions) (*bsocks6.UDPAssoc, error) {
	u, err := mxS6Client(t, topo).UDPAssociate(mxCtx(t, 10*time.Second), &bsocks6.UDPOptions{
		ReceiveFirst: true, Legs: s6.Legs{Remote: remote},
	})
	if err != nil {
		return nil, fmt.Errorf("udp associate: %w", err)
	}
	t.Cleanup(func() { u.Close() })
	return u, nil
}

// mxS6Echo sends msg to dst until an answer from dst comes back (five
// tries, a second each) and returns it.
func mxS6Echo(u *bsocks6.UDPAssoc, dst netip.AddrPort, msg []byte) ([]byte, error) {
	buf := make([]byte, 65536)
	var last error
	for range 5 {
		if err := u.WriteTo(msg, gateway.AddrFromAddrPort(dst)); err != nil {
			last = err
			continue
		}
		u.SetReadDeadline(time.Now().Add(time.Second))
		pkt, err := u.ReadFrom(buf)
		if err != nil {
			last = err
			continue
		}
		if pkt.Kind != gateway.PacketData {
			return nil, fmt.Errorf("an error message %+v instead of the echo", pkt.ICMP)
		}
		if mxLoopback(pkt.From) != dst {
			return nil, fmt.Errorf("a datagram from %v, want %v", pkt.From, dst)
		}
		return append([]byte(nil), buf[:pkt.N]...), nil
	}
	return nil, fmt.Errorf("no echo from %v: %v", dst, last)
}

func mxS6Datagram(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	u, err := mxS6Assoc(t, topo, gateway.StackOptions{})
	if err != nil {
		return mxFailed(err)
	}
	for i := range 10 {
		msg := bytes.Repeat([]byte{byte('a' + i)}, 100+i*130)
		got, err := mxS6Echo(u, tg.udpEcho, msg)
		if err != nil {
			return mxFailed(fmt.Errorf("datagram %d: %w", i, err))
		}
		if !bytes.Equal(got, msg) {
			return mxFailed(fmt.Errorf("datagram %d: %d bytes came back, want %d", i, len(got), len(msg)))
		}
	}
	return mxOK("UDP ASSOCIATE over %s, 10 echoes", u.Transport())
}

func mxS6Bind(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	ctx := mxCtx(t, 15*time.Second)
	b, err := mxS6Client(t, topo).Bind(ctx, gateway.Addr{}, nil)
	if err != nil {
		return mxFailed(fmt.Errorf("bind: %w", err))
	}
	defer b.Close()
	listen := mxLoopback(b.Addr)
	peerErr := make(chan error, 1)
	go func() { peerErr <- mxBindPeer(listen.String()) }()
	conn, err := b.Accept(ctx)
	if err != nil {
		return mxFailed(fmt.Errorf("accept on %v: %w (peer: %v)", listen, err, <-peerErr))
	}
	defer conn.Close()
	if conn.Peer.AddrPort().Addr().Unmap() != netip.MustParseAddr("127.0.0.1") {
		return mxFailed(fmt.Errorf("peer %v, want 127.0.0.1", conn.Peer))
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len("hello-from-peer"))
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hello-from-peer" {
		return mxFailed(fmt.Errorf("client read %q: %v", buf, err))
	}
	if _, err := conn.Write([]byte("hello-from-client")); err != nil {
		return mxFailed(err)
	}
	if err := <-peerErr; err != nil {
		return mxFailed(err)
	}
	return mxOK("BIND on %v, peer both ways", listen)
}

// mxBindPeer connects to a BIND's listening address, says hello and reads
// the client's hello.
func mxBindPeer(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("peer dial %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("hello-from-peer")); err != nil {
		return err
	}
	buf := make([]byte, len("hello-from-client"))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello-from-client" {
		return fmt.Errorf("peer read %q: %v", buf, err)
	}
	return nil
}

// mxS6Option opens an association asking for one leg-2 option and judges
// it: applied and (check) true is a pass; not echoed (unsupported) with
// the association still carrying datagrams is the documented refusal.
func mxS6Option(t *testing.T, topo *mxTopo, tg *mxTargets, name string, remote gateway.StackOptions,
	outcome func(*bsocks6.UDPAssoc) gateway.Outcome, check func(u *bsocks6.UDPAssoc) (string, error)) mxResult {
	u, err := mxS6Assoc(t, topo, remote)
	if err != nil {
		return mxFailed(err)
	}
	switch o := outcome(u); o {
	case gateway.Applied:
		detail, err := check(u)
		if err != nil {
			return mxFailed(err)
		}
		return mxOK("%s", detail)
	case gateway.Unsupported:
		if _, err := mxS6Echo(u, tg.udpEcho, []byte("still works")); err != nil {
			return mxFailed(fmt.Errorf("%s not echoed, and then: %w", name, err))
		}
		return mxRefusal("%s not echoed (unsupported); the association works", name).with("not echoed")
	default:
		return mxFailed(fmt.Errorf("%s %s", name, o))
	}
}

func mxS6TTL(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	const want = 9
	return mxS6Option(t, topo, tg, "TTL", gateway.StackOptions{TTL: gateway.Want[uint8](want)},
		func(u *bsocks6.UDPAssoc) gateway.Outcome { return u.Legs.Remote.TTL.Outcome },
		func(u *bsocks6.UDPAssoc) (string, error) {
			if v := u.Legs.Remote.TTL.Value; v != want {
				return "", fmt.Errorf("TTL echoed %d, want %d", v, want)
			}
			got, err := mxS6Echo(u, tg.ttlEcho, []byte("ttl probe"))
			if err != nil {
				return "", err
			}
			ttl, _, err := parseTTLEcho(got)
			if err != nil {
				return "", err
			}
			if ttl != want {
				return "", fmt.Errorf("TTL %d echoed as applied, but the far end saw TTL %d", want, ttl)
			}
			return fmt.Sprintf("leg-2 TTL %d applied, seen at the far end", ttl), nil
		})
}

func mxS6DF(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	return mxS6Option(t, topo, tg, "DF", gateway.StackOptions{DF: gateway.Want(true)},
		func(u *bsocks6.UDPAssoc) gateway.Outcome { return u.Legs.Remote.DF.Outcome },
		func(u *bsocks6.UDPAssoc) (string, error) {
			if !u.Legs.Remote.DF.Value {
				return "", errors.New("DF echoed off")
			}
			if _, err := mxS6Echo(u, tg.udpEcho, []byte("df")); err != nil {
				return "", err
			}
			return "leg-2 DF applied (far end: TestMatrixFeatures)", nil
		})
}

func mxS6EvenPort(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	want := gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}
	return mxS6Option(t, topo, tg, "Port Parity", gateway.StackOptions{PortParity: gateway.Want(want)},
		func(u *bsocks6.UDPAssoc) gateway.Outcome { return u.Legs.Remote.PortParity.Outcome },
		func(u *bsocks6.UDPAssoc) (string, error) {
			if v := u.Legs.Remote.PortParity.Value; v != want {
				return "", fmt.Errorf("port parity echoed %+v, want %+v", v, want)
			}
			port := u.Bound.Port
			if port%2 != 0 {
				return "", fmt.Errorf("relay port %d is odd", port)
			}
			if err := mxPortHeld(port + 1); err != nil {
				return "", err
			}
			if _, err := mxS6Echo(u, tg.udpEcho, []byte("even")); err != nil {
				return "", err
			}
			return fmt.Sprintf("relay port %d even, %d held", port, port+1), nil
		})
}

// mxPortHeld checks that a UDP port of this host is taken (a reservation
// holds it): binding it on 127.0.0.1 fails with EADDRINUSE.
func mxPortHeld(port uint16) error {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err == nil {
		pc.Close()
		return fmt.Errorf("the reserved port %d is free", port)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("binding the reserved port %d: %w", port, err)
	}
	return nil
}

// mxDenied is a destination no route of the matrix allows (no route
// matches it: denied), on a port a stream would reach.
const mxDenied = "192.0.2.1:80"

// mxS6Failure connects to dst and expects the Operation Reply code want.
func mxS6Failure(t *testing.T, topo *mxTopo, dst string, want s6.ReplyCode) mxResult {
	d, err := gateway.ParseAddr(dst)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := mxS6Client(t, topo).Connect(mxCtx(t, 15*time.Second), d, nil)
	if err == nil {
		conn.Close()
		return mxFailed(fmt.Errorf("CONNECT %s succeeded", dst))
	}
	var re *bsocks6.ReplyError
	if !errors.As(err, &re) {
		return mxFailed(fmt.Errorf("CONNECT %s: %w (no Operation Reply)", dst, err))
	}
	if re.Code != want {
		return mxFailed(fmt.Errorf("CONNECT %s: reply 0x%02x (%s), want 0x%02x (%s)", dst, uint8(re.Code), re.Code, uint8(want), want))
	}
	return mxOK("reply 0x%02x (%s)", uint8(re.Code), re.Code).with(fmt.Sprintf("0x%02x", uint8(re.Code)))
}

// mxClosed is a TCP port nothing listens on, picked just before it is
// used.
func mxClosed(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)) }

func mxS6Refused(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	return mxS6Failure(t, topo, mxClosed(t), s6.ReplyRefused)
}

func mxS6Denied(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	return mxS6Failure(t, topo, mxDenied, s6.ReplyNotAllowed)
}

// --- SOCKS 5 -------------------------------------------------------------

// mxS5Failure connects to dst with the codec and expects reply code want.
func mxS5Failure(t *testing.T, topo *mxTopo, dst string, want s5.ReplyCode) mxResult {
	conn, code, err := socks5Connect(t, topo.s5, dst, "", "")
	if err != nil {
		return mxFailed(fmt.Errorf("CONNECT %s: %w", dst, err))
	}
	conn.Close()
	if code != want {
		return mxFailed(fmt.Errorf("CONNECT %s: REP 0x%02x (%s), want 0x%02x (%s)", dst, uint8(code), code, uint8(want), want))
	}
	return mxOK("REP 0x%02x (%s)", uint8(code), code).with(fmt.Sprintf("0x%02x", uint8(code)))
}

func mxS5Refused(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	return mxS5Failure(t, topo, mxClosed(t), s5.RepConnRefused)
}

func mxS5Denied(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	return mxS5Failure(t, topo, mxDenied, s5.RepNotAllowed)
}

func mxS5Stream(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	out, code := curl(t, "--socks5", topo.s5, fmt.Sprintf("http://127.0.0.1:%d/matrix", tg.httpPort))
	if code != 0 || out != "upstream page /matrix" {
		return mxFailed(fmt.Errorf("curl exit %d: %q", code, out))
	}
	return mxOK("CONNECT (curl), HTTP GET")
}

func mxS5Datagram(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	_, port, _ := net.SplitHostPort(topo.s5)
	out, err := socks5upNodeUDP(t, "127.0.0.1", port, "127.0.0.1", strconv.Itoa(int(tg.udpEcho.Port())), "20")
	if err != nil || out != "UDP OK 20" {
		return mxFailed(fmt.Errorf("npm socks client: %q %v", out, err))
	}
	return mxOK("UDP ASSOCIATE (npm socks), 20 echoes")
}

func mxS5Bind(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	_, port, _ := net.SplitHostPort(topo.s5)
	cmd, sc := nodeClient(t, "bind", "127.0.0.1", port)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "BOUND ") {
		return mxFailed(fmt.Errorf("no BOUND line: %q", sc.Text()))
	}
	// The npm client reports an unspecified BND.ADDR (0.0.0.0: "the
	// proxy's address") as "undefined": it substitutes proxy.ipaddress,
	// which is unset when the proxy is given as host.
	host, port, err := net.SplitHostPort(strings.TrimPrefix(sc.Text(), "BOUND "))
	if host == "undefined" {
		host = "0.0.0.0"
	}
	bound, perr := netip.ParseAddrPort(net.JoinHostPort(host, port))
	if err != nil || perr != nil {
		return mxFailed(fmt.Errorf("BOUND line %q: %v %v", sc.Text(), err, perr))
	}
	listen := mxLoopback(gateway.AddrFromAddrPort(bound))
	peer, err := net.DialTimeout("tcp", listen.String(), 5*time.Second)
	if err != nil {
		return mxFailed(fmt.Errorf("peer dial %v: %w", listen, err))
	}
	defer peer.Close()
	peer.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("hello-from-client"))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello-from-client" {
		return mxFailed(fmt.Errorf("peer read %q: %v", buf, err))
	}
	peer.Write([]byte("hello-from-peer"))
	peer.(*net.TCPConn).CloseWrite()
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "PEER hello-from-peer FROM 127.0.0.1") {
		return mxFailed(fmt.Errorf("client saw %q", sc.Text()))
	}
	if err := cmd.Wait(); err != nil {
		return mxFailed(fmt.Errorf("npm socks client: %w", err))
	}
	return mxOK("BIND (npm socks) on %v, peer both ways", bound)
}

// --- TURN ----------------------------------------------------------------

func mxTURNDatagram(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv := topo.turn.String()
	cl, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: srv, TURNServerAddr: srv, Conn: conn,
		Username: "user", Password: "pass", Realm: "sixgate",
		LoggerFactory: logging.NewDefaultLoggerFactory(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Listen(); err != nil {
		return mxFailed(err)
	}
	relayConn, err := cl.Allocate()
	if err != nil {
		return mxFailed(fmt.Errorf("allocate: %w", err))
	}
	defer relayConn.Close()
	echo := net.UDPAddrFromAddrPort(tg.udpEcho)
	if err := cl.CreatePermission(echo); err != nil {
		return mxFailed(fmt.Errorf("create permission: %w", err))
	}
	buf := make([]byte, 2000)
	for i := range 10 {
		msg := bytes.Repeat([]byte{byte(i)}, 100+i*100)
		var n int
		var from net.Addr
		err := errors.New("no answer")
		for try := 0; try < 3 && err != nil; try++ {
			if _, werr := relayConn.WriteTo(msg, echo); werr != nil {
				return mxFailed(werr)
			}
			relayConn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, from, err = relayConn.ReadFrom(buf)
		}
		if err != nil {
			return mxFailed(fmt.Errorf("datagram %d: %w", i, err))
		}
		if from.String() != echo.String() || !bytes.Equal(buf[:n], msg) {
			return mxFailed(fmt.Errorf("datagram %d: %d bytes from %v", i, n, from))
		}
	}
	return mxOK("pion/turn Allocate (relay %v), permission, 10 echoes", relayConn.LocalAddr())
}

// mxAllocate sends an Allocate for UDP with attrs from a fresh 5-tuple and
// returns the result, or the error code (0 for success).
func mxAllocate(t *testing.T, topo *mxTopo, attrs ...stun.Setter) (*rawTURN, tt.AllocateResult, *stun.Message, stun.ErrorCode) {
	t.Helper()
	r := newRawTURN(t, topo.turn, "user", "pass")
	resp, code := r.do(tt.TypeAllocateRequest, append([]stun.Setter{tt.RequestedTransport{Protocol: tt.ProtoUDP}}, attrs...)...)
	if code != 0 {
		return r, tt.AllocateResult{}, resp, code
	}
	res, err := tt.ParseAllocateResponse(resp)
	if err != nil {
		t.Fatalf("allocate response: %v", err)
	}
	return r, res, resp, 0
}

// mxTURNRelays checks that an allocation carries a datagram to the UDP
// echo and back (Send and Data indications).
func mxTURNRelays(r *rawTURN, echo netip.AddrPort) error {
	if _, c := r.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: echo}); c != 0 {
		return fmt.Errorf("create permission: %d", c)
	}
	buf := make([]byte, 2000)
	for range 3 {
		send, err := tt.AppendSendIndication(nil, [12]byte{1, 2, 3}, echo, []byte("relayed"), false)
		if err != nil {
			return err
		}
		r.c.Write(send)
		deadline := time.Now().Add(2 * time.Second)
		for {
			r.c.SetReadDeadline(deadline)
			n, err := r.c.Read(buf)
			if err != nil {
				break
			}
			m := new(stun.Message)
			if tt.Decode(buf[:n], m) != nil || m.Type != tt.TypeDataIndication {
				continue
			}
			d, err := tt.ParseData(m)
			if err == nil && !d.HasICMP && d.Peer == echo && string(d.Data) == "relayed" {
				return nil
			}
		}
	}
	return fmt.Errorf("no Data indication from %v", echo)
}

func mxTURNDenied(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	r, _, _, code := mxAllocate(t, topo)
	if code != 0 {
		return mxFailed(fmt.Errorf("allocate: %d", code))
	}
	peer := netip.MustParseAddrPort(mxDenied)
	if _, code := r.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer}); code != stun.CodeForbidden {
		return mxFailed(fmt.Errorf("CreatePermission %v: %d, want 403", peer, code))
	}
	return mxOK("CreatePermission 403 (Forbidden)").with("403")
}

func mxTURNDF(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	r, res, resp, code := mxAllocate(t, topo, tt.DontFragment{})
	switch code {
	case 0:
		if err := mxTURNRelays(r, tg.udpEcho); err != nil {
			return mxFailed(err)
		}
		return mxOK("Allocate with DONT-FRAGMENT (relay %v); far end: TestMatrixFeatures", res.Relayed[0])
	case stun.CodeUnknownAttribute:
		var ua tt.UnknownAttributes
		if err := ua.GetFrom(resp); err != nil || len(ua) != 1 || ua[0] != stun.AttrDontFragment {
			return mxFailed(fmt.Errorf("420 without UNKNOWN-ATTRIBUTES DONT-FRAGMENT (%v %v)", ua, err))
		}
		// The same allocation without DF still works.
		r2, _, _, code := mxAllocate(t, topo)
		if code != 0 {
			return mxFailed(fmt.Errorf("420 for DF, then %d without it", code))
		}
		if err := mxTURNRelays(r2, tg.udpEcho); err != nil {
			return mxFailed(err)
		}
		return mxRefusal("420 UNKNOWN-ATTRIBUTES DONT-FRAGMENT; without DF the allocation works").with("420")
	}
	return mxFailed(fmt.Errorf("Allocate with DONT-FRAGMENT: %d", code))
}

func mxTURNEvenPort(t *testing.T, topo *mxTopo, tg *mxTargets) mxResult {
	_, res, _, code := mxAllocate(t, topo, tt.EvenPort{Reserve: true})
	switch code {
	case 0:
		port := res.Relayed[0].Port()
		if port%2 != 0 || res.ReservationToken == nil {
			return mxFailed(fmt.Errorf("relay %v token %v", res.Relayed, res.ReservationToken))
		}
		r2, res2, _, code := mxAllocate(t, topo, *res.ReservationToken)
		if code != 0 {
			return mxFailed(fmt.Errorf("Allocate with the RESERVATION-TOKEN: %d", code))
		}
		if got := res2.Relayed[0].Port(); got != port+1 {
			return mxFailed(fmt.Errorf("the RESERVATION-TOKEN gave port %d, want %d", got, port+1))
		}
		if err := mxTURNRelays(r2, tg.udpEcho); err != nil {
			return mxFailed(err)
		}
		return mxOK("EVEN-PORT R=1: relay port %d, RESERVATION-TOKEN took %d", port, port+1)
	case stun.CodeInsufficientCapacity:
		r2, _, _, code := mxAllocate(t, topo)
		if code != 0 {
			return mxFailed(fmt.Errorf("508 for EVEN-PORT, then %d without it", code))
		}
		if err := mxTURNRelays(r2, tg.udpEcho); err != nil {
			return mxFailed(err)
		}
		return mxRefusal("508 Insufficient Capacity; without EVEN-PORT the allocation works").with("508")
	}
	return mxFailed(fmt.Errorf("Allocate with EVEN-PORT: %d", code))
}
