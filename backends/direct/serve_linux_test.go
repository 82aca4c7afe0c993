package direct

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// serveBatches runs ServePackets on a with counted batches of 2 KiB buffers
// and sends each packet (data copied) on the returned channel; at cleanup it
// closes a and checks that ServePackets ended with net.ErrClosed.
func serveBatches(t testing.TB, a *association, out, gets *atomic.Int64) <-chan pkt {
	ch := make(chan pkt, 1024)
	done := make(chan error, 1)
	bufs := make([][]byte, serveBatch)
	get := func() [][]byte {
		gets.Add(1)
		if out.Add(1) != 1 {
			t.Errorf("a batch lent twice")
		}
		for i := range bufs {
			bufs[i] = make([]byte, 2048)
		}
		return bufs
	}
	put := func() { out.Add(-1) }
	go func() {
		defer close(ch)
		done <- a.ServePackets(get, put, func(i int, p gateway.Packet) {
			var data []byte
			if p.Kind == gateway.PacketData {
				if i < 0 || i >= len(bufs) {
					t.Errorf("datagram in buffer %d of %d", i, len(bufs))
					return
				}
				data = bytes.Clone(bufs[i][:p.N])
			} else if i != -1 {
				t.Errorf("ICMP error with buffer %d", i)
			}
			ch <- pkt{Packet: p, data: data}
		})
	}()
	t.Cleanup(func() {
		a.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Errorf("ServePackets ended with %v, want net.ErrClosed", err)
		}
	})
	return ch
}

// ServePackets hands over every queued datagram, in order, from batches it
// lends only while reading, and then waits for more.
func TestServePacketsBatches(t *testing.T) {
	b := newBackend(t, Config{}, Options{Own: gateway.NewOwnAddrs()})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	relay, _ := a.RelayAddr()
	senders := make([]*net.UDPConn, 3)
	for i := range senders {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		senders[i] = c
	}
	send := func(round, k int) {
		for j := range k {
			for i, c := range senders {
				msg := fmt.Appendf(nil, "%d/%d/%d", round, i, j)
				if _, err := c.WriteToUDPAddrPort(msg, relay.AddrPort()); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// 3 x 40 datagrams queued before the first read: several full
	// batches, then a short one.
	send(0, 40)
	var out, gets atomic.Int64
	ch := serveBatches(t, a, &out, &gets)
	recv := func(round, k int) {
		t.Helper()
		next := make([]int, len(senders))
		for range k * len(senders) {
			var p pkt
			select {
			case p = <-ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: datagrams missing, got %v", round, next)
			}
			var r, i, j int
			if _, err := fmt.Sscanf(string(p.data), "%d/%d/%d", &r, &i, &j); err != nil || r != round || i < 0 || i >= len(senders) {
				t.Fatalf("round %d: unexpected %q (%+v)", round, p.data, p.Packet)
			}
			if j != next[i] {
				t.Fatalf("sender %d: datagram %d, want %d", i, j, next[i])
			}
			if from := p.From.AddrPort(); from != senders[i].LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("sender %d: from %v", i, from)
			}
			next[i]++
		}
	}
	recv(0, 40)
	for round := 1; round <= 20; round++ {
		if round == 11 {
			// One datagram at a time: one read each, none that finds
			// the queue empty.
			before := gets.Load()
			for k := range 30 {
				senders[0].WriteToUDPAddrPort(fmt.Appendf(nil, "ping %d", k), relay.AddrPort())
				select {
				case p := <-ch:
					if string(p.data) != fmt.Sprintf("ping %d", k) {
						t.Fatalf("got %q", p.data)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("ping lost")
				}
				for out.Load() != 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if reads := gets.Load() - before; reads > 32 {
				t.Errorf("%d reads for 30 datagrams one at a time", reads)
			}
		}
		// The reader waits, holding no buffer.
		deadline := time.Now().Add(2 * time.Second)
		for out.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := out.Load(); n != 0 {
			t.Fatalf("round %d: a waiting reader holds %d batches", round, n)
		}
		send(round, round%3+1)
		recv(round, round%3+1)
	}
	select {
	case p := <-ch:
		t.Fatalf("unexpected extra packet %+v %q", p.Packet, p.data)
	case <-time.After(50 * time.Millisecond):
	}
}

// Closing an association whose ServePackets callback waits for the closer
// (here: a lock the closer holds) does not deadlock: the socket closes once
// the callback returns. So does closing it from inside the callback.
func TestServePacketsCloseFromCallback(t *testing.T) {
	b := newBackend(t, Config{}, Options{Own: gateway.NewOwnAddrs()})
	for _, inside := range []bool{false, true} {
		t.Run(fmt.Sprint("inside=", inside), func(t *testing.T) {
			a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
			relay, _ := a.RelayAddr()
			var mu sync.Mutex
			entered := make(chan struct{}, 1)
			done := make(chan error, 1)
			bufs := [][]byte{make([]byte, 2048), make([]byte, 2048)}
			go func() {
				done <- a.ServePackets(func() [][]byte { return bufs }, func() {}, func(int, gateway.Packet) {
					select {
					case entered <- struct{}{}:
					default:
					}
					if inside {
						a.Close()
						return
					}
					mu.Lock() // held by the closer
					mu.Unlock()
				})
			}()
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(relay.AddrPort()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !inside {
				mu.Lock()
			}
			c.Write([]byte("x"))
			select {
			case <-entered:
			case <-time.After(5 * time.Second):
				t.Fatal("no datagram")
			}
			if !inside {
				closed := make(chan struct{})
				go func() { a.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(5 * time.Second):
					t.Fatal("Close waits for the callback that waits for Close's caller")
				}
				mu.Unlock()
			}
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ServePackets ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("ServePackets did not end")
			}
			// The socket is closed and its port released soon after.
			deadline := time.Now().Add(5 * time.Second)
			for {
				pc, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(relay.AddrPort()))
				if err == nil {
					pc.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("port still bound: %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

// WriteToLater holds datagrams until Flush (or a full batch) and then sends
// them in order; datagrams with per-datagram wishes go at once, after what
// waits; ICMP errors caused by held datagrams still reach the reader.
func TestWriteToLater(t *testing.T) {
	sinkA := newUDPSink(t, "udp4", "127.0.0.1:0")
	sinkB := newUDPSink(t, "udp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	var bw gateway.BatchWriter = a
	recv := func(s *udpSink, want ...string) {
		t.Helper()
		for _, w := range want {
			select {
			case got := <-s.got:
				if string(got) != w {
					t.Fatalf("got %q, want %q", got, w)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%q never arrived", w)
			}
		}
	}
	for i := range 5 {
		if err := bw.WriteToLater(fmt.Appendf(nil, "a%d", i), sinkA.gw(), gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
		if err := bw.WriteToLater(fmt.Appendf(nil, "b%d", i), sinkB.gw(), gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	sinkA.none(t, 50*time.Millisecond)
	bw.Flush()
	recv(sinkA, "a0", "a1", "a2", "a3", "a4")
	recv(sinkB, "b0", "b1", "b2", "b3", "b4")

	// A full batch goes out without Flush.
	for i := range 20 {
		bw.WriteToLater(fmt.Appendf(nil, "%d", i), sinkA.gw(), gateway.DatagramMeta{})
	}
	for i := range 16 {
		recv(sinkA, fmt.Sprint(i))
	}
	sinkA.none(t, 50*time.Millisecond)
	// An IPv4 datagram with DF (which switches the socket's mode) goes at
	// once, after the held ones.
	if err := bw.WriteToLater([]byte("df"), sinkA.gw(), gateway.DatagramMeta{DF: true}); err != nil {
		t.Fatal(err)
	}
	recv(sinkA, "16", "17", "18", "19", "df")
	// So does the next one without, which switches it back.
	bw.WriteToLater([]byte("back"), sinkA.gw(), gateway.DatagramMeta{})
	recv(sinkA, "back")

	// Datagrams with a TTL or a TOS wait too, and keep them; on IPv6,
	// so does DF.
	for _, fam := range []struct {
		v, net, addr string
	}{{"4", "udp4", "127.0.0.1:0"}, {"6", "udp6", "[::1]:0"}} {
		r := newMetaReceiver(t, fam.net, fam.addr)
		a := a
		if fam.v == "6" {
			a = associate(t, b, &gateway.AssocRequest{Family: 6, Policy: loopback})
		}
		metas := []gateway.DatagramMeta{{TTL: 9}, {}, {TTL: 7, TOS: 0x20, HasTOS: true}, {DF: fam.v == "6", TTL: 5}}
		for i, m := range metas {
			if err := a.WriteToLater(fmt.Appendf(nil, "m%d", i), r.gw(), m); err != nil {
				t.Fatal(err)
			}
		}
		r.pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, _, err := r.pc.ReadFrom(make([]byte, 64)); err == nil {
			t.Fatalf("IPv%s: a datagram (%d bytes) went before Flush", fam.v, n)
		}
		a.Flush()
		for i, m := range metas {
			payload, _, ttl, tos := r.recv(t)
			wantTTL, wantTOS := int(m.TTL), int(m.TOS)
			if payload != fmt.Sprintf("m%d", i) || (m.TTL != 0 && ttl != wantTTL) || (m.TTL == 0 && (ttl == 9 || ttl == 7)) ||
				(m.HasTOS && tos != wantTOS) || (!m.HasTOS && tos == 0x20) {
				t.Fatalf("IPv%s: got %q with TTL %d and TOS %#x, want m%d with %+v", fam.v, payload, ttl, tos, i, m)
			}
		}
	}

	// Policy errors come back at once.
	if err := bw.WriteToLater([]byte("x"), gateway.Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 9}, gateway.DatagramMeta{}); gateway.ReasonOf(err) != gateway.ReasonNotAllowed {
		t.Fatalf("denied destination: %v", err)
	}

	// ICMP errors about held datagrams reach the reader.
	closed := newUDPSink(t, "udp4", "127.0.0.1:0")
	dead := closed.gw()
	closed.pc.Close()
	var out, gets atomic.Int64
	ch := serveBatches(t, a, &out, &gets)
	for i := range 10 {
		bw.WriteToLater([]byte{byte(i)}, dead, gateway.DatagramMeta{})
		bw.WriteToLater([]byte{byte(i)}, sinkB.gw(), gateway.DatagramMeta{})
		bw.Flush()
	}
	icmps := 0
	timeout := time.After(5 * time.Second)
	for icmps < 5 {
		select {
		case p := <-ch:
			if p.Kind == gateway.PacketICMP && p.ICMP.Dest == dead.AddrPort() {
				icmps++
			}
		case <-timeout:
			t.Fatalf("%d ICMP errors for 10 datagrams to a closed port", icmps)
		}
	}
	a.Close()
	if err := bw.WriteToLater([]byte("late"), sinkA.gw(), gateway.DatagramMeta{}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	bw.Flush()
}

// ServePacketsIdle goes on while datagrams come (the deadline is moved
// only when it passes), returns gateway.ErrReaderIdle once they stop, reads
// on when called again, and ends with net.ErrClosed when the association
// closes while it waits.
func TestServePacketsIdle(t *testing.T) {
	b := newBackend(t, Config{}, Options{Own: gateway.NewOwnAddrs()})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	relay, _ := a.RelayAddr()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a.ReadConn() == nil {
		t.Fatal("no ReadConn")
	}
	const idle = 150 * time.Millisecond
	var got atomic.Int64
	bufs := make([][]byte, serveBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	serve := func(idle time.Duration) <-chan error {
		done := make(chan error, 1)
		go func() {
			done <- a.ServePacketsIdle(func() [][]byte { return bufs }, func() {}, func(int, gateway.Packet) { got.Add(1) }, idle)
		}()
		return done
	}

	// Busy for 4 idle periods: no return.
	done := serve(idle)
	start := time.Now()
	for time.Since(start) < 4*idle {
		if _, err := c.WriteToUDPAddrPort([]byte("x"), relay.AddrPort()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("returned %v after %v while datagrams came", err, time.Since(start))
		case <-time.After(idle / 5):
		}
	}
	sent := got.Load()
	if sent < 10 {
		t.Fatalf("%d datagrams read", sent)
	}
	// Quiet: ErrReaderIdle between idle and twice that (and some slack).
	quiet := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, gateway.ErrReaderIdle) {
			t.Fatalf("returned %v, want ErrReaderIdle", err)
		}
		if d := time.Since(quiet); d < idle/2 || d > 2*idle+time.Second {
			t.Errorf("idle after %v of quiet, want about %v to %v", d, idle, 2*idle)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no return after the datagrams stopped")
	}

	// A datagram that came meanwhile is read by the next call (one that
	// would wait long: the close below must end it, not the deadline).
	if _, err := c.WriteToUDPAddrPort([]byte("y"), relay.AddrPort()); err != nil {
		t.Fatal(err)
	}
	before := got.Load()
	done = serve(time.Minute)
	deadline := time.Now().Add(2 * time.Second)
	for got.Load() == before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got.Load() == before {
		t.Fatal("the datagram sent while no one read was not read")
	}
	// Closed while waiting: net.ErrClosed, at once.
	time.Sleep(50 * time.Millisecond)
	a.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end ServePacketsIdle")
	}
}
