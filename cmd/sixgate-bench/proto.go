package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	bsocks5 "github.com/sixgate/sixgate/backends/socks5"
	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
)

// dialer opens streams to a destination through the proxy under test (or
// directly). initial are the first bytes for the destination: sent with the
// request where the protocol can (SOCKS 6 initial data), right after it
// otherwise.
type dialer interface {
	dial(ctx context.Context, dst netip.AddrPort, initial []byte) (net.Conn, error)
}

// newSOCKS5Backend is the SOCKS 5 client: sixgate's own SOCKS 5 backend
// pointed at the proxy under test.
func newSOCKS5Backend(c *common) (*bsocks5.Backend, error) {
	return bsocks5.New("bench", bsocks5.Config{
		Server: c.proxy, Username: c.user, Password: c.pass,
		DialTimeout: c.timeout.String(),
	}, bsocks5.Options{})
}

// newDialer returns the dialer for c.proto.
func newDialer(c *common) (dialer, error) {
	switch c.proto {
	case "direct":
		return directDialer{}, nil
	case "socks5":
		b, err := newSOCKS5Backend(c)
		if err != nil {
			return nil, err
		}
		return socks5Dialer{b}, nil
	case "socks6":
		cl, err := newSOCKS6Client(c)
		if err != nil {
			return nil, err
		}
		return socks6Dialer{cl}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", c.proto)
}

func newSOCKS6Client(c *common) (*bsocks6.Client, error) {
	return bsocks6.NewClient(bsocks6.ClientConfig{
		Server: c.proxy, Username: c.user, Password: c.pass,
		Session: c.session, WindowSize: uint32(c.window), TFO: c.tfo,
		HandshakeTimeout: c.timeout,
	})
}

type directDialer struct{}

func (directDialer) dial(ctx context.Context, dst netip.AddrPort, initial []byte) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return nil, err
	}
	if len(initial) > 0 {
		if _, err := conn.Write(initial); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

// socks5Dialer is the project's SOCKS 5 client: the socks5 backend.
type socks5Dialer struct{ b *bsocks5.Backend }

func (d socks5Dialer) dial(ctx context.Context, dst netip.AddrPort, initial []byte) (net.Conn, error) {
	st, err := d.b.Dial(ctx, &gateway.StreamRequest{Dest: gateway.AddrFromAddrPort(dst), InitialData: initial})
	if err != nil {
		return nil, err
	}
	return st.Conn, nil
}

// socks6Dialer is the project's SOCKS 6 client.
type socks6Dialer struct{ c *bsocks6.Client }

func (d socks6Dialer) dial(ctx context.Context, dst netip.AddrPort, initial []byte) (net.Conn, error) {
	conn, err := d.c.Connect(ctx, gateway.AddrFromAddrPort(dst), &bsocks6.ConnectOptions{InitialData: initial})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// assoc is one UDP association as the load sees it.
type assoc interface {
	// send sends one datagram to dst.
	send(b []byte, dst netip.AddrPort) error
	// recv reads the next datagram's payload into b.
	recv(b []byte) (int, error)
	// close ends the association.
	close() error
}

// batchAssoc is an assoc that also sends and reads in batches, as a
// load that should not be the bottleneck does: sendBatch sends every
// datagram of bs to dst with as few system calls as it can, and serve
// calls fn with each payload received until the association ends.
type batchAssoc interface {
	assoc
	sendBatch(bs [][]byte, dst netip.AddrPort) error
	serve(fn func(payload []byte)) error
}

// associator opens UDP associations.
type associator interface {
	associate(ctx context.Context) (assoc, error)
}

func newAssociator(c *common) (associator, error) {
	switch c.proto {
	case "direct":
		return directAssociator{}, nil
	case "socks5":
		b, err := newSOCKS5Backend(c)
		if err != nil {
			return nil, err
		}
		return backendAssociator{b}, nil
	case "socks6":
		over, err := udpOver(c.udpOver)
		if err != nil {
			return nil, err
		}
		cl, err := newSOCKS6Client(c)
		if err != nil {
			return nil, err
		}
		return socks6Associator{cl, over}, nil
	case "turn":
		return turnAssociator{server: c.proxy, user: c.user, pass: c.pass}, nil
	}
	return nil, fmt.Errorf("unknown protocol %q", c.proto)
}

func udpOver(s string) (bsocks6.UDPTransport, error) {
	switch s {
	case "", "udp":
		return bsocks6.UDPOverUDP, nil
	case "tcp":
		return bsocks6.UDPOverTCP, nil
	}
	return 0, fmt.Errorf("-udp-over %q: want udp or tcp", s)
}

// socks6Associator opens UDP associations with the project's SOCKS 6
// client; datagrams travel over UDP to the relay endpoint (the proxy's
// address) or over the control connection.
type socks6Associator struct {
	c    *bsocks6.Client
	over bsocks6.UDPTransport
}

func (sa socks6Associator) associate(ctx context.Context) (assoc, error) {
	u, err := sa.c.UDPAssociate(ctx, &bsocks6.UDPOptions{Over: sa.over})
	if err != nil {
		return nil, err
	}
	return socks6Assoc{u}, nil
}

type socks6Assoc struct{ u *bsocks6.UDPAssoc }

func (a socks6Assoc) send(b []byte, dst netip.AddrPort) error {
	return a.u.WriteTo(b, gateway.AddrFromAddrPort(dst))
}

func (a socks6Assoc) recv(b []byte) (int, error) {
	for {
		p, err := a.u.ReadFrom(b)
		if err != nil {
			return 0, err
		}
		if p.Kind == gateway.PacketData {
			return p.N, nil
		}
	}
}

func (a socks6Assoc) close() error { return a.u.Close() }

func (a socks6Assoc) sendBatch(bs [][]byte, dst netip.AddrPort) error {
	defer a.u.Flush()
	to := gateway.AddrFromAddrPort(dst)
	for _, b := range bs {
		if err := a.u.WriteToLater(b, to); err != nil {
			return err
		}
	}
	return nil
}

func (a socks6Assoc) serve(fn func(payload []byte)) error {
	l := benchBufs.BatchLender()
	return a.u.ServePackets(l.Get, l.Put, func(i int, pkt gateway.Packet) {
		if pkt.Kind == gateway.PacketData {
			fn(l.Buf(i)[:pkt.N])
		}
	})
}

type directAssociator struct{}

func (directAssociator) associate(context.Context) (assoc, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return directAssoc{pc, gateway.NewSendBatch(64)}, nil
}

type directAssoc struct {
	pc *net.UDPConn
	sb *gateway.SendBatch // sendBatch's, from the one sending goroutine
}

func (a directAssoc) send(b []byte, dst netip.AddrPort) error {
	_, err := a.pc.WriteToUDPAddrPort(b, dst)
	return err
}

func (a directAssoc) recv(b []byte) (int, error) {
	n, _, err := a.pc.ReadFromUDPAddrPort(b)
	return n, err
}

func (a directAssoc) close() error { return a.pc.Close() }

func (a directAssoc) sendBatch(bs [][]byte, dst netip.AddrPort) error {
	defer a.sb.Reset()
	for _, b := range bs {
		a.sb.Add(b)
	}
	_, err := a.sb.Send(a.pc, dst, nil)
	return err
}

func (a directAssoc) serve(fn func(payload []byte)) error {
	bufs := make([][]byte, gateway.ReadBatch)
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	return gateway.ServeUDP(context.Background(), a.pc, func() [][]byte { return bufs }, func() {}, 0,
		func(_ int, b []byte, _ netip.AddrPort, _ []byte) { fn(b) })
}

// backendAssociator opens associations with a gateway.Backend's client side
// (the socks5 backend).
type backendAssociator struct{ b gateway.Backend }

func (ba backendAssociator) associate(ctx context.Context) (assoc, error) {
	a, err := ba.b.Associate(ctx, &gateway.AssocRequest{})
	if err != nil {
		return nil, err
	}
	return backendAssoc{a}, nil
}

type backendAssoc struct{ a gateway.Association }

func (a backendAssoc) send(b []byte, dst netip.AddrPort) error {
	return a.a.WriteTo(b, gateway.AddrFromAddrPort(dst), gateway.DatagramMeta{})
}

func (a backendAssoc) recv(b []byte) (int, error) {
	for {
		p, err := a.a.ReadFrom(b)
		if err != nil {
			return 0, err
		}
		if p.Kind == gateway.PacketData {
			return p.N, nil
		}
	}
}

func (a backendAssoc) close() error { return a.a.Close() }

// sendBatch holds the datagrams and flushes them once where the backend's
// association is a gateway.BatchWriter, else sends them one by one.
func (a backendAssoc) sendBatch(bs [][]byte, dst netip.AddrPort) error {
	to := gateway.AddrFromAddrPort(dst)
	bw := gateway.BatchWriterOf(a.a)
	if bw == nil {
		for _, b := range bs {
			if err := a.a.WriteTo(b, to, gateway.DatagramMeta{}); err != nil {
				return err
			}
		}
		return nil
	}
	defer bw.Flush()
	for _, b := range bs {
		if err := bw.WriteToLater(b, to, gateway.DatagramMeta{}); err != nil {
			return err
		}
	}
	return nil
}

func (a backendAssoc) serve(fn func(payload []byte)) error {
	return gateway.ServePackets(a.a, benchBufs, func(buf []byte, pkt gateway.Packet) {
		if pkt.Kind == gateway.PacketData {
			fn(buf[:pkt.N])
		}
	}, nil)
}

// benchBufs are the buffers batched reads lend.
var benchBufs = gateway.NewBufPool(0, 2048)

// withTimeout bounds one setup step.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
