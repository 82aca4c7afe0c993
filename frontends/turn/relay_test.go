package turn

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"
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

// TestBatchFlushedBeforeRequest: datagrams from a UDP client wait in their
// relay until the listener's read batch ends, and a request in the batch
// sends them first: data sent just before a Refresh that ends the
// allocation is still relayed.
func TestBatchFlushedBeforeRequest(t *testing.T) {
	e := newFuzzEngine(t)
	e.src.batch = true
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	req := func(typ stun.MessageType, attrs ...stun.Setter) []byte {
		return stun.MustBuild(append([]stun.Setter{typ, stun.TransactionID}, attrs...)...).Raw
	}
	e.feed(req(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoUDP}), true)
	for deadline := time.Now().Add(2 * time.Second); e.f.st.get(e.src.tuple) == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no allocation") // made in the background
		}
	}
	e.feed(req(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: apOf(sink)}), true)

	// Send indications back to back in one batch: each one's data (held
	// in the decoded message) goes out intact.
	buf := make([]byte, 64)
	for _, d := range []string{"one", "two", "three"} {
		ind, _ := tt.AppendSendIndication(nil, [12]byte{1}, apOf(sink), []byte(d), false)
		e.feed(ind, false)
	}
	e.src.held.Flush()
	for _, want := range []string{"one", "two", "three"} {
		sink.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := sink.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("peer got %q (%v), want %q", buf[:n], err, want)
		}
	}

	cd, _ := tt.AppendChannelData(nil, 0x4000, []byte("held"), false)
	e.feed(cd, false)
	sink.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := sink.Read(buf); err == nil {
		t.Fatalf("%q relayed before the batch ended", buf[:n])
	}
	e.feed(req(tt.TypeRefreshRequest, tt.Lifetime(0)), true)
	if e.f.st.get(e.src.tuple) != nil {
		t.Fatal("Refresh(0) left the allocation")
	}
	e.src.held.Flush() // the batch ends
	sink.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := sink.Read(buf)
	if err != nil || string(buf[:n]) != "held" {
		t.Fatalf("peer got %q (%v), want the data sent before the Refresh", buf[:n], err)
	}
}
