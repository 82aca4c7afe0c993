package socks5

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// Bounds and lifetimes of the per-association caches.
const (
	// maxVerdicts bounds the cache of policy verdicts per association.
	maxVerdicts = 256
	// verdictTTL is how long a cached verdict holds: the gateway's own
	// addresses, which the policy refuses, change as sockets come and go.
	verdictTTL = 5 * time.Second
	// maxNames bounds the names an association with resolve = "local"
	// keeps resolved.
	maxNames = 64
	// maxPending bounds the datagrams of one association that wait for
	// names being resolved.
	maxPending = 32
	// nameTTL is how long a resolved name is used before it is looked up
	// again (the old answer is used meanwhile).
	nameTTL = 30 * time.Second
	// nameNegTTL is how long a failed lookup is remembered.
	nameNegTTL = 5 * time.Second
	// resolveTimeout bounds one lookup.
	resolveTimeout = 5 * time.Second
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

	actx, acancel := context.WithCancel(context.Background())
	a := &association{
		b:        b,
		policy:   req.Policy,
		opts:     req.Options,
		ctx:      actx,
		cancel:   acancel,
		done:     make(chan struct{}),
		verdicts: map[netip.AddrPort]verdict{},
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

	// The request names where our datagrams will come from, where known.
	var src gateway.Addr
	if a.via == nil {
		local := unmapAP(addrPortOf(conn.LocalAddr()))
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
	} else if ra, ok := a.via.RelayAddr(); ok {
		src = ra
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
	go a.watch()
	ok = true
	a.log.Debug("udp association open", "source", src.String())
	return a, nil
}

// relayAddrPort returns the relay as an address pc can send to, resolving
// a relay the server named by a domain name.
func (b *Backend) relayAddrPort(ctx context.Context, relay gateway.Addr, pc *net.UDPConn) (netip.AddrPort, error) {
	v6 := addrPortOf(pc.LocalAddr()).Addr().Unmap().Is6()
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
	b      *Backend
	log    *slog.Logger
	policy gateway.Policy // nil allows every destination
	opts   gateway.StackOptions
	ctrl   net.Conn // the TCP control connection
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

	ctx       context.Context // ends at Close; bounds name lookups
	cancel    context.CancelFunc
	closed    atomic.Bool
	closeOnce sync.Once
	done      chan struct{} // closed when watch returns
	lookups   sync.WaitGroup
	sendMu    sync.Mutex // one via WriteTo at a time

	// mu guards verdicts, names and pending.
	mu       sync.Mutex
	verdicts map[netip.AddrPort]verdict
	names    map[string]*nameEntry
	pending  int

	foreign, malformed, frag, denied atomic.Uint64
}

var _ gateway.Association = (*association)(nil)

// verdict is a cached policy decision for one destination.
type verdict struct {
	err     error
	expires time.Time
}

// nameEntry is a destination name of an association with resolve =
// "local": its answer and the datagrams waiting for it.
type nameEntry struct {
	addrs     []netip.Addr
	err       error
	answered  bool
	resolving bool
	expires   time.Time
	waiting   []waitingDatagram
}

// waitingDatagram is a copy of a datagram waiting for its name.
type waitingDatagram struct {
	payload []byte
	port    uint16
}

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
// checked, and the first allowed one used. meta cannot be expressed in
// SOCKS 5 and is ignored. A datagram that cannot be sent returns an error
// wrapping gateway.ErrDropped; the association goes on.
func (a *association) WriteTo(b []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	if a.closed.Load() {
		return net.ErrClosed
	}
	switch {
	case !dst.IsName():
		ap := netip.AddrPortFrom(dst.IP.Unmap(), dst.Port)
		if a.policy != nil {
			a.mu.Lock()
			err := a.allowLocked(ap, a.b.clock.Now())
			a.mu.Unlock()
			if err != nil {
				return a.deniedErr(ap, err)
			}
		}
		return a.send(b, gateway.Addr{IP: ap.Addr(), Port: ap.Port()})
	case !a.b.local:
		return a.send(b, dst)
	}
	return a.sendName(b, dst)
}

// allowLocked returns nil when ap may be sent to, from the cache when it
// holds a fresh verdict. a.mu is held.
func (a *association) allowLocked(ap netip.AddrPort, now time.Time) error {
	if v, ok := a.verdicts[ap]; ok && now.Before(v.expires) {
		return v.err
	}
	err := a.policy.Allow(ap)
	if len(a.verdicts) >= maxVerdicts {
		for k, v := range a.verdicts {
			if !now.Before(v.expires) {
				delete(a.verdicts, k)
			}
		}
		if len(a.verdicts) >= maxVerdicts {
			clear(a.verdicts)
		}
	}
	a.verdicts[ap] = verdict{err: err, expires: now.Add(verdictTTL)}
	return err
}

func (a *association) deniedErr(ap netip.AddrPort, err error) error {
	a.denied.Add(1)
	return gateway.NewError(gateway.ReasonNotAllowed, opSend, fmt.Errorf("%w: %s: %w", gateway.ErrDropped, ap, err))
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

// sendName sends b to a name with resolve = "local".
func (a *association) sendName(b []byte, dst gateway.Addr) error {
	now := a.b.clock.Now()
	a.mu.Lock()
	if a.closed.Load() { // checked under mu, see shutdown
		a.mu.Unlock()
		return net.ErrClosed
	}
	if a.names == nil {
		a.names = map[string]*nameEntry{}
	}
	e := a.names[dst.Name]
	if e == nil {
		if !a.makeRoomLocked(now) {
			a.mu.Unlock()
			return gateway.NewError(gateway.ReasonCapacityExhausted, opSend, fmt.Errorf("%w: too many names resolving", gateway.ErrDropped))
		}
		e = &nameEntry{}
		a.names[dst.Name] = e
	}
	expired := !now.Before(e.expires)
	if expired && !e.resolving {
		e.resolving = true
		a.lookups.Add(1)
		go a.lookup(dst.Name)
	}
	if !e.answered || (e.err != nil && expired) {
		// Wait for the answer.
		if a.pending >= maxPending {
			a.mu.Unlock()
			return gateway.NewError(gateway.ReasonCapacityExhausted, opSend, fmt.Errorf("%w: too many datagrams waiting for names", gateway.ErrDropped))
		}
		e.waiting = append(e.waiting, waitingDatagram{payload: append([]byte(nil), b...), port: dst.Port})
		a.pending++
		a.mu.Unlock()
		return nil
	}
	ap, err := a.pickLocked(e, dst, now)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	return a.send(b, gateway.AddrFromAddrPort(ap))
}

// makeRoomLocked makes room for one more name, dropping an expired answer
// or any answer not being refreshed; false when every entry is resolving.
func (a *association) makeRoomLocked(now time.Time) bool {
	if len(a.names) < maxNames {
		return true
	}
	var victim string
	for n, e := range a.names {
		if e.resolving {
			continue
		}
		victim = n
		if !now.Before(e.expires) {
			break
		}
	}
	if victim == "" {
		return false
	}
	delete(a.names, victim)
	return true
}

// pickLocked returns the first address of an answered name that the
// policy allows.
func (a *association) pickLocked(e *nameEntry, dst gateway.Addr, now time.Time) (netip.AddrPort, error) {
	if e.err != nil {
		return netip.AddrPort{}, gateway.NewError(gateway.ReasonOf(e.err), opSend, fmt.Errorf("%w: resolving %s: %w", gateway.ErrDropped, dst.Name, e.err))
	}
	var deny error
	for _, ip := range e.addrs {
		ap := netip.AddrPortFrom(ip.Unmap(), dst.Port)
		if a.policy == nil {
			return ap, nil
		}
		err := a.allowLocked(ap, now)
		if err == nil {
			return ap, nil
		}
		if deny == nil {
			deny = err
		}
	}
	a.denied.Add(1)
	return netip.AddrPort{}, gateway.NewError(gateway.ReasonNotAllowed, opSend, fmt.Errorf("%w: %s: no address allowed: %w", gateway.ErrDropped, dst.Name, deny))
}

// lookup resolves name and sends the datagrams waiting for it.
func (a *association) lookup(name string) {
	defer a.lookups.Done()
	ctx, cancel := context.WithTimeout(a.ctx, resolveTimeout)
	ips, err := a.b.resolver.LookupNetIP(ctx, "ip", name)
	cancel()
	if err == nil && len(ips) == 0 {
		err = fmt.Errorf("%s has no addresses", name)
	}
	if err != nil {
		err = gateway.NewError(gateway.ReasonOf(err), "", err)
	}
	now := a.b.clock.Now()
	a.mu.Lock()
	e := a.names[name]
	e.resolving, e.answered = false, true
	e.addrs, e.err = ips, err
	e.expires = now.Add(nameTTL)
	if err != nil {
		e.expires = now.Add(nameNegTTL)
	}
	waiting := e.waiting
	e.waiting = nil
	a.pending -= len(waiting)
	// Each waiting datagram is judged with its own port.
	dsts := make([]netip.AddrPort, len(waiting))
	errs := make([]error, len(waiting))
	for i, w := range waiting {
		dsts[i], errs[i] = a.pickLocked(e, gateway.Addr{Name: name, Port: w.port}, now)
	}
	a.mu.Unlock()
	for i, w := range waiting {
		if a.closed.Load() {
			return
		}
		if errs[i] != nil {
			a.log.Debug("udp datagram dropped", "name", name, "err", errs[i])
			continue
		}
		_ = a.send(w.payload, gateway.AddrFromAddrPort(dsts[i]))
	}
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
// it is discarded.
func (a *association) watch() {
	defer close(a.done)
	var buf [256]byte
	for {
		if _, err := a.ctrl.Read(buf[:]); err != nil {
			if !a.closed.Load() {
				a.log.Debug("udp association ended by the server", "err", err)
			}
			break
		}
	}
	a.shutdown()
}

// shutdown ends the association: ReadFrom and WriteTo return
// net.ErrClosed from now on.
func (a *association) shutdown() {
	a.closeOnce.Do(func() {
		// Under mu, so that no sendName starts a lookup after this: Close
		// waits for the lookups.
		a.mu.Lock()
		a.closed.Store(true)
		a.mu.Unlock()
		a.release()
	})
}

// release closes whatever the association holds.
func (a *association) release() {
	a.cancel()
	if a.ctrl != nil {
		a.ctrl.Close()
	}
	if a.pc != nil {
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
	a.lookups.Wait()
	a.log.Debug("udp association closed", "dropped_foreign", a.foreign.Load(), "dropped_malformed", a.malformed.Load(),
		"dropped_fragments", a.frag.Load(), "denied", a.denied.Load())
	return nil
}

// addrPortOf returns the address of a *net.TCPAddr or *net.UDPAddr.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort()
	case *net.UDPAddr:
		return v.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
