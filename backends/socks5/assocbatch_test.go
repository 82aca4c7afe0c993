package socks5

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestAssociateBatchWrite: WriteToLater holds datagrams (nothing reaches
// the relay) until Flush sends them, in order, each behind its own header;
// a denied destination is refused at once, and a datagram too large to
// hold goes out at once.
func TestAssociateBatchWrite(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	denied := mustAddr(t, "192.0.2.9:53")
	a := associate(t, b, &denyPolicy{deny: map[netip.AddrPort]bool{denied.AddrPort(): true}})
	<-f.req
	bw := gateway.BatchWriterOf(a)
	if bw == nil {
		t.Fatal("an association with its own socket is not a gateway.BatchWriter")
	}
	dsts := []gateway.Addr{mustAddr(t, "192.0.2.7:53"), mustAddr(t, "[2001:db8::7]:53"), {Name: "example.org", Port: 53}}
	// More than one batch holds, so one flush happens on the way.
	const n = gateway.PackedDatagrams + 5
	for i := range n {
		p := bytes.Repeat([]byte{byte(i)}, 1+i*50)
		if err := bw.WriteToLater(p, dsts[i%3], gateway.DatagramMeta{}); err != nil {
			t.Fatalf("WriteToLater %d: %v", i, err)
		}
		p[0] = 0xff // held datagrams were copied
	}
	if err := bw.WriteToLater([]byte("no"), denied, gateway.DatagramMeta{}); gateway.ReasonOf(err) != gateway.ReasonNotAllowed {
		t.Fatalf("WriteToLater to a denied destination = %v, want not allowed", err)
	}
	buf := make([]byte, 70000)
	for i := range gateway.PackedDatagrams {
		h, p, _ := readRelay(t, f)
		if h.Addr != dsts[i%3] || len(p) != 1+i*50 || p[0] != byte(i) {
			t.Fatalf("datagram %d: %s, %d bytes starting %d", i, h.Addr, len(p), p[0])
		}
	}
	f.relay.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if k, _, err := f.relay.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("a datagram of %d bytes reached the relay before Flush", k)
	}
	// A datagram too large to hold goes at once, after what waits.
	big := bytes.Repeat([]byte{'b'}, gateway.PackedBytes)
	if err := bw.WriteToLater(big, dsts[0], gateway.DatagramMeta{}); err != nil {
		t.Fatal(err)
	}
	for i := gateway.PackedDatagrams; i < n; i++ {
		h, p, _ := readRelay(t, f)
		if h.Addr != dsts[i%3] || len(p) != 1+i*50 || p[0] != byte(i) {
			t.Fatalf("datagram %d: %s, %d bytes starting %d", i, h.Addr, len(p), p[0])
		}
	}
	if _, p, _ := readRelay(t, f); p != string(big) {
		t.Fatalf("a datagram too large to hold: got %d bytes", len(p))
	}
	if err := bw.WriteToLater([]byte("last"), dsts[1], gateway.DatagramMeta{}); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	if h, p, _ := readRelay(t, f); h.Addr != dsts[1] || p != "last" {
		t.Fatalf("after Flush: %s %q", h.Addr, p)
	}
	bw.Flush() // nothing waits: a no-op
	a.Close()
	if err := bw.WriteToLater([]byte("x"), dsts[0], gateway.DatagramMeta{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteToLater after Close = %v, want net.ErrClosed", err)
	}
}

// TestAssociateServePackets: batched reads hand over what ReadFrom would
// (payload at the front of its buffer, From from the header) and drop
// what it drops; the association's end ends the reader with
// net.ErrClosed.
func TestAssociateServePackets(t *testing.T) {
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	a := associate(t, b, &denyPolicy{})
	src := (<-f.req).Dest.AddrPort()
	if _, ok := a.(gateway.PacketServer); !ok {
		t.Fatal("an association with its own socket is not a gateway.PacketServer")
	}
	dst := mustAddr(t, "192.0.2.7:53")
	other, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer other.Close()
	// Queued before the reader starts, so they arrive as one batch.
	f.relay.WriteToUDPAddrPort(datagram(t, 0, dst, "first"), src)
	other.WriteToUDPAddrPort(datagram(t, 0, dst, "foreign"), src)
	f.relay.WriteToUDPAddrPort(datagram(t, 1, dst, "fragment"), src)
	f.relay.WriteToUDPAddrPort([]byte{0, 0, 0, 9, 1}, src)
	f.relay.WriteToUDPAddrPort(datagram(t, 0, gateway.Addr{Name: "peer.example", Port: 7}, "second"), src)
	type got struct {
		from    gateway.Addr
		payload string
	}
	gots := make(chan got, 8)
	const head = 40
	pool := gateway.NewBufPool(head, 2048)
	done := make(chan error, 1)
	go func() {
		done <- gateway.ServePackets(a, pool, func(buf []byte, pkt gateway.Packet) {
			gots <- got{pkt.From, string(buf[head : head+pkt.N])}
		}, nil)
	}()
	for _, want := range []got{{dst, "first"}, {gateway.Addr{Name: "peer.example", Port: 7}, "second"}} {
		select {
		case g := <-gots:
			if g != want {
				t.Fatalf("got %+v, want %+v", g, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%q did not come", want.payload)
		}
	}
	assoc := a.(*sockAssociation)
	if assoc.foreign.Load() != 1 || assoc.frag.Load() != 1 || assoc.malformed.Load() != 1 {
		t.Errorf("dropped foreign %d frag %d malformed %d, want 1 each", assoc.foreign.Load(), assoc.frag.Load(), assoc.malformed.Load())
	}
	(<-f.ctrl).Close() // the server ends the association
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ServePackets = %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServePackets did not end with the association")
	}
}

// TestAssociateParked: an idle association's two readers (the relay
// socket's and the control connection's watcher) give their goroutines up
// after a second; a datagram resumes the relay reader, and the server's end
// of the control connection resumes the watcher, which ends the
// association, and the relay reader sees that too.
func TestAssociateParked(t *testing.T) {
	if gateway.ParkAfter() <= 0 {
		t.Skip("no park set on this system")
	}
	parked0 := gateway.ParkedReaders()
	f := startFakeRelay(t, gateway.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	b := newBackend(t, "up", Config{Server: f.addr}, Options{})
	a := associate(t, b, &denyPolicy{})
	src := (<-f.req).Dest.AddrPort()
	ctrl := <-f.ctrl
	if ips, ok := a.(gateway.IdlePacketServer); !ok || ips.ReadConn() == nil {
		t.Fatal("an association with its own socket is not a gateway.IdlePacketServer with a socket")
	}
	const head = 40
	pool := gateway.NewBufPool(head, 2048)
	gots := make(chan string, 8)
	exited := make(chan struct{})
	loop := gateway.StartPacketLoop(a, pool, func(buf []byte, pkt gateway.Packet) {
		gots <- string(buf[head : head+pkt.N])
	}, nil, func(err error) bool { return true }, func() { close(exited) })
	defer func() { a.Close(); loop.Wake() }()
	// Both readers park, and their goroutines end (the park set's own
	// goroutine may start).
	running := runtime.NumGoroutine()
	gatewaytest.WaitParked(t, parked0+2, running-2+1)

	dst := mustAddr(t, "192.0.2.7:53")
	f.relay.WriteToUDPAddrPort(datagram(t, 0, dst, "after a pause"), src)
	select {
	case g := <-gots:
		if g != "after a pause" {
			t.Fatalf("got %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a parked reader did not resume for a datagram")
	}
	gatewaytest.WaitParked(t, parked0+2, running-2+1)

	// The server ends the association while both are parked: the watcher
	// resumes, and wakes the relay reader before closing its socket (not
	// the park set's sweep, a second later).
	ctrl.Close()
	select {
	case <-exited:
	case <-time.After(400 * time.Millisecond):
		t.Fatal("the relay reader did not see the association end at once")
	}
	gatewaytest.CloseWithin(t, a, 5*time.Second) // not waiting for a watcher that did not end
}
