package socks5

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// maxDatagram is the largest UDP payload; with the SOCKS 5 header in front
// the datagram must still fit.
const maxDatagram = 65535

// bufPool holds send buffers: MaxUDPHeaderLen bytes of headroom for the
// header, then the payload.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, s5.MaxUDPHeaderLen+maxDatagram)
	return &b
}}

// Associate opens a UDP association at the server with UDP ASSOCIATE (RFC
// 1928 section 7). The control connection is reached like every request's
// (through Via when set); the datagrams, each behind a SOCKS 5 UDP header,
// go to the relay address of the server's reply (an unspecified BND.ADDR
// is replaced with the server's address). Without Via they leave from a UDP
// socket of the association's own, bound to the control connection's
// local address and named in the request. With Via they travel inside an
// association of the via backend (Policy nil: the relay is
// operator-configured territory), so SOCKS 5 hops nest; a via backend that
// cannot carry datagrams fails the request with
// ReasonCommandNotSupported.
//
// The association ends when the server closes the control connection:
// ReadFrom then returns net.ErrClosed. It never learns the relay's
// remote-facing address (RelayAddr reports ok = false), never receives
// ICMP errors, and cannot express stack options: every requested option
// is Unsupported. A reservation token, or a specific relay address or
// port in req.Bind, cannot be asked of a SOCKS 5 server and fails the
// request. dial_timeout bounds the call.
func (b *Backend) Associate(ctx context.Context, req *gateway.AssocRequest) (gateway.Association, error) {
	if req.ReservationToken != nil {
		return nil, gateway.NewError(gateway.ReasonCapacityExhausted, opAssociate, errors.New("a socks 5 server holds no reservations"))
	}
	if !req.Bind.IsAny() || req.Bind.Port != 0 {
		return nil, gateway.NewError(gateway.ReasonCommandNotSupported, opAssociate,
			fmt.Errorf("socks 5 cannot ask the server for relay address %s", req.Bind))
	}
	sctx, cancel := context.WithTimeout(ctx, b.dialTimeout)
	defer cancel()

	a := &association{
		b:    b,
		opts: req.Options,
		done: make(chan struct{}),
	}
	a.opts.UnsupportPending()
	ok := false
	defer func() {
		if !ok {
			a.release()
		}
	}()

	if b.via != nil {
		fam := 0
		if b.server.IP.IsValid() && b.server.Is6() {
			fam = 6
		}
		va, err := b.via.Associate(sctx, &gateway.AssocRequest{Family: fam, Principal: req.Principal})
		if err != nil {
			if gateway.ReasonOf(err) == gateway.ReasonCommandNotSupported {
				return nil, gateway.NewError(gateway.ReasonCommandNotSupported, opAssociate,
					fmt.Errorf("via backend %q cannot carry datagrams: %w", b.via.Name(), err))
			}
			return nil, b.serverFailed(opAssociate, fmt.Errorf("relay of server %s through %q: %w", b.server, b.via.Name(), err))
		}
		a.via = va
	}
	conn, err := b.reach(sctx, opAssociate, req.Principal)
	if err != nil {
		return nil, err
	}
	a.ctrl = conn

	// The request names where our datagrams will come from when this
	// backend sends them itself. Through a via hop the server sees them come
	// from that hop's relay, whose address as the server sees it is not
	// known here (RFC 1928 §7: a client that does not know it sends zeros).
	var src gateway.Addr
	if a.via == nil {
		local := unmapAP(gateway.AddrPortOf(conn.LocalAddr()))
		network := "udp4"
		if local.Addr().Is6() {
			network = "udp6"
		}
		pc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
		if err != nil {
			return nil, gateway.NewError(gateway.ReasonGeneral, opAssociate, fmt.Errorf("udp socket: %w", err))
		}
		a.pc = pc
		a.local = unmapAP(pc.LocalAddr().(*net.UDPAddr).AddrPort())
		if b.own != nil {
			b.own.Add(a.local)
		}
		src = gateway.AddrFromAddrPort(a.local)
	} else {
		src = gateway.Addr{IP: netip.IPv4Unspecified()}
	}
	rep, err := b.exchange(sctx, opAssociate, conn, s5.Request{Command: s5.CmdUDPAssociate, Dest: src}, nil)
	if err != nil {
		b.log.Debug("udp associate failed", "reason", gateway.ReasonOf(err).String(), "err", err)
		return nil, err
	}
	a.relay = b.orServer(rep.Bound, conn)
	if a.via == nil {
		if a.relayAP, err = b.relayAddrPort(sctx, a.relay, a.pc); err != nil {
			return nil, err
		}
	} else if a.relay.IP.IsValid() {
		a.relayAP = a.relay.AddrPort()
	}
	a.log = b.log.With("relay", a.relay.String(), "user", req.Principal.User)
	a.dests = gateway.NewDestinations(gateway.DestConfig{
		Op: opSend, Policy: req.Policy, Prefer6: a.relay.IP.Is6(),
		Resolver: b.resolver, Clock: b.clock, Log: a.log, Send: a.sendQueued,
	})
	// The watcher waits in the park set while the connection is idle (a
	// plain TCP one; any other keeps its goroutine).
	a.wp = gateway.NewConnPark(conn, a.watch)
	go a.watch()
	ok = true
	a.log.Debug("udp association open", "source", src.String())
	if a.pc != nil {
		return &sockAssociation{association: a}, nil
	}
	return a, nil
}

// relayAddrPort returns the relay as an address pc can send to, resolving
// a relay the server named by a domain name.
func (b *Backend) relayAddrPort(ctx context.Context, relay gateway.Addr, pc *net.UDPConn) (netip.AddrPort, error) {
	v6 := gateway.AddrPortOf(pc.LocalAddr()).Addr().Unmap().Is6()
	if !relay.IsName() {
		if relay.Is6() != v6 {
			return netip.AddrPort{}, gateway.NewError(gateway.ReasonFamilyMismatch, opAssociate,
				fmt.Errorf("relay %s is not of the control connection's address family", relay))
		}
		return relay.AddrPort(), nil
	}
	ips, err := b.resolver.LookupNetIP(ctx, "ip", relay.Name)
	if err != nil {
		return netip.AddrPort{}, gateway.NewError(gateway.ReasonGeneral, opAssociate, fmt.Errorf("resolving relay %s: %w", relay.Name, err))
	}
	for _, ip := range ips {
		if ip = ip.Unmap(); ip.Is6() == v6 {
			return netip.AddrPortFrom(ip, relay.Port), nil
		}
	}
	return netip.AddrPort{}, gateway.NewError(gateway.ReasonFamilyMismatch, opAssociate,
		fmt.Errorf("relay %s has no address of the control connection's address family", relay.Name))
}

// association is a UDP ASSOCIATE at the server.
type association struct {
	b    *Backend
	log  *slog.Logger
	opts gateway.StackOptions
	ctrl net.Conn // the TCP control connection
	// pc is the association's own socket (no Via); via is the via
	// backend's association otherwise. Exactly one is set.
	pc  *net.UDPConn
	via gateway.Association
	// local is pc's address, registered in the backend's Own set.
	local netip.AddrPort
	// relay is the server's relay address; relayAP the same as an IP and
	// port (invalid for a name relay reached through Via).
	relay   gateway.Addr
	relayAP netip.AddrPort

	// dests judges IP destinations and, with resolve = "local", resolves
	// names.
	dests *gateway.Destinations

	// wp parks the control connection's watcher; nil when it cannot park.
	wp        *gateway.ConnPark
	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed when watch ends
	sendMu    sync.Mutex    // one via WriteTo at a time

	foreign, malformed, frag, denied atomic.Uint64
}

var _ gateway.Association = (*association)(nil)

// RelayAddr reports the relay address the server gave in its reply (an
// unspecified BND.ADDR replaced with the server's address) with exact =
// false: a SOCKS 5 upstream never reveals its remote-facing UDP address, so
// this is where the association sends its datagrams, not where remote hosts
// send theirs. A TURN frontend on top reports it as the relayed address,
// knowing it is lossy.
func (a *association) RelayAddr() (gateway.Addr, bool) { return a.relay, false }

// Options returns the outcomes of the stack options (all Unsupported).
func (a *association) Options() gateway.StackOptions { return a.opts }

// Reservation reports that there is none.
func (a *association) Reservation() (gateway.Reservation, bool) {
	return gateway.Reservation{}, false
}

// WriteTo sends b to dst through the relay. An IP destination is checked
// against the policy (verdicts are cached for a few seconds); a name is
// forwarded with resolve = "remote", and with resolve = "local" resolved
// in the background (the datagram waits, up to a bound), each address
// checked, and the first allowed one used (see gateway.Destinations). meta
// cannot be expressed in SOCKS 5 and is ignored. A datagram that cannot be
// sent returns an error wrapping gateway.ErrDropped; the association goes
// on.
func (a *association) WriteTo(b []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	to, ok, err := a.target(b, dst)
	if !ok {
		return err
	}
	return a.send(b, to)
}

// target is where b goes: dst itself for a name the server resolves, else
// the address gateway.Destinations allowed. ok is false when b is not sent
// now: refused (err), or waiting for its name (err nil; sendQueued sends
// it later).
func (a *association) target(b []byte, dst gateway.Addr) (to gateway.Addr, ok bool, err error) {
	if a.closed.Load() {
		return gateway.Addr{}, false, net.ErrClosed
	}
	if dst.IsName() && !a.b.local {
		return dst, true, nil
	}
	ap, err := a.dests.Target(dst, b, gateway.DatagramMeta{})
	if err != nil {
		if gateway.ReasonOf(err) == gateway.ReasonNotAllowed {
			a.denied.Add(1)
		}
		return gateway.Addr{}, false, err
	}
	if !ap.IsValid() {
		return gateway.Addr{}, false, nil // waits for its name
	}
	return gateway.AddrFromAddrPort(ap), true, nil
}

// sendQueued sends a datagram that waited for its name.
func (a *association) sendQueued(b []byte, to netip.AddrPort, _ gateway.DatagramMeta) error {
	if a.closed.Load() {
		return net.ErrClosed
	}
	return a.send(b, gateway.AddrFromAddrPort(to))
}

// send prepends the SOCKS 5 UDP header for dst to b and sends the datagram
// to the relay. It allocates nothing for an IP destination.
func (a *association) send(b []byte, dst gateway.Addr) error {
	h := s5.UDPHeader{Addr: dst}
	if len(b) > maxDatagram-h.Len() {
		return gateway.NewError(gateway.ReasonGeneral, opSend, fmt.Errorf("%w: %d bytes do not fit a datagram with the socks 5 header", gateway.ErrDropped, len(b)))
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	start := s5.MaxUDPHeaderLen - h.Len()
	if _, err := h.Append(buf[start:start]); err != nil {
		return gateway.NewError(gateway.ReasonHostUnreachable, opSend, fmt.Errorf("%w: %w", gateway.ErrDropped, err))
	}
	n := copy(buf[s5.MaxUDPHeaderLen:], b)
	dg := buf[start : s5.MaxUDPHeaderLen+n]
	var err error
	if a.via != nil {
		a.sendMu.Lock()
		err = a.via.WriteTo(dg, a.relay, gateway.DatagramMeta{})
		a.sendMu.Unlock()
	} else {
		_, err = a.pc.WriteToUDPAddrPort(dg, a.relayAP)
	}
	switch {
	case err == nil:
		return nil
	case a.closed.Load() || errors.Is(err, net.ErrClosed):
		return net.ErrClosed
	case errors.Is(err, gateway.ErrDropped):
		return err
	}
	return gateway.NewError(gateway.ReasonOf(err), opSend, fmt.Errorf("%w: %w", gateway.ErrDropped, err))
}

// ReadFrom reads the next datagram from the relay into b: datagrams from
// any other source, with a malformed header, or fragments (FRAG != 0) are
// dropped and counted. Packet.From is the address in the datagram's
// header. When the association has ended (Close, or the server closed the
// control connection) it returns net.ErrClosed.
func (a *association) ReadFrom(b []byte) (gateway.Packet, error) {
	for {
		var n int
		if a.via != nil {
			pkt, err := a.via.ReadFrom(b)
			if err != nil {
				return gateway.Packet{}, a.readErr(err)
			}
			if pkt.Kind != gateway.PacketData || !a.fromRelay(pkt.From) {
				a.foreign.Add(1)
				continue
			}
			n = pkt.N
		} else {
			m, from, err := a.pc.ReadFromUDPAddrPort(b)
			if err != nil {
				return gateway.Packet{}, a.readErr(err)
			}
			if unmapAP(from) != a.relayAP {
				a.foreign.Add(1)
				continue
			}
			n = m
		}
		h, payload, err := s5.ParseUDPHeader(b[:n])
		switch {
		case err != nil:
			a.malformed.Add(1)
			continue
		case h.Frag != 0:
			a.frag.Add(1)
			continue
		}
		return gateway.Packet{Kind: gateway.PacketData, N: copy(b, payload), From: h.Addr}, nil
	}
}

// fromRelay reports whether a datagram the via association received came
// from the relay. A relay known only by name (reached through Via) is
// matched by port.
func (a *association) fromRelay(from gateway.Addr) bool {
	if a.relayAP.IsValid() {
		return !from.IsName() && netip.AddrPortFrom(from.IP.Unmap(), from.Port) == a.relayAP
	}
	return from.Port == a.relay.Port
}

func (a *association) readErr(err error) error {
	if a.closed.Load() || errors.Is(err, net.ErrClosed) {
		a.shutdown()
		return net.ErrClosed
	}
	return err
}

// watch waits for the control connection to end (RFC 1928: the association
// ends with it) and then ends the association. Anything the server sends on
// it is discarded. After a second without anything to read it parks the
// connection and ends; the park set runs it again when the connection is
// readable or closed, or on shutdown.
func (a *association) watch() {
	a.wp.Touch(time.Now())
	var buf [256]byte
	for {
		if a.wp != nil {
			a.ctrl.SetReadDeadline(a.wp.Deadline(time.Time{}))
		}
		_, err := a.ctrl.Read(buf[:])
		if err == nil {
			a.wp.Touch(time.Now())
			continue
		}
		if a.wp != nil && errors.Is(err, os.ErrDeadlineExceeded) && !a.closed.Load() {
			if a.wp.ParkIdle(time.Time{}, a.closed.Load) {
				return
			}
			continue
		}
		if !a.closed.Load() {
			a.log.Debug("udp association ended by the server", "err", err)
		}
		break
	}
	a.shutdown()
	close(a.done)
}

// shutdown ends the association: ReadFrom and WriteTo return
// net.ErrClosed from now on, and a parked watcher resumes to see the end.
func (a *association) shutdown() {
	a.closeOnce.Do(func() {
		a.closed.Store(true)
		a.release()
		a.dests.Close()
		a.wp.Wake()
	})
}

// release closes whatever the association holds.
func (a *association) release() {
	if a.ctrl != nil {
		a.ctrl.Close()
	}
	if a.pc != nil {
		// A reader parked on the socket (the frontend's packet loop)
		// would see the close only at the park set's next sweep.
		gateway.WakeSocket(a.pc)
		a.pc.Close()
		if a.b.own != nil {
			a.b.own.Remove(a.local)
		}
	}
	if a.via != nil {
		a.via.Close()
	}
}

// Close ends the association: it closes the control connection and the
// UDP socket (or the via association) and waits for the association's
// goroutines.
func (a *association) Close() error {
	a.shutdown()
	<-a.done
	a.log.Debug("udp association closed", "dropped_foreign", a.foreign.Load(), "dropped_malformed", a.malformed.Load(),
		"dropped_fragments", a.frag.Load(), "denied", a.denied.Load())
	return nil
}
