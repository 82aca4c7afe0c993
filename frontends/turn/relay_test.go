package turn

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestRelay allocates, installs permissions and channels, and relays both
// ways with Send/Data indications and ChannelData, over UDP and TCP.
func TestRelay(t *testing.T) {
	ts := startServer(t, "", "", nil)
	peer := apOf(echoPeer(t))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := dialClient(t, network, ts.udp, "alice", "s3cret")
			c.fingerprint = network == "udp"
			r := c.allocate()
			if len(r.Relayed) != 1 || !r.Relayed[0].Addr().Is4() {
				t.Fatalf("relayed %v", r.Relayed)
			}
			if r.Lifetime != 600 {
				t.Fatalf("lifetime %d", r.Lifetime)
			}
			if r.Mapped != apOf(c.conn) {
				t.Fatalf("mapped %v, want %v", r.Mapped, apOf(c.conn))
			}
			c.permit(peer)
			for i := range 3 {
				msg := []byte(fmt.Sprintf("hello %d", i))
				c.send(peer, msg, false)
				from, ch, data, _ := c.readData(3 * time.Second)
				if from != peer || ch != 0 {
					t.Fatalf("from %v ch %d", from, ch)
				}
				mustEqual(t, data, msg)
			}
			c.bind(0x4001, peer)
			for i := range 3 {
				msg := []byte(fmt.Sprintf("chan %d!", i))
				c.sendChannel(0x4001, msg)
				_, ch, data, _ := c.readData(3 * time.Second)
				if ch != 0x4001 {
					t.Fatalf("channel %#x", ch)
				}
				mustEqual(t, data, msg)
			}
			// A large datagram is relayed whole.
			big := make([]byte, 9000)
			for i := range big {
				big[i] = byte(i)
			}
			c.sendChannel(0x4001, big)
			_, _, data, _ := c.readData(3 * time.Second)
			mustEqual(t, data, big)
		})
	}
	_ = netip.AddrPort{}
}

// TestHairpin relays between two allocations of one frontend (two clients
// of one TURN server talking relay to relay, as WebRTC peers do): the
// gateway never sends to its own sockets, so the engine delivers in-process,
// still subject to the receiver's permissions.
func TestHairpin(t *testing.T) {
	ts := startServer(t, "", "", nil)
	a := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	b := dialClient(t, "udp", ts.udp, "bob", "hunter2")
	ra := a.allocate().Relayed[0]
	rb := b.allocate().Relayed[0]
	a.permit(rb)
	a.send(rb, []byte("no permission yet"), false)
	b.noResponse(200 * time.Millisecond)
	b.permit(ra)
	a.send(rb, []byte("a to b"), false)
	from, _, data, _ := b.readData(2 * time.Second)
	if from != ra {
		t.Fatalf("from %v, want %v", from, ra)
	}
	mustEqual(t, data, []byte("a to b"))
	b.bind(0x4000, ra)
	a.bind(0x4000, rb)
	b.sendChannel(0x4000, []byte("b to a"))
	_, ch, data, _ := a.readData(2 * time.Second)
	if ch != 0x4000 {
		t.Fatalf("channel %#x", ch)
	}
	mustEqual(t, data, []byte("b to a"))
}
