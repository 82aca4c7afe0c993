package direct

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// An association read through gateway.ReadLazy holds no buffer while it
// waits, and hands back the one that holds each datagram.
func TestReadFromLazyHoldsNoBufferWhileWaiting(t *testing.T) {
	e := newUDPEcho(t, "udp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{Own: gateway.NewOwnAddrs()})
	var a gateway.Association = associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	var out atomic.Int64 // buffers lent and not given back
	get := func() []byte { out.Add(1); return make([]byte, 2048) }
	put := func([]byte) { out.Add(-1) }

	type result struct {
		pkt gateway.Packet
		buf []byte
		err error
	}
	results := make(chan result, 1)
	read := func() {
		pkt, buf, err := gateway.ReadLazy(a, get, put)
		results <- result{pkt, buf, err}
	}
	for i := range 5 {
		go read()
		time.Sleep(50 * time.Millisecond) // the reader is waiting now
		if n := out.Load(); n != 0 {
			t.Fatalf("round %d: %d buffers held by a waiting reader", i, n)
		}
		payload := bytes.Repeat([]byte{byte(i)}, 100+i)
		if err := a.WriteTo(payload, e.gw(), gateway.DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
		var r result
		select {
		case r = <-results:
		case <-time.After(5 * time.Second):
			t.Fatal("no datagram")
		}
		if r.err != nil || r.pkt.Kind != gateway.PacketData || !bytes.Equal(r.buf[:r.pkt.N], payload) {
			t.Fatalf("round %d: %+v %v", i, r.pkt, r.err)
		}
		if n := out.Load(); n != 1 {
			t.Fatalf("round %d: %d buffers out with a datagram, want 1", i, n)
		}
		put(r.buf)
	}
	// Close ends a waiting lazy read, with no buffer left out.
	go read()
	time.Sleep(20 * time.Millisecond)
	a.Close()
	select {
	case r := <-results:
		if r.err == nil {
			t.Fatal("read after Close succeeded")
		}
		if r.buf != nil {
			put(r.buf)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read did not end at Close")
	}
	if n := out.Load(); n != 0 {
		t.Fatalf("%d buffers never given back", n)
	}
}
