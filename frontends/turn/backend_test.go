package turn

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"golang.org/x/sys/unix"
)

// fakeBackend is a test backend with real UDP sockets on loopback: port
// parity with reservations, DF as a socket option, IPv6 when enabled, and
// ICMP errors injected by the test.
type fakeBackend struct {
	name  string
	noDF  bool
	noV6  bool
	mu    sync.Mutex
	resv  map[[8]byte]*net.UDPConn
	last  *fakeAssoc
	metas []gateway.DatagramMeta
	// noStreams makes Dial and Listen unsupported; wildcardListen listens
	// on 0.0.0.0.
	noStreams      bool
	wildcardListen bool
	dialDelay      time.Duration
	dialErr        error
	sources        []netip.AddrPort
	backlogs       []gateway.Opt[uint16]
}

var _ gateway.Backend = (*fakeBackend)(nil)

func (b *fakeBackend) Name() string { return b.name }

func (b *fakeBackend) Dial(ctx context.Context, req *gateway.StreamRequest) (*gateway.Stream, error) {
	if b.noStreams {
		return nil, gateway.NewError(gateway.ReasonCommandNotSupported, "fake", nil)
	}
	dst := req.Dest.AddrPort()
	if err := gateway.PolicyOrAll(req.Policy).Allow(dst); err != nil {
		return nil, gateway.NewError(gateway.ReasonNotAllowed, "fake", err)
	}
	b.mu.Lock()
	b.sources = append(b.sources, req.Source)
	delay, derr := b.dialDelay, b.dialErr
	b.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, gateway.NewError(gateway.ReasonOf(ctx.Err()), "fake: dial", ctx.Err())
		}
	}
	if derr != nil {
		return nil, derr
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", dst.String())
	if err != nil {
		return nil, gateway.NewError(gateway.ReasonOf(err), "fake: dial", err)
	}
	return &gateway.Stream{Conn: c, Peer: req.Dest, Bound: gateway.AddrFromNet(c.LocalAddr())}, nil
}

func (b *fakeBackend) Listen(ctx context.Context, req *gateway.BindRequest) (gateway.Binding, error) {
	if b.noStreams {
		return nil, gateway.NewError(gateway.ReasonCommandNotSupported, "fake", nil)
	}
	host := "127.0.0.1"
	if req.Bind.IP.Is6() && !req.Bind.IP.Is4In6() {
		if b.noV6 {
			return nil, gateway.NewError(gateway.ReasonFamilyMismatch, "fake", errors.New("no ipv6"))
		}
		host = "::1"
	}
	if b.wildcardListen {
		host = "0.0.0.0"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.backlogs = append(b.backlogs, req.Options.Backlog)
	b.mu.Unlock()
	return &fakeBinding{ln: ln.(*net.TCPListener), pol: gateway.PolicyOrAll(req.Policy)}, nil
}

// fakeBinding is a listening TCP socket on loopback.
type fakeBinding struct {
	ln  *net.TCPListener
	pol gateway.Policy
}

func (l *fakeBinding) Addr() gateway.Addr            { return gateway.AddrFromNet(l.ln.Addr()) }
func (l *fakeBinding) Options() gateway.StackOptions { return gateway.StackOptions{} }
func (l *fakeBinding) Close() error                  { return l.ln.Close() }

func (l *fakeBinding) Accept(ctx context.Context) (*gateway.Stream, error) {
	stop := context.AfterFunc(ctx, func() { l.ln.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			return nil, err
		}
		peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		if l.pol.Allow(peer) != nil {
			c.Close()
			continue
		}
		return &gateway.Stream{Conn: c, Peer: gateway.AddrFromAddrPort(peer), Bound: gateway.AddrFromNet(c.LocalAddr())}, nil
	}
}

func (b *fakeBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, c := range b.resv {
		c.Close()
		delete(b.resv, k)
	}
	return nil
}

func (b *fakeBackend) Associate(ctx context.Context, req *gateway.AssocRequest) (gateway.Association, error) {
	opts := req.Options
	host := "127.0.0.1"
	if req.Family == 6 {
		if b.noV6 {
			return nil, gateway.NewError(gateway.ReasonFamilyMismatch, "fake", errors.New("no ipv6"))
		}
		host = "[::1]"
	}
	var pc *net.UDPConn
	var res *gateway.Reservation
	switch {
	case req.ReservationToken != nil:
		b.mu.Lock()
		pc = b.resv[*req.ReservationToken]
		delete(b.resv, *req.ReservationToken)
		b.mu.Unlock()
		if pc == nil {
			return nil, gateway.NewError(gateway.ReasonCapacityExhausted, "fake", errors.New("unknown token"))
		}
	case opts.PortParity.Wanted():
		want := opts.PortParity.Value
		for range 200 {
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(host+":0")))
			if err != nil {
				return nil, err
			}
			port := c.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			if port%2 != 0 {
				c.Close()
				continue
			}
			if want.Reserve {
				next, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.LocalAddr().(*net.UDPAddr).AddrPort().Addr(), port+1)))
				if err != nil {
					c.Close()
					continue
				}
				r := gateway.Reservation{Addr: next.LocalAddr().(*net.UDPAddr).AddrPort()}
				rand.Read(r.Token[:])
				b.mu.Lock()
				if b.resv == nil {
					b.resv = map[[8]byte]*net.UDPConn{}
				}
				b.resv[r.Token] = next
				b.mu.Unlock()
				res = &r
			}
			pc = c
			opts.PortParity.Apply(gateway.PortParity{Parity: gateway.ParityEven, Reserve: want.Reserve})
			break
		}
		if pc == nil {
			return nil, gateway.NewError(gateway.ReasonCapacityExhausted, "fake", errors.New("no even port"))
		}
	default:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(host+":0")))
		if err != nil {
			return nil, err
		}
		pc = c
	}
	if opts.DF.Wanted() {
		if b.noDF {
			opts.DF.Decline(false)
		} else {
			rc, _ := pc.SyscallConn()
			rc.Control(func(fd uintptr) {
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO)
			})
			opts.DF.Apply(true)
		}
	}
	if opts.UDPError.Wanted() {
		opts.UDPError.Apply(true)
	}
	opts.UnsupportPending()
	a := &fakeAssoc{b: b, pc: pc, opts: opts, res: res, pol: gateway.PolicyOrAll(req.Policy)}
	b.mu.Lock()
	b.last = a
	b.mu.Unlock()
	return a, nil
}

// injectICMP makes the last association report an ICMP error.
func (b *fakeBackend) injectICMP(e gateway.ICMPError) {
	b.mu.Lock()
	a := b.last
	b.mu.Unlock()
	a.mu.Lock()
	a.icmp = append(a.icmp, e)
	a.mu.Unlock()
	a.pc.SetReadDeadline(time.Now())
}

func (b *fakeBackend) lastMeta() (gateway.DatagramMeta, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.metas) == 0 {
		return gateway.DatagramMeta{}, false
	}
	return b.metas[len(b.metas)-1], true
}

type fakeAssoc struct {
	b    *fakeBackend
	pc   *net.UDPConn
	opts gateway.StackOptions
	res  *gateway.Reservation
	pol  gateway.Policy
	mu   sync.Mutex
	icmp []gateway.ICMPError
	// held is what WriteToLater keeps until Flush.
	held []heldDatagram
}

type heldDatagram struct {
	p    []byte
	dst  gateway.Addr
	meta gateway.DatagramMeta
}

// WriteToLater and Flush make the fake a gateway.BatchWriter, as the
// direct backend is: datagrams wait until Flush. p is kept, not copied,
// so a frontend that reuses it too early sends corrupt data.
func (a *fakeAssoc) WriteToLater(p []byte, dst gateway.Addr, meta gateway.DatagramMeta) error {
	if err := a.pol.Allow(dst.AddrPort()); err != nil {
		return err
	}
	a.mu.Lock()
	a.held = append(a.held, heldDatagram{p, dst, meta})
	a.mu.Unlock()
	return nil
}

func (a *fakeAssoc) Flush() {
	a.mu.Lock()
	held := a.held
	a.held = nil
	a.mu.Unlock()
	for _, h := range held {
		a.WriteTo(h.p, h.dst, h.meta)
	}
}

func (a *fakeAssoc) RelayAddr() (gateway.Addr, bool) {
	ap := a.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return gateway.Addr{IP: ap.Addr().Unmap(), Port: ap.Port()}, true
}

func (a *fakeAssoc) Options() gateway.StackOptions { return a.opts }

func (a *fakeAssoc) Reservation() (gateway.Reservation, bool) {
	if a.res == nil {
		return gateway.Reservation{}, false
	}
	return *a.res, true
}

func (a *fakeAssoc) WriteTo(p []byte, dst gateway.Addr, meta gateway.DatagramMeta) error {
	if err := a.pol.Allow(dst.AddrPort()); err != nil {
		return err
	}
	a.b.mu.Lock()
	if len(a.b.metas) < 1000 {
		a.b.metas = append(a.b.metas, meta)
	}
	a.b.mu.Unlock()
	_, err := a.pc.WriteToUDPAddrPort(p, dst.AddrPort())
	return err
}

func (a *fakeAssoc) ReadFrom(p []byte) (gateway.Packet, error) {
	for {
		a.mu.Lock()
		if len(a.icmp) > 0 {
			e := a.icmp[0]
			a.icmp = a.icmp[1:]
			a.mu.Unlock()
			return gateway.Packet{Kind: gateway.PacketICMP, ICMP: e}, nil
		}
		a.mu.Unlock()
		n, from, err := a.pc.ReadFromUDPAddrPort(p)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				a.pc.SetReadDeadline(time.Time{})
				continue
			}
			return gateway.Packet{}, err
		}
		return gateway.Packet{Kind: gateway.PacketData, N: n, From: gateway.Addr{IP: from.Addr().Unmap(), Port: from.Port()}}, nil
	}
}

func (a *fakeAssoc) Close() error { return a.pc.Close() }
