package socks6

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"golang.org/x/net/ipv4"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// udpPeer is a UDP socket on the test's side of the world: an echo server
// (every datagram goes back to its source) or a sink that only records.
type udpPeer struct {
	pc   *net.UDPConn
	addr netip.AddrPort
	echo bool
	got  atomic.Int64

	mu   sync.Mutex
	last []byte
	wg   sync.WaitGroup
}

func newUDPPeer(t testing.TB, addr string, echo bool) *udpPeer {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &udpPeer{pc: pc.(*net.UDPConn), echo: echo}
	ap := p.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	p.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := p.pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			p.got.Add(1)
			p.mu.Lock()
			p.last = append(p.last[:0], buf[:n]...)
			p.mu.Unlock()
			if p.echo {
				p.pc.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() {
		p.pc.Close()
		p.wg.Wait()
	})
	return p
}

func (p *udpPeer) gatewayAddr() gateway.Addr { return gateway.AddrFromAddrPort(p.addr) }

// payloadSize gives the i-th of the test datagrams a size in 1..1400.
func payloadSize(i int) int { return (i*337)%1400 + 1 }

// echoDatagrams sends n datagrams of 1..1400 bytes to the echo server one at
// a time and checks each comes back intact from the echo server.
func echoDatagrams(t *testing.T, u *UDPAssoc, echo gateway.Addr, n int) {
	t.Helper()
	buf := make([]byte, 2048)
	var first []byte
	for i := range n {
		data := make([]byte, payloadSize(i))
		rand.Read(data)
		if i == 0 {
			first = data
		}
		var pkt gateway.Packet
		for attempt := 0; ; attempt++ {
			if err := u.WriteTo(data, echo); err != nil && attempt == 0 && i > 0 {
				t.Fatalf("datagram %d over %s: WriteTo: %v", i, u.Transport(), err)
			}
			u.SetReadDeadline(time.Now().Add(2 * time.Second))
			var err error
			pkt, err = u.ReadFrom(buf)
			// The client resends the first datagram until the association
			// is confirmed (every 25 ms at first), so a slow confirmation
			// brings its echo back more than once: skip the extra ones.
			for extra := 0; err == nil && i > 0 && extra < 8 && bytes.Equal(buf[:pkt.N], first); extra++ {
				pkt, err = u.ReadFrom(buf)
			}
			if err == nil {
				break
			}
			// Only the first datagram may be lost: it is sent while the
			// association is being mapped (and may fall back to TCP).
			if i > 0 || attempt > 3 {
				t.Fatalf("datagram %d (%d bytes) over %s: ReadFrom: %v (stats %+v)", i, len(data), u.Transport(), err, u.Stats())
			}
		}
		if pkt.Kind != gateway.PacketData {
			t.Fatalf("datagram %d: packet kind %d (%+v)", i, pkt.Kind, pkt.ICMP)
		}
		if pkt.From != echo {
			t.Fatalf("datagram %d: from %v, want the echo server %v", i, pkt.From, echo)
		}
		if !bytes.Equal(buf[:pkt.N], data) {
			t.Fatalf("datagram %d: %d bytes came back, %d sent, or they differ", i, pkt.N, len(data))
		}
	}
	u.SetReadDeadline(time.Time{})
}

// echoBatched sends n datagrams to the echo server in bursts of 10, each
// burst held with WriteToLater and sent by Flush, reads them with
// ServePackets, and checks that each comes back intact. Over plain UDP the
// burst must be held until Flush.
func echoBatched(t *testing.T, u *UDPAssoc, echo gateway.Addr, n int) {
	t.Helper()
	want := make(map[string]bool, n)
	sent := make(map[string]bool, n)
	got := make(chan string, n+8)
	served := make(chan error, 1)
	pool := gateway.NewBufPool(16, 2048)
	go func() {
		l := pool.BatchLender()
		served <- u.ServePackets(l.Get, l.Put, func(i int, pkt gateway.Packet) {
			if pkt.Kind != gateway.PacketData || pkt.From != echo {
				got <- fmt.Sprintf("packet kind %d from %s", pkt.Kind, pkt.From)
				return
			}
			got <- string(l.Buf(i)[16 : 16+pkt.N])
		})
	}()
	for i := 0; i < n; i += 10 {
		for j := i; j < min(i+10, n); j++ {
			data := make([]byte, payloadSize(j))
			rand.Read(data)
			want[string(data)] = true
			sent[string(data)] = true
			if err := u.WriteToLater(data, echo); err != nil {
				t.Fatalf("datagram %d over %s: WriteToLater: %v", j, u.Transport(), err)
			}
		}
		if u.Transport() == UDPOverUDP {
			u.wmu.Lock()
			held := u.held != nil && u.held.Len() > 0
			u.wmu.Unlock()
			if !held {
				t.Fatal("over udp, WriteToLater sent at once")
			}
		}
		u.Flush()
		time.Sleep(2 * time.Millisecond)
	}
	timeout := time.After(5 * time.Second)
	for len(want) > 0 {
		select {
		case p := <-got:
			if !want[p] {
				if sent[p] {
					// A second echo of an association's first datagram,
					// which the client resends until it is confirmed.
					continue
				}
				t.Fatalf("over %s: an answer that was not sent (%d bytes: %.40q)", u.Transport(), len(p), p)
			}
			delete(want, p)
		case err := <-served:
			t.Fatalf("ServePackets ended: %v", err)
		case <-timeout:
			t.Fatalf("over %s: %d of %d datagrams did not come back (stats %+v)", u.Transport(), len(want), n, u.Stats())
		}
	}
	u.SetReadDeadline(time.Now())
	if err := <-served; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ServePackets after the read deadline = %v", err)
	}
	u.SetReadDeadline(time.Time{})
}

// caPool returns a pool trusting the certificate in certFile.
func caPool(t testing.TB, certFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no certificate")
	}
	return pool
}

// TestUDPAssociateEcho sends 200 datagrams through the upstream over each
// transport, forced or reached by falling back.
func TestUDPAssociateEcho(t *testing.T) {
	cert, key := writeCert(t)
	withUDP := startUpstream(t, upstreamOpts{users: true, udp: true})
	noUDP := startUpstream(t, upstreamOpts{users: true})
	withDTLS := startUpstream(t, upstreamOpts{users: true, certFile: cert, keyFile: key, dtls: true})
	echo4 := newUDPPeer(t, "127.0.0.1:0", true)
	echo6 := newUDPPeer(t, "[::1]:0", true)
	tlsCfg := func() ClientConfig {
		return ClientConfig{Server: withDTLS.Addr, Username: testUser, Password: testPass,
			TLS: &tls.Config{RootCAs: caPool(t, cert)}}
	}
	tests := []struct {
		name string
		cfg  ClientConfig
		o    UDPOptions
		want UDPTransport
	}{
		{"udp", ClientConfig{Server: withUDP.Addr, Username: testUser, Password: testPass}, UDPOptions{}, UDPOverUDP},
		{"tcp forced", ClientConfig{Server: withUDP.Addr, Username: testUser, Password: testPass},
			UDPOptions{Over: UDPOverTCP}, UDPOverTCP},
		{"tcp fallback, udp_listen off", ClientConfig{Server: noUDP.Addr, Username: testUser, Password: testPass},
			UDPOptions{}, UDPOverTCP},
		{"tcp fallback, silent endpoint", ClientConfig{Server: withUDP.Addr, Username: testUser, Password: testPass},
			UDPOptions{Server: blackHole(t), ConfirmTimeout: 300 * time.Millisecond}, UDPOverTCP},
		{"dtls", tlsCfg(), UDPOptions{Over: UDPOverDTLS, Server: withDTLS.DTLSAddr}, UDPOverDTLS},
		{"dtls over the tls control with an explicit config", tlsCfg(),
			UDPOptions{Over: UDPOverDTLS, Server: withDTLS.DTLSAddr, DTLS: &dtls.Config{
				RootCAs: caPool(t, cert), ServerName: "localhost", ExtendedMasterSecret: dtls.RequireExtendedMasterSecret}}, UDPOverDTLS},
		{"dtls fallback, no dtls endpoint", tlsCfg(), UDPOptions{Over: UDPOverDTLS}, UDPOverTCP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustClient(t, tt.cfg)
			start := time.Now()
			u, err := c.UDPAssociate(testCtx(t, 20*time.Second), &tt.o)
			if err != nil {
				t.Fatalf("UDPAssociate: %v", err)
			}
			defer u.Close()
			echoDatagrams(t, u, echo4.gatewayAddr(), 200)
			if tt.want == UDPOverUDP {
				echoDatagrams(t, u, echo6.gatewayAddr(), 20)
			}
			echoBatched(t, u, echo4.gatewayAddr(), 100)
			if got := u.Transport(); got != tt.want {
				t.Errorf("transport %s, want %s", got, tt.want)
			}
			select {
			case <-u.Confirmed():
			default:
				t.Error("mapping not confirmed")
			}
			st := u.Stats()
			t.Logf("%s in %v: %+v", u.Transport(), time.Since(start).Round(time.Millisecond), st)
			if st.Received < 300 {
				t.Errorf("received %d", st.Received)
			}
		})
	}
}

// blackHole returns a UDP address where a socket swallows everything.
func blackHole(t testing.TB) string {
	t.Helper()
	p := newUDPPeer(t, "127.0.0.1:0", false)
	return p.addr.String()
}

// TestUDPReceiveFirst: with the empty datagram the upstream maps the
// association at once, so a remote host that sends first reaches the
// client, and the client's answer reaches it.
func TestUDPReceiveFirst(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		t.Run(over.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
			u, err := c.UDPAssociate(testCtx(t, 10*time.Second),
				&UDPOptions{Over: over, ReceiveFirst: true, Bind: ipAddr("127.0.0.1", 0)})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			select {
			case <-u.Confirmed():
			default:
				t.Fatal("UDPAssociate returned before the confirmation")
			}
			if !u.Bound.IP.IsLoopback() || u.Bound.Port == 0 {
				t.Fatalf("bound %v", u.Bound)
			}
			ext := newUDPPeer(t, "127.0.0.1:0", false)
			if _, err := ext.pc.WriteToUDPAddrPort([]byte("hello first"), u.Bound.AddrPort()); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1500)
			u.SetReadDeadline(time.Now().Add(3 * time.Second))
			pkt, err := u.ReadFrom(buf)
			if err != nil {
				t.Fatalf("ReadFrom: %v", err)
			}
			if pkt.From != ext.gatewayAddr() || string(buf[:pkt.N]) != "hello first" {
				t.Fatalf("got %q from %v", buf[:pkt.N], pkt.From)
			}
			if err := u.WriteTo([]byte("answer"), pkt.From); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 3*time.Second, func() bool { return ext.got.Load() == 1 })
		})
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sendRaw sends one Datagram of association id addressed to dst from pc
// to the upstream's UDP relay endpoint.
func sendRaw(t testing.TB, pc *net.UDPConn, relay string, id s6.AssocID, dst gateway.Addr, payload string) {
	t.Helper()
	msg, err := s6.AppendDatagram(nil, id, dst, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	ra, err := net.ResolveUDPAddr("udp", relay)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteToUDP(msg, ra); err != nil {
		t.Fatal(err)
	}
}

// TestUDPMappingRule drives raw sockets with the codec: a Datagram with an
// unknown ID and one with the right ID from another 5-tuple are not
// relayed; the mapped client's are. After the control connection closes,
// nothing from the old 5-tuple is relayed and the port is released.
func TestUDPMappingRule(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	sink := newUDPPeer(t, "127.0.0.1:0", false)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{ReceiveFirst: true, Bind: ipAddr("127.0.0.1", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.Transport() != UDPOverUDP {
		t.Fatalf("transport %s", u.Transport())
	}

	raw := newUDPPeer(t, "127.0.0.1:0", false)
	var wrong s6.AssocID
	rand.Read(wrong[:])
	sendRaw(t, raw.pc, up.Addr, wrong, sink.gatewayAddr(), "wrong id")
	sendRaw(t, raw.pc, up.Addr, u.ID, sink.gatewayAddr(), "right id, other 5-tuple")
	waitFor(t, 5*time.Second, func() bool {
		return up.metric(`sixgate_dropped_datagrams_total{frontend="up",reason="unknown_id"}`) >= 1 &&
			up.metric(`sixgate_dropped_datagrams_total{frontend="up",reason="wrong_channel"}`) >= 1
	})
	if err := u.WriteTo([]byte("mapped"), sink.gatewayAddr()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, func() bool { return sink.got.Load() >= 1 })
	time.Sleep(200 * time.Millisecond)
	sink.mu.Lock()
	last := string(sink.last)
	sink.mu.Unlock()
	if n := sink.got.Load(); n != 1 || last != "mapped" {
		t.Fatalf("sink got %d datagrams, last %q; want only the mapped client's", n, last)
	}

	// The control connection ends: nothing is relayed any more, not even
	// from the 5-tuple that was mapped, and the upstream's port is free.
	local := u.LocalAddr().(*net.UDPAddr)
	u.Close()
	if _, err := u.ReadFrom(make([]byte, 64)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	waitFor(t, 5*time.Second, func() bool {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(u.Bound.AddrPort()))
		if err != nil {
			return false
		}
		pc.Close()
		return true
	})
	again, err := net.ListenUDP("udp", local)
	if err != nil {
		t.Fatalf("rebinding the client's address %v: %v", local, err)
	}
	defer again.Close()
	sendRaw(t, again, up.Addr, u.ID, sink.gatewayAddr(), "after close")
	time.Sleep(300 * time.Millisecond)
	if n := sink.got.Load(); n != 1 {
		t.Fatalf("sink got %d datagrams after the association closed", n)
	}
}

// TestUDPFirstDatagramTimeout: an association that never sends is closed
// by the upstream after first_datagram_timeout; ReadFrom then reports
// net.ErrClosed.
func TestUDPFirstDatagramTimeout(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true, limits: `  first_datagram_timeout = "300ms"`})
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		t.Run(over.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
			start := time.Now()
			u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: over})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			u.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = u.ReadFrom(make([]byte, 64))
			took := time.Since(start)
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadFrom: %v, want net.ErrClosed", err)
			}
			if took < 250*time.Millisecond || took > 3*time.Second {
				t.Fatalf("closed after %v, want about 300ms", took)
			}
			select {
			case <-u.Done():
			default:
				t.Fatal("Done not closed")
			}
			if err := u.WriteTo([]byte("late"), ipAddr("127.0.0.1", 9)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("WriteTo after the end: %v", err)
			}
		})
	}
}

// TestUDPStackOptions: Port Parity even with reserve, TTL and DF on leg 2,
// UDP Error, and TTL on the client leg are echoed with the values in
// effect; the counterpart port is held while the association lives.
func TestUDPStackOptions(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass, Session: true})
	legs := s6.Legs{
		Remote: gateway.StackOptions{
			PortParity: gateway.Want(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}),
			TTL:        gateway.Want[uint8](7),
			DF:         gateway.Want(true),
			UDPError:   gateway.Want(true),
		},
		Client: gateway.StackOptions{TTL: gateway.Want[uint8](9)},
	}
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Legs: legs, Bind: ipAddr("127.0.0.1", 0), ReceiveFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r := u.Legs.Remote
	if u.Bound.Port%2 != 0 {
		t.Errorf("bound %v is not even", u.Bound)
	}
	if pp := r.PortParity; pp.Outcome != gateway.Applied || pp.Value != (gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}) {
		t.Errorf("port parity %+v", pp)
	}
	if r.TTL.Outcome != gateway.Applied || r.TTL.Value != 7 {
		t.Errorf("ttl %+v", r.TTL)
	}
	if r.DF.Outcome != gateway.Applied || !r.DF.Value {
		t.Errorf("df %+v", r.DF)
	}
	if r.UDPError.Outcome != gateway.Applied || !r.UDPError.Value {
		t.Errorf("udp error %+v", r.UDPError)
	}
	if ct := u.Legs.Client.TTL; ct.Outcome != gateway.Applied || ct.Value != 9 {
		t.Errorf("client leg ttl %+v", ct)
	}
	cp := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), u.Bound.Port+1)
	if pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cp)); err == nil {
		pc.Close()
		t.Fatalf("counterpart %v is not held", cp)
	}
	u.Close()
	waitFor(t, 5*time.Second, func() bool {
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cp))
		if err != nil {
			return false
		}
		pc.Close()
		return true
	})
}

// TestUDPAllocs: over UDP and over TCP a datagram's round trip allocates
// nothing in the client.
func TestUDPAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful with the race detector")
	}
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		t.Run(over.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
			u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: over, ReceiveFirst: true})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			dst := echo.gatewayAddr()
			payload := make([]byte, 1200)
			small := make([]byte, 2048)
			big := make([]byte, s6.MaxUDPMessageLen)
			echoDatagrams(t, u, dst, 5) // warm the pools
			for _, tc := range []struct {
				name string
				buf  []byte
			}{{"small buffer", small}, {"large buffer", big}} {
				allocs := testing.AllocsPerRun(200, func() {
					if err := u.WriteTo(payload, dst); err != nil {
						t.Fatal(err)
					}
					if _, err := u.ReadFrom(tc.buf); err != nil {
						t.Fatal(err)
					}
				})
				t.Logf("%s, %s: %.2f allocations per round trip", over, tc.name, allocs)
				if allocs > 0.1 {
					t.Errorf("%s, %s: %.2f allocations per round trip", over, tc.name, allocs)
				}
			}
		})
	}
}

func TestUDPTransportString(t *testing.T) {
	for tr, want := range map[UDPTransport]string{UDPOverUDP: "udp", UDPOverTCP: "tcp", UDPOverDTLS: "dtls", 9: "transport(9)"} {
		if tr.String() != want {
			t.Errorf("%d: %q", tr, tr.String())
		}
	}
	if _, err := (&Client{cfg: ClientConfig{Server: "x:1"}}).UDPAssociate(testCtx(t, time.Second), &UDPOptions{Over: 9}); err == nil {
		t.Error("unknown transport accepted")
	}
	c := mustClient(t, ClientConfig{Server: "127.0.0.1:1"})
	_, err := c.UDPAssociate(testCtx(t, time.Second), &UDPOptions{Over: UDPOverDTLS})
	wantReason(t, err, gateway.ReasonGeneral)
}

// TestUDPLargeDatagrams: datagrams up to the largest an IPv4 UDP payload
// holds go through over UDP and over TCP.
func TestUDPLargeDatagrams(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		t.Run(over.String(), func(t *testing.T) {
			c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
			u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: over, ReceiveFirst: true})
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			buf := make([]byte, 70000)
			// 65507 is the largest IPv4 UDP payload; the relay message
			// adds a 20-byte header.
			for _, n := range []int{8000, 30000, 65507 - 20} {
				data := make([]byte, n)
				rand.Read(data)
				if err := u.WriteTo(data, echo.gatewayAddr()); err != nil {
					t.Fatalf("%d bytes: %v", n, err)
				}
				u.SetReadDeadline(time.Now().Add(3 * time.Second))
				pkt, err := u.ReadFrom(buf)
				if err != nil || !bytes.Equal(buf[:pkt.N], data) {
					t.Fatalf("%d bytes: %v, %d came back", n, err, pkt.N)
				}
			}
			if err := u.WriteTo(make([]byte, s6.MaxUDPMessageLen), echo.gatewayAddr()); !errors.Is(err, gateway.ErrDropped) {
				t.Fatalf("an oversized datagram: %v", err)
			}
		})
	}
}

// TestUDPDraft10: against a -10 proxy Port Parity (odd = 1 there) and UDP
// Error (no Availability byte) are requested and echoed in -10 form.
func TestUDPDraft10(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true, dialect: "draft-10"})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass, Dialect: s6.Draft10})
	legs := s6.Legs{Remote: gateway.StackOptions{UDPError: gateway.Want(true),
		PortParity: gateway.Want(gateway.PortParity{Parity: gateway.ParityOdd, Reserve: true})}}
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Legs: legs, ReceiveFirst: true, Bind: ipAddr("127.0.0.1", 0)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r := u.Legs.Remote
	if u.Bound.Port%2 != 1 || r.PortParity.Outcome != gateway.Applied || r.PortParity.Value != (gateway.PortParity{Parity: gateway.ParityOdd, Reserve: true}) {
		t.Errorf("bound %v, port parity %+v", u.Bound, r.PortParity)
	}
	if r.UDPError.Outcome != gateway.Applied || !r.UDPError.Value {
		t.Errorf("udp error %+v", r.UDPError)
	}
	echoDatagrams(t, u, echo.gatewayAddr(), 5)
}

// ttlConn is a connected UDP socket that remembers the TTL of the last
// datagram it read.
type ttlConn struct {
	*net.UDPConn
	p   *ipv4.PacketConn
	ttl atomic.Int32
}

func (c *ttlConn) Read(b []byte) (int, error) {
	n, cm, _, err := c.p.ReadFrom(b)
	if cm != nil {
		c.ttl.Store(int32(cm.TTL))
	}
	return n, err
}

// TestUDPClientLegTTL: TTL on the client–proxy leg is echoed and the
// proxy's datagrams to the client carry it; DialPacket supplies the
// socket.
func TestUDPClientLegTTL(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	var tc *ttlConn
	legs := s6.Legs{Client: gateway.StackOptions{TTL: gateway.Want[uint8](9)}}
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Legs: legs, ReceiveFirst: true,
		DialPacket: func(ctx context.Context, relay string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "udp", relay)
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
		t.Fatalf("the proxy's datagrams carry TTL %d, want 9", got)
	}
}

// TestUDPDTLSSizeLimit: over DTLS a datagram up to 8 KiB goes through and a
// larger one is refused by WriteTo (pion/dtls reads datagrams into 8 KiB
// buffers on both sides, so it would be lost).
func TestUDPDTLSSizeLimit(t *testing.T) {
	cert, key := writeCert(t)
	up := startUpstream(t, upstreamOpts{users: true, certFile: cert, keyFile: key, dtls: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass,
		TLS: &tls.Config{RootCAs: caPool(t, cert)}})
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: UDPOverDTLS, Server: up.DTLSAddr, ReceiveFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.Transport() != UDPOverDTLS {
		t.Fatalf("transport %s", u.Transport())
	}
	buf := make([]byte, 70000)
	fits := make([]byte, maxDTLSMessage-20)
	rand.Read(fits)
	if err := u.WriteTo(fits, echo.gatewayAddr()); err != nil {
		t.Fatal(err)
	}
	u.SetReadDeadline(time.Now().Add(3 * time.Second))
	if pkt, err := u.ReadFrom(buf); err != nil || !bytes.Equal(buf[:pkt.N], fits) {
		t.Fatalf("%d bytes: %v, %d came back", len(fits), err, pkt.N)
	}
	if err := u.WriteTo(make([]byte, maxDTLSMessage), echo.gatewayAddr()); !errors.Is(err, gateway.ErrDropped) {
		t.Fatalf("a datagram too large for dtls: %v", err)
	}
}

// TestUDPOverTCPBurst: datagrams sent back to back over the control
// connection come back intact and in order: the upstream queues its
// messages to the client and writes what waits together.
func TestUDPOverTCPBurst(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: UDPOverTCP})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	echoDatagrams(t, u, echo.gatewayAddr(), 1) // mapped
	const n = 100
	for i := range n {
		if err := u.WriteTo(fmt.Appendf(nil, "burst %03d", i), echo.gatewayAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for i := range n {
		u.SetReadDeadline(time.Now().Add(3 * time.Second))
		pkt, err := u.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v (stats %+v)", i, err, u.Stats())
		}
		if want := fmt.Sprintf("burst %03d", i); string(buf[:pkt.N]) != want {
			t.Fatalf("got %q, want %q", buf[:pkt.N], want)
		}
	}
}
