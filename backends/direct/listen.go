package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sixgate/sixgate/gateway"
)

// portTries is how many random ports of port_range Listen tries before it
// gives up with ReasonCapacityExhausted.
const portTries = 64

// Listen opens a listening TCP socket for BIND.
//
// The address is req.Bind: an unspecified or zero address means bind_ipv4 (or
// bind_ipv6 for "::", or for a zero address when only bind_ipv6 is set), else
// any address of the family (IPv4 for a zero address). When bind_ipv4 or
// bind_ipv6 is configured, a specific address of that family other than the
// configured one is refused with ReasonNotAllowed. Port 0 means a random port
// of port_range, or the kernel's choice without one; a requested port must lie
// in port_range, or without one be 1024 or above.
//
// With the Backlog option requested with a value above zero the socket keeps
// listening and queues peers (Backlog Applied with the queue length in effect,
// which the kernel caps at net.core.somaxconn); otherwise the binding is
// one-shot: it stops listening after the first accepted peer (a Backlog of 0
// is Declined). MPTCP is Applied when the listening socket really is Multipath
// TCP. TOS, TTL and DF are set on the listening socket, so accepted peers
// inherit them, and recorded as for Dial. Every other option is Unsupported.
func (b *Backend) Listen(ctx context.Context, req *gateway.BindRequest) (gateway.Binding, error) {
	ip, err := b.listenIP(req.Bind)
	if err != nil {
		return nil, err
	}
	ports, err := b.listenPorts(req.Bind.Port)
	if err != nil {
		return nil, err
	}
	v6 := ip.Is6()
	network := "tcp4"
	if v6 {
		network = "tcp6"
	}

	opts := req.Options
	var sockOpts gateway.StackOptions
	lc := net.ListenConfig{
		Control: func(network, address string, c syscall.RawConn) error {
			sockOpts = opts
			if err := c.Control(func(fd uintptr) { applyIPOptions(fd, v6, &sockOpts) }); err != nil {
				return err
			}
			if b.control != nil {
				return b.control(ctx, network, address, c)
			}
			return nil
		},
	}
	// Go listens with MPTCP by default; only do so when asked, since an
	// MPTCP socket supports fewer socket options.
	lc.SetMultipathTCP(opts.MPTCP.Wanted() && opts.MPTCP.Value)
	var ln net.Listener
	for _, port := range ports {
		ln, err = lc.Listen(ctx, network, netip.AddrPortFrom(ip, port).String())
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	if err != nil {
		reason := reasonFor(err)
		if req.Bind.Port == 0 && b.portLo != 0 && errors.Is(err, syscall.EADDRINUSE) {
			reason = gateway.ReasonCapacityExhausted
		}
		return nil, b.listenFailed(reason, err)
	}
	tl := ln.(*net.TCPListener)
	opts.TOS, opts.TTL, opts.DF = sockOpts.TOS, sockOpts.TTL, sockOpts.DF

	rc, err := tl.SyscallConn()
	if err != nil {
		tl.Close()
		return nil, b.listenFailed(gateway.ReasonGeneral, err)
	}
	queue := 1 // one-shot: the peer being accepted
	if opts.Backlog.Pending() && opts.Backlog.Value > 0 {
		queue = int(opts.Backlog.Value)
	}
	n, err := setBacklog(rc, queue)
	if err != nil {
		tl.Close()
		return nil, b.listenFailed(gateway.ReasonGeneral, err)
	}
	if opts.Backlog.Pending() {
		if opts.Backlog.Value > 0 {
			opts.Backlog.Apply(uint16(min(n, 0xffff)))
		} else {
			opts.Backlog.Decline(0)
		}
	}
	if opts.MPTCP.Wanted() {
		switch {
		case !opts.MPTCP.Value:
			opts.MPTCP.Apply(false)
		case isMPTCP(rc):
			opts.MPTCP.Apply(true)
		default:
			opts.MPTCP.Decline(false)
		}
	}
	opts.UnsupportPending()

	l := &binding{
		b:       b,
		ln:      tl,
		addr:    b.advertised(tl.Addr().(*net.TCPAddr).AddrPort()),
		opts:    opts,
		policy:  gateway.PolicyOrAll(req.Policy),
		oneShot: opts.Backlog.Outcome != gateway.Applied,
	}
	l.log = b.log.With("listen", l.addr.String(), "user", req.Principal.User)
	l.log.Debug("bind listening", "one_shot", l.oneShot, "queue", n)
	return l, nil
}

// listenIP returns the address to listen on for a BIND request.
func (b *Backend) listenIP(want gateway.Addr) (netip.Addr, error) {
	if want.IsName() {
		return netip.Addr{}, b.listenFailed(gateway.ReasonAddrTypeNotSupported,
			fmt.Errorf("cannot listen on a name (%s)", want.Name))
	}
	ip := want.IP.Unmap()
	pick := func(configured, any netip.Addr) (netip.Addr, error) {
		switch {
		case ip.IsUnspecified() && configured.IsValid():
			return configured, nil
		case ip.IsUnspecified():
			return any, nil
		case configured.IsValid() && ip != configured:
			return netip.Addr{}, b.listenFailed(gateway.ReasonNotAllowed,
				fmt.Errorf("address %s is not the configured bind address %s", ip, configured))
		}
		return ip, nil
	}
	switch {
	case !ip.IsValid() && !b.bind4.IsValid() && b.bind6.IsValid():
		return b.bind6, nil
	case !ip.IsValid():
		ip = netip.IPv4Unspecified()
		return pick(b.bind4, ip)
	case ip.Is4():
		return pick(b.bind4, netip.IPv4Unspecified())
	}
	return pick(b.bind6, netip.IPv6Unspecified())
}

// listenPorts returns the ports to try, in order, for a requested port.
func (b *Backend) listenPorts(want uint16) ([]uint16, error) {
	switch {
	case want != 0 && b.portLo != 0 && (want < b.portLo || want > b.portHi):
		return nil, b.listenFailed(gateway.ReasonNotAllowed,
			fmt.Errorf("port %d is outside port_range %d-%d", want, b.portLo, b.portHi))
	case want != 0 && b.portLo == 0 && want < 1024:
		return nil, b.listenFailed(gateway.ReasonNotAllowed,
			fmt.Errorf("port %d is privileged", want))
	case want != 0 || b.portLo == 0:
		return []uint16{want}, nil
	}
	size := int(b.portHi) - int(b.portLo) + 1
	ports := make([]uint16, min(size, portTries))
	if size <= portTries {
		for i := range ports {
			ports[i] = b.portLo + uint16(i)
		}
		rand.Shuffle(len(ports), func(i, j int) { ports[i], ports[j] = ports[j], ports[i] })
		return ports, nil
	}
	for i := range ports {
		ports[i] = b.portLo + uint16(rand.IntN(size))
	}
	return ports, nil
}

func (b *Backend) listenFailed(reason gateway.Reason, err error) error {
	b.log.Debug("bind listen failed", "reason", reason.String(), "err", err)
	return gateway.NewError(reason, "direct: listen", err)
}

// binding is a BIND listening socket.
type binding struct {
	b       *Backend
	log     *slog.Logger
	ln      *net.TCPListener
	addr    gateway.Addr
	opts    gateway.StackOptions
	policy  gateway.Policy
	oneShot bool

	acceptMu  sync.Mutex // one Accept at a time
	closeOnce sync.Once
	closeErr  error
	denied    atomic.Uint64
}

var _ gateway.Binding = (*binding)(nil)

// Addr returns the listening address as remote hosts see it.
func (l *binding) Addr() gateway.Addr { return l.addr }

// Options returns the outcomes of the stack options.
func (l *binding) Options() gateway.StackOptions { return l.opts }

// Accept waits for the next peer the policy allows. Denied peers are closed,
// counted and skipped. A one-shot binding stops listening after the first
// peer it returns. Concurrent calls are served one after another.
func (l *binding) Accept(ctx context.Context) (*gateway.Stream, error) {
	l.acceptMu.Lock()
	defer l.acceptMu.Unlock()
	for {
		var c *net.TCPConn
		err := withContext(ctx, l.ln.SetDeadline, func() error {
			var err error
			c, err = l.ln.AcceptTCP()
			return err
		})
		if err != nil {
			return nil, gateway.NewError(reasonFor(err), "direct: accept", err)
		}
		remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
		peer := netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
		if err := l.policy.Allow(peer); err != nil {
			c.Close()
			l.log.Info("bind peer denied", "peer", peer.String(), "denied_total", l.denied.Add(1), "err", err)
			continue
		}
		if l.oneShot {
			l.close()
		}
		return &gateway.Stream{
			Conn:    c,
			Bound:   l.b.advertised(c.LocalAddr().(*net.TCPAddr).AddrPort()),
			Peer:    gateway.AddrFromAddrPort(peer),
			Options: l.opts,
		}, nil
	}
}

// Close stops listening; peers still queued in the kernel are reset.
func (l *binding) Close() error { return l.close() }

func (l *binding) close() error {
	l.closeOnce.Do(func() { l.closeErr = l.ln.Close() })
	return l.closeErr
}
