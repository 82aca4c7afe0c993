package socks6

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// assocConn turns an association of another backend (the `via` hop) into a
// connected datagram socket to one address, the proxy's UDP relay endpoint:
// Write sends to it, Read returns what it sends back. Datagrams from other
// sources are dropped. An ICMP error about the relay endpoint makes Read
// fail with ECONNREFUSED once, as a connected UDP socket would, so that
// the client can fall back to the control connection early.
//
// A goroutine reads the association into an inbox, which gives Read its
// deadlines (pion/dtls needs them to end a handshake).
type assocConn struct {
	a     gateway.Association
	relay gateway.Addr
	in    *inbox
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newAssocConn(a gateway.Association, relay gateway.Addr) *assocConn {
	c := &assocConn{a: a, relay: relay, done: make(chan struct{})}
	c.in = newInbox(c.done)
	c.wg.Add(1)
	go c.pump()
	return c
}

// pump reads the association until it ends.
func (c *assocConn) pump() {
	defer c.wg.Done()
	buf := make([]byte, maxRead)
	for {
		pkt, err := c.a.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				c.close()
				return
			}
			select {
			case <-c.done:
				return
			default:
				continue
			}
		}
		m := getInMsg()
		switch pkt.Kind {
		case gateway.PacketICMP:
			if !c.isRelay(gateway.AddrFromAddrPort(pkt.ICMP.Dest)) {
				putInMsg(m)
				continue
			}
			m.kind, m.icmp = gateway.PacketICMP, pkt.ICMP
		default:
			if !c.isRelay(pkt.From) {
				putInMsg(m)
				continue
			}
			m.kind, m.from = gateway.PacketData, pkt.From
			m.buf = append(m.buf[:0], buf[:pkt.N]...)
		}
		c.in.put(m)
	}
}

// isRelay reports whether a is the relay endpoint. A relay named by a
// domain name is matched by its port only: the datagram still has to carry
// the association's ID.
func (c *assocConn) isRelay(a gateway.Addr) bool {
	if c.relay.IsName() {
		return a.Port == c.relay.Port
	}
	return a.IP.Unmap() == c.relay.IP.Unmap() && a.Port == c.relay.Port
}

// Read returns the next datagram from the relay endpoint.
func (c *assocConn) Read(b []byte) (int, error) {
	m, err := c.in.get()
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "udp", Addr: c.RemoteAddr(), Err: err}
	}
	defer putInMsg(m)
	if m.kind == gateway.PacketICMP {
		return 0, &net.OpError{Op: "read", Net: "udp", Addr: c.RemoteAddr(), Err: syscall.ECONNREFUSED}
	}
	return copy(b, m.buf), nil
}

// Write sends b to the relay endpoint.
func (c *assocConn) Write(b []byte) (int, error) {
	if err := c.a.WriteTo(b, c.relay, gateway.DatagramMeta{}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *assocConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.a.Close()
	})
}

// Close ends the association and waits for the reading goroutine.
func (c *assocConn) Close() error {
	c.close()
	c.wg.Wait()
	return nil
}

// LocalAddr is the association's remote-facing address where known.
func (c *assocConn) LocalAddr() net.Addr {
	if ra, ok := c.a.RelayAddr(); ok && ra.IP.IsValid() {
		return net.UDPAddrFromAddrPort(ra.AddrPort())
	}
	return &net.UDPAddr{}
}

// RemoteAddr is the relay endpoint.
func (c *assocConn) RemoteAddr() net.Addr {
	if c.relay.IP.IsValid() {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.relay.IP, c.relay.Port))
	}
	return nameAddr(c.relay.String())
}

func (c *assocConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline sets the deadline of Read.
func (c *assocConn) SetReadDeadline(t time.Time) error {
	c.in.setDeadline(t)
	return nil
}

// SetWriteDeadline does nothing: Write never blocks for long (the
// association drops what it cannot send).
func (c *assocConn) SetWriteDeadline(time.Time) error { return nil }

// nameAddr is a net.Addr for a host:port whose host is a name.
type nameAddr string

func (a nameAddr) Network() string { return "udp" }
func (a nameAddr) String() string  { return string(a) }
