package direct

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/sixgate/sixgate/gateway"
)

// sockFam is the kind of socket an association uses.
type sockFam uint8

// Association socket kinds.
const (
	fam4    sockFam = iota + 1 // AF_INET
	fam6                       // AF_INET6 with IPV6_V6ONLY
	famDual                    // AF_INET6 carrying IPv4 as IPv4-mapped addresses
)

func (f sockFam) network() string {
	switch f {
	case fam4:
		return "udp4"
	case fam6:
		return "udp6"
	}
	return "udp" // with an IPv6 wildcard address Go makes a dual-stack socket
}

func (f sockFam) has4() bool { return f != fam6 }
func (f sockFam) has6() bool { return f != fam4 }

// family is the address family the socket can send to: 4, 6, or 0 for
// both.
func (f sockFam) family() int {
	switch f {
	case fam4:
		return 4
	case fam6:
		return 6
	}
	return 0
}

func (f sockFam) String() string {
	switch f {
	case fam4:
		return "ipv4"
	case fam6:
		return "ipv6"
	}
	return "dual-stack"
}

// udpPlan is where a new association socket is bound.
type udpPlan struct {
	fam  sockFam
	ip   netip.Addr // the address to bind; unspecified = any
	port uint16     // 0 = any
	// relayV6 says which family the relay address is reported in.
	relayV6 bool
}

// Associate opens a UDP association: one unconnected UDP socket that sends to
// every destination the Policy allows and receives from anyone.
//
// Address family. Family 4 or 6 gives a socket of that family only (IPv6
// sockets are IPV6_V6ONLY), as TURN wants one relay per family. With Family 0
// a specific Bind address decides the family; an "any" request (zero Bind,
// 0.0.0.0 or ::) gets a dual-stack IPv6 socket bound to [::] that reaches
// IPv4 destinations too (as IPv4-mapped addresses), unless bind_ipv4 or
// bind_ipv6 is configured: then it gets one socket of one family, IPv4 on
// bind_ipv4 (IPv6 for "::", or when only bind_ipv6 is set), and datagrams to
// the other family fail with ReasonFamilyMismatch. The relay address of a
// dual-stack socket is reported in IPv4 unless Bind was "::".
//
// Address and port. A specific Bind address other than a configured
// bind_ipv4/bind_ipv6 is refused with ReasonNotAllowed. Port 0 takes a random
// free port of port_range (ReasonCapacityExhausted when none is free) or the
// kernel's choice; a named port must lie in port_range, or without one be
// 1024 or above.
//
// Port Parity. With the option pending and port 0, the port has the asked
// parity and, with Reserve, the counterpart (even: port+1, odd: port-1) is
// bound by a second socket and held until the association ends (SOCKS 6) or,
// for Principal.Protocol "turn", until ReservationTTL has passed whether or
// not the association still exists; Reservation reports it. Parity or
// reservation that cannot be had is Declined with the value in effect, not
// a failure. A named port ignores the parity (Applied when the port happens to
// have it, Declined otherwise) but still reserves its counterpart when
// asked. A request carrying a reservation's token, or naming a reserved port
// (not one reserved for TURN, which only its token takes), takes the held
// socket itself (address, family and port as reserved); a reservation with
// an Owner only goes to a request of that SOCKS 6 session, and a reserved
// port named by anyone else is refused (ReasonNotAllowed); an unknown, used
// or expired token fails with ReasonCapacityExhausted.
//
// Stack options: TOS, TTL and DF are socket options, Applied with the value
// read back (see Dial); UDPError is Applied with the value asked (ICMP
// errors are always delivered, the frontend decides what to report); every
// other option is Unsupported.
func (b *Backend) Associate(ctx context.Context, req *gateway.AssocRequest) (gateway.Association, error) {
	opts := req.Options
	var pp gateway.PortParity
	if opts.PortParity.Pending() {
		pp = opts.PortParity.Value
	}

	var (
		taken    *reservation
		pc, held *net.UDPConn
		plan     udpPlan
		explicit bool
	)
	if req.ReservationToken != nil {
		r, err := b.takeToken(*req.ReservationToken, req.Principal)
		if err != nil {
			return nil, err
		}
		taken = r
	} else {
		var err error
		if plan, err = b.assocPlan(req); err != nil {
			return nil, err
		}
		explicit = plan.port != 0
		if explicit {
			if taken, err = b.takePort(plan, req.Principal); err != nil {
				return nil, err
			}
		}
	}
	if taken != nil {
		pc, explicit = taken.pc, true
		plan = udpPlan{fam: taken.fam, ip: taken.bound.Addr(), port: taken.bound.Port(), relayV6: taken.relayV6}
	} else {
		var err error
		pc, held, plan.fam, err = b.bindParity(ctx, plan, pp)
		if err != nil {
			return nil, err
		}
	}
	if explicit && pp.Reserve {
		held = b.bindCounterpart(ctx, plan, udpPort(pc))
	}

	a, err := b.newAssociation(pc, plan, &opts, req)
	if err != nil {
		pc.Close()
		if held != nil {
			held.Close()
		}
		if taken != nil {
			b.ownRemove(taken.bound)
		}
		return nil, b.assocFailed(gateway.ReasonGeneral, err)
	}
	if taken == nil {
		b.ownAdd(a.bound)
	}
	if opts.PortParity.Pending() {
		got := gateway.PortParity{Parity: parityOf(udpPort(pc)), Reserve: held != nil}
		if (pp.Parity == gateway.ParityNone || pp.Parity == got.Parity) && (!pp.Reserve || got.Reserve) {
			opts.PortParity.Apply(got)
		} else {
			opts.PortParity.Decline(got)
		}
	}
	if held != nil {
		a.made = b.reserve(held, plan, a.relay.IP, req.Principal)
	}
	opts.UnsupportPending()
	a.opts = opts
	a.log.Debug("association opened", "local", a.bound.String(), "socket", a.fam.String(),
		"reserved", held != nil, "taken", taken != nil)
	return a, nil
}

// assocPlan decides the family, address and port of a new association
// socket.
func (b *Backend) assocPlan(req *gateway.AssocRequest) (udpPlan, error) {
	if req.Bind.IsName() {
		return udpPlan{}, b.assocFailed(gateway.ReasonAddrTypeNotSupported,
			fmt.Errorf("cannot bind a name (%s)", req.Bind.Name))
	}
	ip := req.Bind.IP.Unmap().WithZone("")
	specific := ip.IsValid() && !ip.IsUnspecified()
	p := udpPlan{port: req.Bind.Port}
	switch req.Family {
	case 0:
		switch {
		case specific && ip.Is4():
			p.fam = fam4
		case specific:
			p.fam = fam6
		case !b.bind4.IsValid() && !b.bind6.IsValid():
			p.fam, p.relayV6 = famDual, ip.Is6()
		case ip.Is6(), !ip.IsValid() && !b.bind4.IsValid():
			p.fam = fam6
		default:
			p.fam = fam4
		}
	case 4:
		if specific && !ip.Is4() {
			return udpPlan{}, b.assocFailed(gateway.ReasonFamilyMismatch,
				fmt.Errorf("address %s is not IPv4", ip))
		}
		p.fam = fam4
	case 6:
		if specific && !ip.Is6() {
			return udpPlan{}, b.assocFailed(gateway.ReasonFamilyMismatch,
				fmt.Errorf("address %s is not IPv6", ip))
		}
		p.fam = fam6
	default:
		return udpPlan{}, b.assocFailed(gateway.ReasonFamilyMismatch,
			fmt.Errorf("unknown address family %d", req.Family))
	}
	if p.fam == fam6 {
		p.relayV6 = true
	}

	configured, anyIP := b.bind4, netip.IPv4Unspecified()
	switch p.fam {
	case fam6:
		configured, anyIP = b.bind6, netip.IPv6Unspecified()
	case famDual:
		configured, anyIP = netip.Addr{}, netip.IPv6Unspecified()
	}
	switch {
	case specific && configured.IsValid() && ip != configured:
		return udpPlan{}, b.assocFailed(gateway.ReasonNotAllowed,
			fmt.Errorf("address %s is not the configured bind address %s", ip, configured))
	case specific:
		p.ip = ip
	case configured.IsValid():
		p.ip = configured
	default:
		p.ip = anyIP
	}

	switch want := p.port; {
	case want != 0 && b.portLo != 0 && (want < b.portLo || want > b.portHi):
		return udpPlan{}, b.assocFailed(gateway.ReasonNotAllowed,
			fmt.Errorf("port %d is outside port_range %d-%d", want, b.portLo, b.portHi))
	case want != 0 && b.portLo == 0 && want < 1024:
		return udpPlan{}, b.assocFailed(gateway.ReasonNotAllowed, fmt.Errorf("port %d is privileged", want))
	}
	return p, nil
}

// bindUDP binds one UDP socket of family fam at ip:port and returns it with
// the kind of socket it really is (a dual-stack request on a host without
// IPv6 gives an IPv4 socket).
func (b *Backend) bindUDP(ctx context.Context, fam sockFam, ip netip.Addr, port uint16) (*net.UDPConn, sockFam, error) {
	var lc net.ListenConfig
	if b.control != nil {
		lc.Control = func(network, address string, c syscall.RawConn) error {
			return b.control(ctx, network, address, c)
		}
	}
	c, err := lc.ListenPacket(ctx, fam.network(), netip.AddrPortFrom(ip, port).String())
	if err != nil {
		return nil, 0, err
	}
	pc := c.(*net.UDPConn)
	if fam == famDual && udpLocal(pc).Addr().Is4() {
		fam = fam4
	}
	return pc, fam, nil
}

// bindParity binds the socket of a new association: at the planned port, or
// at a port of the wanted parity with its counterpart held when pp asks for
// it. When the parity (or the reservation) cannot be had it settles for any
// port and no reservation; the caller records what it got.
func (b *Backend) bindParity(ctx context.Context, p udpPlan, pp gateway.PortParity) (pc, held *net.UDPConn, fam sockFam, err error) {
	if p.port != 0 || (pp.Parity == gateway.ParityNone && !pp.Reserve) {
		pc, fam, err = b.bindAnyPort(ctx, p)
		return pc, nil, fam, err
	}
	var spare []*net.UDPConn // kernel-chosen ports of the wrong parity, held so they are not offered again
	defer func() {
		for _, c := range spare {
			c.Close()
		}
	}()
	var ports []uint16
	if b.portLo != 0 {
		ports = b.parityPorts(pp)
	} else {
		ports = make([]uint16, portTries) // port 0: the kernel's choice
	}
	for _, port := range ports {
		c, f, err := b.bindUDP(ctx, p.fam, p.ip, port)
		if err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				continue
			}
			return nil, nil, 0, b.assocFailed(reasonFor(err), err)
		}
		got := udpPort(c)
		if pp.Parity != gateway.ParityNone && parityOf(got) != pp.Parity {
			spare = append(spare, c)
			continue
		}
		if !pp.Reserve {
			return c, nil, f, nil
		}
		q := p
		q.fam = f
		if h := b.bindCounterpart(ctx, q, got); h != nil {
			return c, h, f, nil
		}
		spare = append(spare, c)
	}
	b.log.Debug("port parity not available", "parity", pp.Parity, "reserve", pp.Reserve)
	pc, fam, err = b.bindAnyPort(ctx, p)
	return pc, nil, fam, err
}

// bindAnyPort binds at the planned port, or at a random free port of
// port_range, or at the kernel's choice.
func (b *Backend) bindAnyPort(ctx context.Context, p udpPlan) (*net.UDPConn, sockFam, error) {
	ports, err := b.listenPorts(p.port)
	if err != nil {
		return nil, 0, err
	}
	for _, port := range ports {
		var (
			pc  *net.UDPConn
			fam sockFam
		)
		pc, fam, err = b.bindUDP(ctx, p.fam, p.ip, port)
		if err == nil {
			return pc, fam, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	reason := reasonFor(err)
	if p.port == 0 && b.portLo != 0 && errors.Is(err, syscall.EADDRINUSE) {
		reason = gateway.ReasonCapacityExhausted
	}
	return nil, 0, b.assocFailed(reason, err)
}

// parityPorts returns up to portTries ports of port_range to try for pp, in
// random order: of the wanted parity, and with the counterpart inside the
// range too when it is to be reserved.
func (b *Backend) parityPorts(pp gateway.PortParity) []uint16 {
	ok := func(p int) bool {
		if p < int(b.portLo) || p > int(b.portHi) {
			return false
		}
		if pp.Parity != gateway.ParityNone && parityOf(uint16(p)) != pp.Parity {
			return false
		}
		if pp.Reserve {
			c, valid := counterpart(uint16(p))
			return valid && c >= b.portLo && c <= b.portHi
		}
		return true
	}
	size := int(b.portHi) - int(b.portLo) + 1
	var ports []uint16
	if size <= 4*portTries {
		for p := int(b.portLo); p <= int(b.portHi); p++ {
			if ok(p) {
				ports = append(ports, uint16(p))
			}
		}
		shufflePorts(ports)
		return ports[:min(len(ports), portTries)]
	}
	for len(ports) < portTries {
		p := int(b.portLo) + randIntN(size)
		for _, q := range [...]int{p, p + 1, p - 1} {
			if ok(q) {
				ports = append(ports, uint16(q))
				break
			}
		}
	}
	return ports
}

// bindCounterpart binds the counterpart of port for a reservation, or
// returns nil when it is taken or not a port the association could have had.
func (b *Backend) bindCounterpart(ctx context.Context, p udpPlan, port uint16) *net.UDPConn {
	c, ok := counterpart(port)
	switch {
	case !ok:
		return nil
	case b.portLo != 0 && (c < b.portLo || c > b.portHi):
		return nil
	case b.portLo == 0 && c < 1024:
		return nil
	}
	pc, _, err := b.bindUDP(ctx, p.fam, p.ip, c)
	if err != nil {
		b.log.Debug("counterpart port not reserved", "port", c, "err", err)
		return nil
	}
	return pc
}

// counterpart returns the port Port Parity reserves next to port: port+1 for
// an even port, port-1 for an odd one; ok is false for port 0 and 1.
func counterpart(port uint16) (uint16, bool) {
	if port%2 == 0 {
		return port + 1, port != 0
	}
	return port - 1, port > 1
}

func parityOf(port uint16) gateway.Parity {
	if port%2 == 0 {
		return gateway.ParityEven
	}
	return gateway.ParityOdd
}

func udpLocal(pc *net.UDPConn) netip.AddrPort {
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func udpPort(pc *net.UDPConn) uint16 { return udpLocal(pc).Port() }

func (b *Backend) assocFailed(reason gateway.Reason, err error) error {
	b.log.Debug("associate failed", "reason", reason.String(), "err", err)
	return gateway.NewError(reason, "direct: associate", err)
}

func (b *Backend) ownAdd(ap netip.AddrPort) {
	if b.own != nil {
		b.own.Add(ap)
	}
}

func (b *Backend) ownRemove(ap netip.AddrPort) {
	if b.own != nil {
		b.own.Remove(ap)
	}
}

// association is a UDP association of the direct backend.
type association struct {
	b     *Backend
	log   *slog.Logger
	pc    *net.UDPConn
	rc    syscall.RawConn
	fam   sockFam
	bound netip.AddrPort // the socket's local address ([::] for dual-stack)
	relay gateway.Addr
	opts  gateway.StackOptions
	// src4 and src6 are the local addresses of each family the socket sends
	// from: the bound address, bind_ipv4/6, or the kernel's preferred source
	// address; invalid when unknown. They report local errors.
	src4, src6 netip.Addr
	// made is the reservation this association made, if any.
	made *reservation

	// io is the OS-specific socket state.
	io sockIO

	// dests judges destinations and resolves names.
	dests *gateway.Destinations
	// wmu serializes sending: WriteTo and the sending of datagrams that
	// waited for a name.
	wmu sync.Mutex

	closed atomic.Bool
	// serving is set while ServePackets runs: its callbacks run inside
	// the socket's read, which closing the socket would wait for, so Close
	// leaves the closing to ServePackets (closeLeft).
	serveMu   sync.Mutex
	serving   bool
	closeLeft bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

var _ gateway.Association = (*association)(nil)

func (b *Backend) newAssociation(pc *net.UDPConn, p udpPlan, opts *gateway.StackOptions, req *gateway.AssocRequest) (*association, error) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil, err
	}
	a := &association{
		b:     b,
		pc:    pc,
		rc:    rc,
		fam:   p.fam,
		bound: udpLocal(pc),
		done:  make(chan struct{}),
	}
	if a.fam == famDual {
		a.bound = netip.AddrPortFrom(netip.IPv6Unspecified(), a.bound.Port())
	}
	if err := rc.Control(func(fd uintptr) { a.io.st = setupUDP(fd, a.fam, p.relayV6, opts) }); err != nil {
		return nil, err
	}
	a.initIO()

	ip := a.bound.Addr()
	if a.fam.has4() {
		a.src4 = b.sourceFor(ip, b.bind4, false)
	}
	if a.fam.has6() {
		a.src6 = b.sourceFor(ip, b.bind6, true)
	}
	a.relay = gateway.Addr{Port: a.bound.Port()}
	switch {
	case p.relayV6 && b.adv6.IsValid():
		a.relay.IP = b.adv6
	case p.relayV6 && a.src6.IsValid():
		a.relay.IP = a.src6
	case p.relayV6:
		a.relay.IP = netip.IPv6Unspecified()
	case b.adv4.IsValid():
		a.relay.IP = b.adv4
	case a.src4.IsValid():
		a.relay.IP = a.src4
	default:
		a.relay.IP = netip.IPv4Unspecified()
	}
	a.log = b.log.With("relay", a.relay.String(), "user", req.Principal.User)
	a.dests = gateway.NewDestinations(gateway.DestConfig{
		Op: "direct: send", Policy: req.Policy, Own: b.own, Family: a.fam.family(),
		Prefer6: p.relayV6, Resolver: b.resolver, Clock: b.clock, Log: a.log, Send: a.send,
	})
	return a, nil
}

// sourceFor returns the local address of one family an association socket
// bound to bound sends from: bound itself when it is specific, else the
// configured bind address, else the kernel's preferred source address for
// destinations beyond the default route (asked with a connected UDP socket,
// which sends nothing), else an invalid Addr.
func (b *Backend) sourceFor(bound, configured netip.Addr, v6 bool) netip.Addr {
	if !bound.IsUnspecified() && bound.Is6() == v6 {
		return bound
	}
	if configured.IsValid() {
		return configured
	}
	network, probe := "udp4", "192.0.2.1:9" // TEST-NET-1 (RFC 5737)
	if v6 {
		network, probe = "udp6", "[2001:db8::1]:9" // documentation prefix (RFC 3849)
	}
	c, err := net.Dial(network, probe)
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	if ip.IsUnspecified() || ip.Is6() != v6 {
		return netip.Addr{}
	}
	return ip
}

// RelayAddr returns the address remote hosts send to: the advertised
// address of the relay family when configured, else the local address (an
// unspecified bind reports the kernel's preferred source address, or the
// unspecified address when there is none), with the bound port.
func (a *association) RelayAddr() (gateway.Addr, bool) { return a.relay, true }

// Options returns the outcomes of the stack options.
func (a *association) Options() gateway.StackOptions { return a.opts }

// Reservation returns the counterpart this association reserved, if any
// (also after another association has taken it).
func (a *association) Reservation() (gateway.Reservation, bool) {
	if a.made == nil {
		return gateway.Reservation{}, false
	}
	return a.made.info, true
}

// WriteTo sends one datagram to dst. An IP destination is checked against
// the Policy and the gateway's own addresses (the verdict is cached for a few
// seconds) and sent at once. A name is resolved in the background: its
// datagrams wait in a small queue (gateway.ErrDropped when it is full) and
// WriteTo returns nil; the answer is cached, and each resolved address is
// checked like an IP destination (see gateway.Destinations). Errors are
// *gateway.Error values; none of them ends the association.
func (a *association) WriteTo(b []byte, dst gateway.Addr, meta gateway.DatagramMeta) error {
	return a.write(b, dst, meta, false)
}

// write sends b to dst once dests allowed it (see WriteTo); with later, it
// may hold it until Flush (see WriteToLater).
func (a *association) write(b []byte, dst gateway.Addr, meta gateway.DatagramMeta, later bool) error {
	if a.closed.Load() {
		return closedErr("send")
	}
	ap, err := a.dests.Target(dst, b, meta)
	if err != nil || !ap.IsValid() {
		return err
	}
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.closed.Load() {
		return closedErr("send")
	}
	if later {
		return a.holdLocked(b, ap, meta)
	}
	return a.sendLocked(b, ap, meta)
}

// send sends one datagram to an address dests allowed (a resolved name's).
func (a *association) send(b []byte, ap netip.AddrPort, meta gateway.DatagramMeta) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	if a.closed.Load() {
		return closedErr("send")
	}
	return a.sendLocked(b, ap, meta)
}

// Close ends the association: pending lookups are cancelled and their
// datagrams dropped, the socket is closed (a blocked ReadFrom returns
// net.ErrClosed), its address leaves the gateway's own set, and a SOCKS 6
// reservation it made is released. A TURN reservation lives on until it is
// taken or expires.
func (a *association) Close() error {
	a.closeOnce.Do(func() {
		a.serveMu.Lock()
		a.closed.Store(true)
		left := a.serving
		a.closeLeft = left
		a.serveMu.Unlock()
		close(a.done)
		a.dests.Close()
		if left {
			// The reader may be inside a ServePackets callback that
			// waits for our caller (a lock it holds, or the caller
			// itself), and closing the socket would wait for that
			// callback: wake the reader instead, which closes the
			// socket once its callback has returned.
			a.pc.SetReadDeadline(aLongTimeAgo)
			return
		}
		a.closeErr = a.finishClose()
	})
	return a.closeErr
}

// finishClose closes the socket and releases what the association holds.
func (a *association) finishClose() error {
	err := a.pc.Close()
	a.b.ownRemove(a.bound)
	if a.made != nil && a.made.info.Expires.IsZero() {
		a.b.release(a.made, "association closed")
	}
	a.log.Debug("association closed")
	return err
}

// closedErr is the error of an operation on a closed association.
func closedErr(op string) error {
	return fmt.Errorf("direct: %s: %w", op, net.ErrClosed)
}

// token returns 8 random bytes for a reservation.
func token() [8]byte {
	var t [8]byte
	_, _ = rand.Read(t[:]) // never fails (Go 1.24+)
	return t
}
