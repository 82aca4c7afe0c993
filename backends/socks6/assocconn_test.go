package socks6

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// fakeAssoc is a gateway.Association fed by the test.
type fakeAssoc struct {
	in     chan gateway.Packet
	data   chan []byte
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	sent   []gateway.Addr
}

func newFakeAssoc() *fakeAssoc {
	return &fakeAssoc{in: make(chan gateway.Packet, 8), data: make(chan []byte, 8), closed: make(chan struct{})}
}

func (f *fakeAssoc) RelayAddr() (gateway.Addr, bool)          { return ipAddr("192.0.2.1", 4000), true }
func (f *fakeAssoc) Options() gateway.StackOptions            { return gateway.StackOptions{} }
func (f *fakeAssoc) Reservation() (gateway.Reservation, bool) { return gateway.Reservation{}, false }

func (f *fakeAssoc) WriteTo(b []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	f.mu.Lock()
	f.sent = append(f.sent, dst)
	f.mu.Unlock()
	return nil
}

func (f *fakeAssoc) ReadFrom(b []byte) (gateway.Packet, error) {
	select {
	case p := <-f.in:
		if p.Kind == gateway.PacketData {
			p.N = copy(b, <-f.data)
		}
		return p, nil
	case <-f.closed:
		return gateway.Packet{}, net.ErrClosed
	}
}

func (f *fakeAssoc) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeAssoc) push(from gateway.Addr, payload string) {
	f.in <- gateway.Packet{Kind: gateway.PacketData, From: from}
	f.data <- []byte(payload)
}

// TestAssocConn: the adapter that carries datagrams in a via backend's
// association sends to the relay endpoint only, drops datagrams from
// elsewhere, turns an ICMP error about the relay endpoint into
// ECONNREFUSED, honours read deadlines and ends with the association.
func TestAssocConn(t *testing.T) {
	relay := ipAddr("198.51.100.1", 1080)
	f := newFakeAssoc()
	c := newAssocConn(f, relay)
	defer c.Close()

	if _, err := c.Write([]byte("to relay")); err != nil {
		t.Fatal(err)
	}
	if f.sent[0] != relay {
		t.Fatalf("sent to %v", f.sent[0])
	}
	f.push(ipAddr("203.0.113.9", 1080), "foreign")
	f.push(relay, "from relay")
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "from relay" {
		t.Fatalf("Read: %q %v", buf[:n], err)
	}

	f.in <- gateway.Packet{Kind: gateway.PacketICMP, ICMP: gateway.ICMPError{Type: 3, Code: 3,
		Dest: netip.AddrPortFrom(relay.IP, relay.Port)}}
	if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("ICMP about the relay: %v", err)
	}

	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := c.Read(buf); done <- err }()
	time.Sleep(20 * time.Millisecond)
	f.Close() // the via association ends
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after the association ended: %v", err)
	}
}
