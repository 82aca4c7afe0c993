package direct

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// reservations are the ports Port Parity (SOCKS 6) and EVEN-PORT (TURN) hold
// for a later association. Each is a bound UDP socket, so nobody else can
// take the port; the association that takes the reservation uses that socket.
type reservations struct {
	mu      sync.Mutex
	byToken map[[8]byte]*reservation
	byPort  map[uint16][]*reservation
}

// reservation is one held port.
type reservation struct {
	info    gateway.Reservation
	pc      *net.UDPConn
	fam     sockFam
	bound   netip.AddrPort // as registered in the gateway's own addresses
	relayV6 bool
	// tokenOnly says only the token takes it (TURN).
	tokenOnly bool
	timer     *time.Timer
	gone      bool // taken or released; guarded by reservations.mu
}

// reserve registers held, the socket bound at the counterpart of a new
// association's port, as a reservation.
//
// Its lifetime depends on who asked. For a TURN allocation
// (Principal.Protocol "turn") the reservation is taken only with its token
// (RESERVATION-TOKEN; a request naming the port is refused) and lapses
// ReservationTTL after it was made, whether or not the allocation still
// exists (RFC 8656 section 7.2); Expires says when. For everyone else (SOCKS
// 6 Port Parity) it lives as long as the association that made it, Expires is
// zero, and a request naming the port takes it as well as the token. Owner is
// the SOCKS 6 session, if any: only that session may take it.
func (b *Backend) reserve(held *net.UDPConn, p udpPlan, relayIP netip.Addr, who gateway.Principal) *reservation {
	r := &reservation{pc: held, fam: p.fam, bound: udpLocal(held), relayV6: p.relayV6}
	if r.fam == famDual {
		r.bound = netip.AddrPortFrom(netip.IPv6Unspecified(), r.bound.Port())
	}
	r.info = gateway.Reservation{Addr: netip.AddrPortFrom(relayIP, r.bound.Port()), Owner: who.Session}
	turn := who.Protocol == "turn"
	if turn {
		r.info.Expires = b.clock.Now().Add(b.resTTL)
		r.tokenOnly = true
	}
	b.ownAdd(r.bound)

	b.resv.mu.Lock()
	if b.resv.byToken == nil {
		b.resv.byToken = make(map[[8]byte]*reservation)
		b.resv.byPort = make(map[uint16][]*reservation)
	}
	for {
		r.info.Token = token()
		if b.resv.byToken[r.info.Token] == nil {
			break
		}
	}
	b.resv.byToken[r.info.Token] = r
	b.resv.byPort[r.bound.Port()] = append(b.resv.byPort[r.bound.Port()], r)
	if turn {
		r.timer = time.AfterFunc(b.resTTL, func() { b.release(r, "expired") })
	}
	b.resv.mu.Unlock()

	b.log.Debug("port reserved", "reserved", r.info.Addr.String(), "owner", r.info.Owner,
		"expires", r.info.Expires)
	return r
}

// takeToken hands over the reservation named by tok.
func (b *Backend) takeToken(tok [8]byte, who gateway.Principal) (*reservation, error) {
	b.resv.mu.Lock()
	r := b.resv.byToken[tok]
	switch {
	case r == nil:
		b.resv.mu.Unlock()
		return nil, b.assocFailed(gateway.ReasonCapacityExhausted, errors.New("unknown reservation token"))
	case b.expiredLocked(r):
		b.dropLocked(r)
		b.resv.mu.Unlock()
		b.closeReservation(r, "expired")
		return nil, b.assocFailed(gateway.ReasonCapacityExhausted, errors.New("reservation token expired"))
	case r.info.Owner != "" && r.info.Owner != who.Session:
		b.resv.mu.Unlock()
		return nil, b.assocFailed(gateway.ReasonNotAllowed, errors.New("reservation belongs to another session"))
	}
	b.dropLocked(r)
	b.resv.mu.Unlock()
	b.log.Debug("reservation taken", "reserved", r.info.Addr.String(), "by", "token")
	return r, nil
}

// takePort hands over a reservation of the port p names at a compatible
// address; nil when there is none.
func (b *Backend) takePort(p udpPlan, who gateway.Principal) (*reservation, error) {
	var expired []*reservation
	defer func() {
		for _, r := range expired {
			b.closeReservation(r, "expired")
		}
	}()
	b.resv.mu.Lock()
	defer b.resv.mu.Unlock()
	for _, r := range b.resv.byPort[p.port] {
		if !p.ip.IsUnspecified() && p.ip != r.bound.Addr() {
			continue
		}
		if b.expiredLocked(r) {
			b.dropLocked(r)
			expired = append(expired, r)
			continue
		}
		if r.tokenOnly {
			return nil, b.assocFailed(gateway.ReasonNotAllowed, errors.New("port is reserved for a reservation token"))
		}
		if r.info.Owner != "" && r.info.Owner != who.Session {
			return nil, b.assocFailed(gateway.ReasonNotAllowed, errors.New("port is reserved for another session"))
		}
		b.dropLocked(r)
		b.log.Debug("reservation taken", "reserved", r.info.Addr.String(), "by", "port")
		return r, nil
	}
	return nil, nil
}

// release gives up a reservation nobody took.
func (b *Backend) release(r *reservation, why string) {
	b.resv.mu.Lock()
	if r.gone {
		b.resv.mu.Unlock()
		return
	}
	b.dropLocked(r)
	b.resv.mu.Unlock()
	b.closeReservation(r, why)
}

func (b *Backend) closeReservation(r *reservation, why string) {
	r.pc.Close()
	b.ownRemove(r.bound)
	b.log.Debug("reservation released", "reserved", r.info.Addr.String(), "why", why)
}

func (b *Backend) expiredLocked(r *reservation) bool {
	return !r.info.Expires.IsZero() && !b.clock.Now().Before(r.info.Expires)
}

// dropLocked removes r from the registry; its socket is the caller's.
func (b *Backend) dropLocked(r *reservation) {
	r.gone = true
	if r.timer != nil {
		r.timer.Stop()
	}
	delete(b.resv.byToken, r.info.Token)
	port := r.bound.Port()
	list := b.resv.byPort[port]
	for i, x := range list {
		if x == r {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(b.resv.byPort, port)
	} else {
		b.resv.byPort[port] = list
	}
}

// Close releases every port reservation still held. Associations are their
// owners' to close.
func (b *Backend) Close() error {
	b.resv.mu.Lock()
	var all []*reservation
	for _, r := range b.resv.byToken {
		b.dropLocked(r)
		all = append(all, r)
	}
	b.resv.mu.Unlock()
	for _, r := range all {
		b.closeReservation(r, "backend closed")
	}
	return nil
}

func randIntN(n int) int { return rand.IntN(n) }

func shufflePorts(p []uint16) {
	rand.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
}
