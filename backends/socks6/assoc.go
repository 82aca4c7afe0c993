package socks6

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Associate opens a UDP association through the upstream with UDP
// ASSOCIATE.
//
// req.Options are requested on the proxy–remote leg, with UDP Error always
// asked for so that ICMP errors come back as Error messages (ReadFrom
// returns them as gateway.PacketICMP; the frontend decides whom to tell).
// The upstream's echo becomes Options(), except that UDP Error is reported
// as the request had it. Port Parity is forwarded with its reservation
// wish; when the upstream echoes Reserve = 1, Reservation reports the
// counterpart of the upstream's port, which a later request of the same
// SOCKS 6 session takes by naming the port (or TURN by the token).
//
// The association is mapped at once with the receive-first empty Datagram,
// so remote hosts can send first. Datagrams travel over UDP to the
// upstream's relay endpoint (`udp_server`), or over DTLS, and fall back to
// the control connection when no Association Confirmation comes within a
// second; `udp_over = "tcp"` uses the control connection from the start.
// With `via` the control connection is a stream of the via backend and the
// datagrams travel in an association of the via backend; when that backend
// cannot carry datagrams they use the control connection.
//
// Every IP destination is checked with req.Policy (verdicts are cached for
// a few seconds, at most 256 per association). Names go to the upstream
// (resolve = "remote"), or are resolved here and every address checked
// (resolve = "local"; datagrams wait in a small queue meanwhile). The
// association ends when the upstream closes the control connection:
// ReadFrom then returns net.ErrClosed.
func (b *Backend) Associate(ctx context.Context, req *gateway.AssocRequest) (gateway.Association, error) {
	if err := b.checkOpen("associate"); err != nil {
		return nil, err
	}
	bind, taken, err := b.assocBind(req)
	if err != nil {
		return nil, err
	}
	legs := udpLegs(req.Options)
	o := &UDPOptions{Bind: bind, Legs: legs, Over: b.udpOver, Server: b.udpServer, ReceiveFirst: true}
	if b.via != nil {
		o.DialPacket = b.viaPacket(req.Principal)
	}
	u, err := b.client.UDPAssociate(ctx, o)
	if err != nil {
		return nil, err
	}
	if taken != nil {
		b.resv.drop(taken)
	}
	a := &association{b: b, u: u}
	a.opts = u.Legs.Remote
	switch uerr := req.Options.UDPError; {
	case !uerr.Wanted():
		a.opts.UDPError = gateway.Opt[bool]{}
	case !uerr.Value:
		a.opts.UDPError.Apply(false)
	}
	if u.Bound.IP.IsValid() && !u.Bound.IP.IsUnspecified() {
		a.relay, a.relayOK = u.Bound, true
	}
	if pp := a.opts.PortParity; req.Options.PortParity.Wanted() && pp.Outcome == gateway.Applied && pp.Value.Reserve {
		if cp, ok := counterpart(u.Bound.Port); ok {
			ip := u.Bound.IP
			if !ip.IsValid() {
				ip = netip.IPv4Unspecified()
			}
			a.made = b.resv.add(netip.AddrPortFrom(ip.Unmap(), cp), req.Principal.Session)
		}
	}
	a.log = b.log.With("relay", u.Bound.String(), "transport", u.Transport().String(), "user", req.Principal.User)
	a.dests = gateway.NewDestinations(gateway.DestConfig{
		Op: "socks6 backend: send", Policy: req.Policy, Prefer6: u.Bound.Is6(),
		Resolver: b.resolver, Clock: b.clock, Log: a.log, Send: a.sendQueued,
	})
	a.log.Debug("udp association open")
	return a, nil
}

// udpLegs are the stack options an association asks the upstream for.
func udpLegs(o gateway.StackOptions) s6.Legs {
	l := s6.Legs{Remote: o}
	l.Remote.UDPError = gateway.Want(true)
	return l
}

// assocBind is the remote-facing address to ask the upstream for, and the
// reservation of this backend the request takes, if any.
func (b *Backend) assocBind(req *gateway.AssocRequest) (gateway.Addr, *reservation, error) {
	if req.Bind.IsName() {
		return gateway.Addr{}, nil, fail(gateway.ReasonAddrTypeNotSupported, "associate",
			fmt.Errorf("cannot ask for a relay address by name (%s)", req.Bind.Name))
	}
	bind := gateway.Addr{IP: req.Bind.IP.Unmap().WithZone(""), Port: req.Bind.Port}
	var taken *reservation
	switch {
	case req.ReservationToken != nil:
		r, err := b.resv.byToken(*req.ReservationToken, req.Principal)
		if err != nil {
			return gateway.Addr{}, nil, err
		}
		taken = r
		// The upstream hands its held socket to a request naming the
		// port at an unspecified address.
		bind = gateway.Addr{IP: netip.IPv4Unspecified(), Port: r.info.Addr.Port()}
		if r.info.Addr.Addr().Is6() {
			bind.IP = netip.IPv6Unspecified()
		}
	case bind.Port != 0:
		r, err := b.resv.byPort(bind.Port, req.Principal)
		if err != nil {
			return gateway.Addr{}, nil, err
		}
		taken = r
	}
	switch req.Family {
	case 0:
	case 4, 6:
		v6 := req.Family == 6
		if bind.IP.IsValid() && !bind.IP.IsUnspecified() && bind.IP.Is6() != v6 {
			return gateway.Addr{}, nil, fail(gateway.ReasonFamilyMismatch, "associate",
				fmt.Errorf("address %s is not IPv%d", bind.IP, req.Family))
		}
		if !bind.IP.IsValid() || bind.IP.IsUnspecified() {
			bind.IP = netip.IPv4Unspecified()
			if v6 {
				bind.IP = netip.IPv6Unspecified()
			}
		}
	default:
		return gateway.Addr{}, nil, fail(gateway.ReasonFamilyMismatch, "associate",
			fmt.Errorf("unknown address family %d", req.Family))
	}
	return bind, taken, nil
}

// viaPacket returns the DialPacket of an association whose datagrams
// travel through an association of the via backend.
func (b *Backend) viaPacket(p gateway.Principal) func(ctx context.Context, relay string) (net.Conn, error) {
	return func(ctx context.Context, _ string) (net.Conn, error) {
		fam := 0
		if b.udpRelay.IP.IsValid() && b.udpRelay.Is6() {
			fam = 6
		}
		va, err := b.via.Associate(ctx, &gateway.AssocRequest{Family: fam, Principal: p})
		if err != nil {
			return nil, fmt.Errorf("via %s: %w", b.via.Name(), err)
		}
		return newAssocConn(va, b.udpRelay), nil
	}
}

// association is a UDP association through the upstream.
type association struct {
	b       *Backend
	u       *UDPAssoc
	log     *slog.Logger
	opts    gateway.StackOptions
	relay   gateway.Addr
	relayOK bool
	// made is the reservation this association made, if any.
	made *reservation
	// dests judges IP destinations and, with resolve = "local", resolves
	// names.
	dests *gateway.Destinations
	once  sync.Once
}

var (
	_ gateway.Association      = (*association)(nil)
	_ gateway.BatchWriter      = (*association)(nil)
	_ gateway.IdlePacketServer = (*association)(nil)
)

// RelayAddr returns the upstream's remote-facing address from its
// Operation Reply; ok is false when the upstream reported an unspecified
// address.
func (a *association) RelayAddr() (gateway.Addr, bool) { return a.relay, a.relayOK }

// Options returns the outcomes of the stack options.
func (a *association) Options() gateway.StackOptions { return a.opts }

// Reservation returns the counterpart the upstream reserved, if any.
func (a *association) Reservation() (gateway.Reservation, bool) {
	if a.made == nil {
		return gateway.Reservation{}, false
	}
	return a.made.info, true
}

// WriteTo sends one datagram to dst. Every IP destination, and with
// resolve = "local" every address of a name (resolved here in the
// background, see gateway.Destinations), is checked with the policy; with
// resolve = "remote" names go to the upstream. Per-datagram IP header wishes
// (meta) cannot be expressed in SOCKS 6 and are ignored.
func (a *association) WriteTo(p []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	to, ok, err := a.target(p, dst)
	if !ok {
		return err
	}
	return a.u.WriteTo(p, to)
}

// WriteToLater is WriteTo that may hold the datagram until Flush
// (gateway.BatchWriter; see UDPAssoc.WriteToLater).
func (a *association) WriteToLater(p []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	to, ok, err := a.target(p, dst)
	if !ok {
		return err
	}
	return a.u.WriteToLater(p, to)
}

// target is where p goes: dst itself for a name the upstream resolves,
// else the address gateway.Destinations allowed. ok is false when p is not
// sent now: refused (err), or waiting for its name (err nil; sendQueued
// sends it later).
func (a *association) target(p []byte, dst gateway.Addr) (to gateway.Addr, ok bool, err error) {
	if dst.IsName() && !a.b.resolveLocal {
		return dst, true, nil
	}
	ap, err := a.dests.Target(dst, p, gateway.DatagramMeta{})
	if err != nil || !ap.IsValid() {
		return gateway.Addr{}, false, err
	}
	return gateway.AddrFromAddrPort(ap), true, nil
}

// Flush sends what WriteToLater holds.
func (a *association) Flush() { a.u.Flush() }

// ServePackets reads datagrams and ICMP errors in batches
// (gateway.PacketServer; see UDPAssoc.ServePackets).
func (a *association) ServePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet)) error {
	return a.u.ServePackets(get, put, fn)
}

// ServePacketsIdle is ServePackets that may return gateway.ErrReaderIdle
// (gateway.IdlePacketServer; see UDPAssoc.ServePacketsIdle).
func (a *association) ServePacketsIdle(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	return a.u.ServePacketsIdle(get, put, fn, idle)
}

// ReadConn is the socket idle reads wait on; nil when there is none.
func (a *association) ReadConn() syscall.RawConn { return a.u.ReadConn() }

// sendQueued sends a datagram that waited for its name.
func (a *association) sendQueued(p []byte, to netip.AddrPort, _ gateway.DatagramMeta) error {
	return a.u.WriteTo(p, gateway.AddrFromAddrPort(to))
}

// ReadFrom reads the next datagram or ICMP error (from the upstream's Error
// messages). It returns an error wrapping net.ErrClosed once the upstream
// closed the control connection or the association was closed.
func (a *association) ReadFrom(p []byte) (gateway.Packet, error) { return a.u.ReadFrom(p) }

// Close ends the association: the control connection is closed, which
// releases the upstream's port and any reservation it holds.
func (a *association) Close() error {
	a.once.Do(func() {
		a.dests.Close()
		a.u.Close()
		if a.made != nil {
			a.b.resv.drop(a.made)
		}
		a.log.Debug("udp association closed")
	})
	return nil
}

// counterpart returns the port Port Parity reserves next to port: port+1
// for an even port, port-1 for an odd one; ok is false for ports 0 and 1.
func counterpart(port uint16) (uint16, bool) {
	if port%2 == 0 {
		return port + 1, port != 0
	}
	return port - 1, port > 1
}

// reservations are the counterparts the upstream holds for associations of
// this backend, so that a later request names them: TURN by the token this
// backend made up, SOCKS 6 by the port. They live as long as the
// association that made them (the upstream releases them when it ends).
type reservations struct {
	mu     sync.Mutex
	tokens map[[8]byte]*reservation
	ports  map[uint16]*reservation
}

// reservation is one port the upstream holds.
type reservation struct {
	info gateway.Reservation
	gone bool
}

func (rs *reservations) add(ap netip.AddrPort, owner string) *reservation {
	r := &reservation{info: gateway.Reservation{Addr: ap, Owner: owner}}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.tokens == nil {
		rs.tokens = map[[8]byte]*reservation{}
		rs.ports = map[uint16]*reservation{}
	}
	for {
		rand.Read(r.info.Token[:])
		if rs.tokens[r.info.Token] == nil {
			break
		}
	}
	rs.tokens[r.info.Token] = r
	rs.ports[ap.Port()] = r
	return r
}

// byToken returns the reservation named by tok.
func (rs *reservations) byToken(tok [8]byte, who gateway.Principal) (*reservation, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.tokens[tok]
	if r == nil {
		return nil, fail(gateway.ReasonCapacityExhausted, "associate", errors.New("unknown reservation token"))
	}
	if r.info.Owner != "" && r.info.Owner != who.Session {
		return nil, fail(gateway.ReasonNotAllowed, "associate", errors.New("reservation belongs to another session"))
	}
	return r, nil
}

// byPort returns the reservation of port, if any; a reservation of another
// SOCKS 6 session refuses the request.
func (rs *reservations) byPort(port uint16, who gateway.Principal) (*reservation, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.ports[port]
	if r == nil {
		return nil, nil
	}
	if r.info.Owner != "" && r.info.Owner != who.Session {
		return nil, fail(gateway.ReasonNotAllowed, "associate", errors.New("port is reserved for another session"))
	}
	return r, nil
}

// drop forgets a reservation (taken, or its association ended).
func (rs *reservations) drop(r *reservation) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r.gone {
		return
	}
	r.gone = true
	delete(rs.tokens, r.info.Token)
	if rs.ports[r.info.Addr.Port()] == r {
		delete(rs.ports, r.info.Addr.Port())
	}
}
