package turn

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun"

	"github.com/sixgate/sixgate/gateway"
)

// Server side: a TURN Allocate becomes a neutral association request.

// StackOptions returns the proxy–remote leg stack options the Allocate asks
// of the backend:
//   - DONT-FRAGMENT: DF wanted (true);
//   - EVEN-PORT: PortParity wanted, even, Reserve = the R bit;
//   - always UDPError wanted: RFC 8656 servers relay ICMP errors in Data
//     indications (§5.4). A backend that declines it only loses the reports.
//
// Nothing else: TTL and TOS are per datagram (gateway.DatagramMeta), and the
// other stack options have no TURN form.
func (a *AllocateRequest) StackOptions() gateway.StackOptions {
	var o gateway.StackOptions
	if a.DontFragment {
		o.DF = gateway.Want(true)
	}
	if a.EvenPort != nil {
		o.PortParity = gateway.Want(gateway.PortParity{Parity: gateway.ParityEven, Reserve: a.EvenPort.Reserve})
	}
	o.UDPError = gateway.Want(true)
	return o
}

// AssocRequest returns the neutral association request for the relay of
// family f (one of a.Families()): Family 4 or 6, the stack options, and the
// RESERVATION-TOKEN. Principal and Policy are the caller's to fill.
func (a *AllocateRequest) AssocRequest(f Family) gateway.AssocRequest {
	req := gateway.AssocRequest{Family: 4, Options: a.StackOptions()}
	if f == FamilyIPv6 {
		req.Family = 6
	}
	if a.ReservationToken != nil {
		t := [8]byte(*a.ReservationToken)
		req.ReservationToken = &t
	}
	return req
}

// Grant is what an association the backend opened gives a TURN Allocate.
type Grant struct {
	// Relay is the relayed transport address, of the requested family.
	Relay netip.AddrPort
	// ReservationToken names the reserved port+1 for EVEN-PORT R=1; nil
	// otherwise.
	ReservationToken *ReservationToken
	// DontFragment says DF is in effect for the allocation's datagrams.
	DontFragment bool
}

// CheckAssociation reads back what the backend made of the request for relay
// family f and returns what the success response needs, or the error the
// Allocate is answered with (CodeOf):
//   - no relay address known, or not of family f: 440 (wrong family) or
//     500 (unknown);
//   - DONT-FRAGMENT asked and DF not applied: 420 listing DONT-FRAGMENT
//     (turn.md §4.3 step 4);
//   - EVEN-PORT asked and the port is not even, or R=1 and no reservation:
//     508 (step 8b).
//
// On error the caller closes the association.
func (a *AllocateRequest) CheckAssociation(f Family, assoc gateway.Association) (Grant, error) {
	var g Grant
	// A backend that cannot know its remote-facing address (a SOCKS 5
	// upstream) gives its best one, and TURN reports that (lossy).
	addr, _ := assoc.RelayAddr()
	if !addr.AddrPort().IsValid() {
		return g, codeErr(stun.CodeServerError, errors.New("turn: backend gave no relay address"))
	}
	ap := addr.AddrPort()
	if f == FamilyIPv4 {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if FamilyOf(ap.Addr()) != f {
		return g, codeErr(stun.CodeAddrFamilyNotSupported, fmt.Errorf("turn: relay %v is not %v", ap, f))
	}
	g.Relay = ap
	opts := assoc.Options()
	if a.DontFragment {
		if opts.DF.Outcome != gateway.Applied || !opts.DF.Value {
			return g, &CodeError{
				Code:    stun.CodeUnknownAttribute,
				Unknown: []stun.AttrType{stun.AttrDontFragment},
				Err:     gateway.NewError(gateway.ReasonDFUnsupported, "turn: allocate", nil),
			}
		}
		g.DontFragment = true
	}
	if a.EvenPort != nil {
		if ap.Port()%2 != 0 {
			return g, codeErr(stun.CodeInsufficientCapacity, errors.New("turn: no even relay port"))
		}
		if a.EvenPort.Reserve {
			res, ok := assoc.Reservation()
			if !ok || opts.PortParity.Outcome != gateway.Applied || !opts.PortParity.Value.Reserve {
				return g, codeErr(stun.CodeInsufficientCapacity, errors.New("turn: next port not reserved"))
			}
			t := ReservationToken(res.Token)
			g.ReservationToken = &t
		}
	}
	return g, nil
}

// AddressErrorFor returns the ADDRESS-ERROR-CODE for the family of a
// dual-stack Allocate that failed with err: 440 for a family problem, 508
// otherwise (turn.md §4.3 step 9c).
func AddressErrorFor(f Family, err error) AddressErrorCode {
	code := stun.CodeInsufficientCapacity
	var ce *CodeError
	switch {
	case errors.As(err, &ce) && ce.Code == stun.CodeAddrFamilyNotSupported:
		code = stun.CodeAddrFamilyNotSupported
	case ce == nil:
		switch gateway.ReasonOf(err) {
		case gateway.ReasonFamilyMismatch, gateway.ReasonAddrTypeNotSupported:
			code = stun.CodeAddrFamilyNotSupported
		}
	}
	return AddressErrorCode{Family: f, Code: code}
}

// SendMeta returns the per-datagram IP header wishes for a datagram relayed
// from a Send indication: DF when it carried DONT-FRAGMENT.
func (s *SendIndication) SendMeta() gateway.DatagramMeta {
	return gateway.DatagramMeta{DF: s.DontFragment}
}

// ChannelMeta returns the per-datagram wishes for a datagram relayed from
// ChannelData, which cannot ask for DF itself: DF when the allocation asked
// for it (the package's documented choice; coturn always sends DF=0).
func ChannelMeta(allocationDF bool) gateway.DatagramMeta {
	return gateway.DatagramMeta{DF: allocationDF}
}

// Client side: a neutral association request becomes a TURN Allocate.

// AllocateAttributes returns the Allocate attributes that express a neutral
// association request towards a TURN server (a TURN backend), and a copy of
// its stack options with what TURN cannot express already decided:
//   - REQUESTED-TRANSPORT UDP, always;
//   - RESERVATION-TOKEN when req carries one, and then no EVEN-PORT or
//     family attribute (RFC 8656 forbids the combination);
//   - REQUESTED-ADDRESS-FAMILY IPv6 when req.Family is 6, or 0 with an IPv6
//     Bind address (IPv4 is the default and is not sent);
//   - DONT-FRAGMENT when DF is wanted with true (false is TURN's default
//     and is applied at once);
//   - EVEN-PORT (R = Reserve) for an even parity; an odd parity cannot be
//     asked for and is settled from the relay port afterwards;
//   - TOS, TTL, Happy Eyeballs, TFO, MPTCP and Backlog are marked
//     unsupported (lossy, turn.md §8).
//
// Pass the options to ApplyAllocateResult after the success response.
func AllocateAttributes(req *gateway.AssocRequest) ([]stun.Setter, gateway.StackOptions) {
	opts := req.Options
	setters := []stun.Setter{RequestedTransport{Protocol: ProtoUDP}}
	if req.ReservationToken != nil {
		setters = append(setters, ReservationToken(*req.ReservationToken))
	} else {
		if req.Family == 6 || (req.Family == 0 && req.Bind.Is6()) {
			setters = append(setters, RequestedAddressFamily(FamilyIPv6))
		}
		if opts.PortParity.Pending() && opts.PortParity.Value.Parity == gateway.ParityEven {
			setters = append(setters, EvenPort{Reserve: opts.PortParity.Value.Reserve})
		}
	}
	if opts.DF.Pending() {
		if opts.DF.Value {
			setters = append(setters, DontFragment{})
		} else {
			opts.DF.Apply(false)
		}
	}
	for _, o := range []*gateway.Opt[uint8]{&opts.TOS, &opts.TTL} {
		if o.Pending() {
			o.Unsupport()
		}
	}
	for _, o := range []*gateway.Opt[bool]{&opts.HappyEyeballs, &opts.MPTCP} {
		if o.Pending() {
			o.Unsupport()
		}
	}
	for _, o := range []*gateway.Opt[uint16]{&opts.TFO, &opts.Backlog} {
		if o.Pending() {
			o.Unsupport()
		}
	}
	return setters, opts
}

// ApplyAllocateResult records in opts (from AllocateAttributes) what a
// successful Allocate gave: DF applied; the parity of the (first) relay port,
// applied when it is the one wanted and declined otherwise, with Reserve set
// when a RESERVATION-TOKEN came back; UDPError applied (ICMP attributes from
// the server are forwarded). Anything still pending becomes unsupported.
func ApplyAllocateResult(opts *gateway.StackOptions, r AllocateResult) {
	if opts.DF.Pending() {
		opts.DF.Apply(true)
	}
	if opts.PortParity.Pending() && len(r.Relayed) > 0 {
		got := gateway.ParityEven
		if r.Relayed[0].Port()%2 != 0 {
			got = gateway.ParityOdd
		}
		want := opts.PortParity.Value
		pp := gateway.PortParity{Parity: got, Reserve: want.Reserve && r.ReservationToken != nil && got == gateway.ParityEven}
		if want.Parity == gateway.ParityNone || want.Parity == got {
			opts.PortParity.Apply(pp)
		} else {
			opts.PortParity.Decline(pp)
		}
	}
	if opts.UDPError.Pending() {
		opts.UDPError.Apply(opts.UDPError.Value)
	}
	opts.UnsupportPending()
}

// ReservationFromResult returns the reservation an Allocate success with a
// RESERVATION-TOKEN made: the relay's port+1, named by the token, lapsing
// ReservationLifetime after now. ok is false without a token.
func ReservationFromResult(r AllocateResult, now time.Time) (gateway.Reservation, bool) {
	if r.ReservationToken == nil || len(r.Relayed) == 0 || r.Relayed[0].Port() == 0xFFFF {
		return gateway.Reservation{}, false
	}
	relay := r.Relayed[0]
	return gateway.Reservation{
		Addr:    netip.AddrPortFrom(relay.Addr(), relay.Port()+1),
		Token:   [8]byte(*r.ReservationToken),
		Expires: now.Add(ReservationLifetime),
	}, true
}
