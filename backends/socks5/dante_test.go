package socks5

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/backends/socks5/dantetest"
	"github.com/sixgate/sixgate/gateway"
)

// These tests run the backend against Dante's danted (dantetest), a real
// third-party server with CONNECT, BIND and UDP ASSOCIATE.

// danteCases are the two ways to reach Dante: without authentication and
// with the username/password account of dantetest.
var danteCases = []struct {
	name string
	opts dantetest.Options
	cfg  Config
}{
	{"no auth", dantetest.Options{}, Config{}},
	{"username/password", dantetest.Options{Auth: true}, Config{Username: dantetest.User, Password: dantetest.Password}},
}

func danteBackend(t *testing.T, d *dantetest.Server, cfg Config, opts Options) *Backend {
	t.Helper()
	cfg.Server = d.Addr
	return newBackend(t, "dante", cfg, opts)
}

func TestDanteConnect(t *testing.T) {
	t.Parallel()
	echo := startTCPEcho(t)
	for _, tt := range danteCases {
		t.Run(tt.name, func(t *testing.T) {
			d := dantetest.Start(t, tt.opts)
			b := danteBackend(t, d, tt.cfg, Options{})
			initial := []byte("hello dante")
			st, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: echo.addr(), InitialData: initial, Policy: &denyPolicy{}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Conn.Close()
			if !st.Bound.IP.IsLoopback() || st.Bound.Port == 0 {
				t.Errorf("Bound = %s", st.Bound)
			}
			echoRoundTrip(t, st.Conn, initial)
		})
	}
}

func TestDanteConnectRefusedAndBadPassword(t *testing.T) {
	t.Parallel()
	d := dantetest.Start(t, dantetest.Options{Auth: true})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := gateway.AddrFromAddrPort(ln.Addr().(*net.TCPAddr).AddrPort())
	ln.Close()
	b := danteBackend(t, d, danteCases[1].cfg, Options{})
	_, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: closed})
	reasonIs(t, err, gateway.ReasonRefused)

	bad := danteBackend(t, d, Config{Username: dantetest.User, Password: "wrong"}, Options{})
	_, err = bad.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: closed})
	reasonIs(t, err, gateway.ReasonAuthFailed)
	anon := danteBackend(t, d, Config{}, Options{})
	_, err = anon.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: closed})
	reasonIs(t, err, gateway.ReasonAuthFailed)
}

// bindExchange runs a BIND on b: a peer connects to the listening address
// and data flows both ways.
func bindExchange(t *testing.T, b *Backend, policy gateway.Policy) {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	l, err := b.Listen(ctx, &gateway.BindRequest{Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr()
	if !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Fatalf("listening address %s", addr)
	}
	peerErr := make(chan error, 1)
	var peerLocal netip.AddrPort
	go func() {
		c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			peerErr <- err
			return
		}
		defer c.Close()
		peerLocal = c.LocalAddr().(*net.TCPAddr).AddrPort()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("hello from peer")); err != nil {
			peerErr <- err
			return
		}
		buf := make([]byte, len("hello from client"))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello from client" {
			peerErr <- fmt.Errorf("peer read %q: %v", buf, err)
			return
		}
		peerErr <- nil
	}()
	st, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Conn.Close()
	st.Conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("hello from peer"))
	if _, err := io.ReadFull(st.Conn, buf); err != nil || string(buf) != "hello from peer" {
		t.Fatalf("client read %q: %v", buf, err)
	}
	if _, err := st.Conn.Write([]byte("hello from client")); err != nil {
		t.Fatal(err)
	}
	if err := <-peerErr; err != nil {
		t.Fatal(err)
	}
	if st.Peer != gateway.AddrFromAddrPort(peerLocal) {
		t.Errorf("Peer = %s, want %s", st.Peer, peerLocal)
	}
	if _, err := l.Accept(ctx); err == nil {
		t.Error("a second Accept succeeded")
	}
}

func TestDanteBind(t *testing.T) {
	t.Parallel()
	for _, tt := range danteCases {
		t.Run(tt.name, func(t *testing.T) {
			d := dantetest.Start(t, tt.opts)
			b := danteBackend(t, d, tt.cfg, Options{})
			bindExchange(t, b, &denyPolicy{})
		})
	}
}

func TestDanteBindPeerDenied(t *testing.T) {
	t.Parallel()
	d := dantetest.Start(t, dantetest.Options{})
	b := danteBackend(t, d, Config{}, Options{})
	ctx := testCtx(t, 15*time.Second)
	l, err := b.Listen(ctx, &gateway.BindRequest{Policy: &denyPolicy{deny: map[netip.AddrPort]bool{
		netip.MustParseAddrPort("127.0.0.1:0"): true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := net.DialTimeout("tcp", l.Addr().String(), 5*time.Second); err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // until the backend's close reaches us
			c.Close()
		}
	}()
	_, err = l.Accept(ctx)
	reasonIs(t, err, gateway.ReasonNotAllowed)
}

func TestDanteBindCloseWhileWaiting(t *testing.T) {
	t.Parallel()
	d := dantetest.Start(t, dantetest.Options{})
	b := danteBackend(t, d, Config{}, Options{})
	l, err := b.Listen(testCtx(t, 10*time.Second), &gateway.BindRequest{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept(testCtx(t, 10*time.Second))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept succeeded after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Accept")
	}
}

// udpCheck sends count datagrams of 1..1400 bytes through a to echo and
// checks that every one comes back intact with echo as its source, then
// closes a. UDP may lose datagrams under load (a busy Dante process lets
// its socket buffer overflow): the missing ones are sent again, up to three
// more rounds, and the losses are logged; a payload that was never sent
// fails the test.
func udpCheck(t *testing.T, a gateway.Association, echo gateway.Addr, count int) {
	t.Helper()
	udpCheckWith(t, a, echo, count, false)
}

// udpCheckWith is udpCheck; batched sends with WriteToLater, 8 datagrams
// per Flush, and reads with gateway.ServePackets, as the frontends do.
func udpCheckWith(t *testing.T, a gateway.Association, echo gateway.Addr, count int, batched bool) {
	t.Helper()
	bw := gateway.BatchWriterOf(a)
	if batched && bw == nil {
		t.Fatal("the association is not a gateway.BatchWriter")
	}
	all := make(map[string]int, count)
	list := make([][]byte, count)
	for i := range list {
		p := bytes.Repeat([]byte{byte(i)}, 1+(i*97)%1400)
		copy(p, fmt.Sprintf("%d:", i))
		list[i] = p
		all[string(p)] = i
	}
	udpWarmUp(t, a, echo)
	var mu sync.Mutex
	missing := make(map[int]bool, count)
	for i := range list {
		missing[i] = true
	}
	complete := make(chan struct{})
	readErr := make(chan error, 1)
	// check judges one datagram; false ends the reader (readErr is sent).
	check := func(pkt gateway.Packet, payload []byte) bool {
		if pkt.Kind != gateway.PacketData || pkt.From != echo {
			readErr <- fmt.Errorf("packet kind %d from %s, want data from %s", pkt.Kind, pkt.From, echo)
			return false
		}
		p := string(payload)
		if p == "probe" { // a late warm-up echo
			return true
		}
		i, ok := all[p]
		if !ok {
			readErr <- fmt.Errorf("a datagram of %d bytes that was never sent", pkt.N)
			return false
		}
		mu.Lock()
		if missing[i] {
			delete(missing, i)
			if len(missing) == 0 {
				close(complete)
			}
		}
		mu.Unlock()
		return true
	}
	go func() {
		if batched {
			failed := false
			err := gateway.ServePackets(a, gateway.NewBufPool(0, 65536), func(buf []byte, pkt gateway.Packet) {
				if !failed && !check(pkt, buf[:pkt.N]) {
					failed = true
					a.Close()
				}
			}, nil)
			if !failed {
				readErr <- err
			}
			return
		}
		buf := make([]byte, 65536)
		for {
			pkt, err := a.ReadFrom(buf)
			if err != nil {
				readErr <- err
				return
			}
			if !check(pkt, buf[:pkt.N]) {
				return
			}
		}
	}()
	defer func() {
		a.Close() // ends the reader
		<-readErr
	}()
	for round := 0; round < 4; round++ {
		mu.Lock()
		var send []int
		for i := range list {
			if missing[i] {
				send = append(send, i)
			}
		}
		mu.Unlock()
		if round > 0 {
			t.Logf("round %d: %d of %d datagrams lost, sending them again", round, len(send), count)
		}
		for n, i := range send {
			var err error
			if batched {
				err = bw.WriteToLater(list[i], echo, gateway.DatagramMeta{})
				if n%8 == 7 || n == len(send)-1 {
					bw.Flush()
				}
			} else {
				err = a.WriteTo(list[i], echo, gateway.DatagramMeta{})
			}
			if err != nil {
				t.Fatalf("WriteTo %d: %v", i, err)
			}
			if n%20 == 19 {
				time.Sleep(3 * time.Millisecond)
			}
		}
		select {
		case <-complete:
			return
		case err := <-readErr:
			readErr <- err
			t.Fatal(err)
		case <-time.After(3 * time.Second):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Fatalf("%d of %d datagrams did not come back in four rounds", len(missing), count)
}

// udpWarmUp sends a probe until its echo comes back: a relay may drop what
// arrives before it is ready (Dante hands a new session from process to
// process), and the counted datagrams should not measure that.
func udpWarmUp(t *testing.T, a gateway.Association, echo gateway.Addr) {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 65536)
		for {
			pkt, err := a.ReadFrom(buf)
			if err != nil || string(buf[:pkt.N]) == "probe" {
				got <- err
				return
			}
		}
	}()
	for range 50 {
		if err := a.WriteTo([]byte("probe"), echo, gateway.DatagramMeta{}); err != nil {
			t.Fatalf("probe: %v", err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("probe: %v", err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("no probe came back in 5s")
}

func TestDanteUDP(t *testing.T) {
	t.Parallel()
	echo := gateway.AddrFromAddrPort(startUDPEcho(t))
	for _, tt := range danteCases {
		t.Run(tt.name, func(t *testing.T) {
			d := dantetest.Start(t, tt.opts)
			b := danteBackend(t, d, tt.cfg, Options{})
			req := &gateway.AssocRequest{Policy: &denyPolicy{}}
			req.Options.UDPError = gateway.Want(true)
			a, err := b.Associate(testCtx(t, 10*time.Second), req)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if _, exact := a.RelayAddr(); exact {
				t.Error("RelayAddr claims to know the remote-facing address")
			}
			if a.Options().UDPError.Outcome != gateway.Unsupported {
				t.Errorf("UDPError outcome %s", a.Options().UDPError.Outcome)
			}
			udpCheck(t, a, echo, 200)
		})
	}
	// Batched both ways, as a frontend's read batches drive it.
	t.Run("batched", func(t *testing.T) {
		d := dantetest.Start(t, dantetest.Options{})
		b := danteBackend(t, d, Config{}, Options{})
		a, err := b.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{Policy: &denyPolicy{}})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		udpCheckWith(t, a, echo, 200, true)
	})
}

// TestDanteIPv6Destinations reaches IPv6 destinations through Dante over
// an IPv4 control connection: ATYP 4 in the CONNECT request and in the UDP
// header.
func TestDanteIPv6Destinations(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	tcp6 := gateway.AddrFromAddrPort(ln.Addr().(*net.TCPAddr).AddrPort())
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(c, c)
	}()
	defer ln.Close()
	pc, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	udp6 := gateway.AddrFromAddrPort(pc.LocalAddr().(*net.UDPAddr).AddrPort())
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	defer func() { pc.Close(); <-echoDone }()

	d := dantetest.Start(t, dantetest.Options{})
	b := danteBackend(t, d, Config{}, Options{})
	st, err := b.Dial(testCtx(t, 10*time.Second), &gateway.StreamRequest{Dest: tcp6, InitialData: []byte("v6"), Policy: &denyPolicy{}})
	if err != nil {
		t.Fatal(err)
	}
	echoRoundTrip(t, st.Conn, []byte("v6"))
	st.Conn.Close()

	a, err := b.Associate(testCtx(t, 10*time.Second), &gateway.AssocRequest{Policy: &denyPolicy{}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	udpCheck(t, a, udp6, 20)
}
