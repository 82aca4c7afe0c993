package gateway

import (
	"net/netip"
	"time"
)

// Outcome says what became of a stack option.
type Outcome uint8

// Outcomes of a stack option.
const (
	// NotRequested: nobody asked for the option; nothing is echoed.
	NotRequested Outcome = iota
	// Requested: asked for and not handled yet.
	Requested
	// Applied: in effect with Value.
	Applied
	// Declined: supported but not done (Availability 1, Backlog 0, Reserve 0).
	Declined
	// Unsupported: the option is not known or cannot be expressed; it is not
	// echoed (SOCKS 6 "missing = unsupported").
	Unsupported
)

func (o Outcome) String() string {
	switch o {
	case NotRequested:
		return "not requested"
	case Requested:
		return "requested"
	case Applied:
		return "applied"
	case Declined:
		return "declined"
	case Unsupported:
		return "unsupported"
	}
	return "unknown"
}

// Opt is one stack option on one leg: whether and what was asked, and after
// handling, what is in effect. Value holds the requested value until the
// handler sets the value in effect.
type Opt[T comparable] struct {
	Outcome Outcome
	Value   T
}

// Want returns an option requested with value v.
func Want[T comparable](v T) Opt[T] { return Opt[T]{Outcome: Requested, Value: v} }

// Wanted reports whether the option was asked for (whatever became of it).
func (o Opt[T]) Wanted() bool { return o.Outcome != NotRequested }

// Pending reports whether the option was asked for and not handled yet.
func (o Opt[T]) Pending() bool { return o.Outcome == Requested }

// Apply records that the option is in effect with value v.
func (o *Opt[T]) Apply(v T) { o.Outcome, o.Value = Applied, v }

// Decline records that the option is supported but not done; v is the value in
// effect instead (for example Availability "no" or backlog 0).
func (o *Opt[T]) Decline(v T) { o.Outcome, o.Value = Declined, v }

// Unsupport records that the option cannot be handled at all.
func (o *Opt[T]) Unsupport() { o.Outcome = Unsupported }

// Parity is a port-parity preference.
type Parity uint8

// Port parities.
const (
	ParityNone Parity = iota
	ParityEven
	ParityOdd
)

// PortParity asks for a relay port of a parity and, optionally, that the
// counterpart (even: port+1, odd: port-1) be held reserved.
type PortParity struct {
	Parity  Parity
	Reserve bool
}

// StackOptions are the stack options for one leg of an association: the
// client–proxy leg (applied by the frontend on the client's connection or
// relay socket) or the proxy–remote leg (applied by the backend). An option
// requested on "both legs" is split by the frontend into one of each.
type StackOptions struct {
	TOS           Opt[uint8]
	TTL           Opt[uint8]
	DF            Opt[bool] // Value true: avoid fragmentation
	HappyEyeballs Opt[bool]
	TFO           Opt[uint16] // maximum SYN payload; 0 = any
	MPTCP         Opt[bool]
	Backlog       Opt[uint16]
	UDPError      Opt[bool]
	PortParity    Opt[PortParity]
}

// Empty reports whether no option was requested.
func (s *StackOptions) Empty() bool {
	return !s.TOS.Wanted() && !s.TTL.Wanted() && !s.DF.Wanted() && !s.HappyEyeballs.Wanted() &&
		!s.TFO.Wanted() && !s.MPTCP.Wanted() && !s.Backlog.Wanted() && !s.UDPError.Wanted() &&
		!s.PortParity.Wanted()
}

// UnsupportPending marks every option still pending as unsupported: a handler
// calls it after applying what it knows, so nothing is echoed by accident.
func (s *StackOptions) UnsupportPending() {
	unsupportIf(&s.TOS)
	unsupportIf(&s.TTL)
	unsupportIf(&s.DF)
	unsupportIf(&s.HappyEyeballs)
	unsupportIf(&s.TFO)
	unsupportIf(&s.MPTCP)
	unsupportIf(&s.Backlog)
	unsupportIf(&s.UDPError)
	unsupportIf(&s.PortParity)
}

func unsupportIf[T comparable](o *Opt[T]) {
	if o.Pending() {
		o.Unsupport()
	}
}

// DatagramMeta carries per-datagram IP header wishes (TURN's DONT-FRAGMENT is
// per Send indication) or, on received datagrams, what the header held when
// the socket reports it. Zero values mean "default".
type DatagramMeta struct {
	TTL    uint8 // 0: the association's default
	TOS    uint8
	HasTOS bool
	DF     bool
}

// Reservation is a relay port held for a later association by Port Parity
// (SOCKS 6) or EVEN-PORT (TURN, which names it by Token).
type Reservation struct {
	// Addr is the reserved remote-facing address and port.
	Addr netip.AddrPort
	// Token names the reservation for TURN's RESERVATION-TOKEN. The backend
	// that holds the port fills it with 8 bytes from crypto/rand; taking an
	// unknown or expired token fails with ReasonCapacityExhausted.
	Token [8]byte
	// Expires is when the reservation lapses if nobody takes it; zero means
	// it lives as long as the association that made it.
	Expires time.Time
	// Owner restricts who may take it (a SOCKS 6 session ID); empty = anyone
	// who names the port or the token.
	Owner string
}
