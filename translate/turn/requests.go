package turn

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/pion/stun"
)

func expectType(m *stun.Message, t stun.MessageType) error {
	if m.Type != t {
		return codeErr(stun.CodeBadRequest, fmt.Errorf("turn: %s, want %s: %w", m.Type, t, ErrUnexpectedType))
	}
	return nil
}

func bad(err error) error { return codeErr(stun.CodeBadRequest, err) }

// AllocateEnv says what the listener an Allocate arrived on offers, for the
// checks that depend on it.
type AllocateEnv struct {
	// TCPRelays enables RFC 6062 TCP allocations (REQUESTED-TRANSPORT 6).
	TCPRelays bool
	// StreamClient is true when the client is connected over TCP or TLS.
	StreamClient bool
}

// AllocateRequest is a parsed Allocate request.
type AllocateRequest struct {
	// Transport is REQUESTED-TRANSPORT's protocol: ProtoUDP or ProtoTCP.
	Transport uint8
	// DontFragment is true when DONT-FRAGMENT is present: the client wants
	// DF set on relayed datagrams, or 420.
	DontFragment bool
	// EvenPort is EVEN-PORT, nil when absent.
	EvenPort *EvenPort
	// ReservationToken is RESERVATION-TOKEN, nil when absent.
	ReservationToken *ReservationToken
	// Family is REQUESTED-ADDRESS-FAMILY, 0 when absent (meaning IPv4).
	Family Family
	// AdditionalFamily is ADDITIONAL-ADDRESS-FAMILY (always IPv6 once
	// parsed), 0 when absent.
	AdditionalFamily Family
	// Lifetime is LIFETIME; HasLifetime says whether it was present.
	Lifetime    Lifetime
	HasLifetime bool
}

// ParseAllocate reads an Allocate request and applies the static checks of
// RFC 8656 §7.2 in its order (turn.md §4.3 steps 3, 5a, 6, 7a, 8a, 9a). Each
// error carries its code (CodeOf):
//   - REQUESTED-TRANSPORT missing, malformed or repeated: 400;
//   - a protocol other than UDP, or TCP when env.TCPRelays: 442;
//   - TCP from a UDP client, or TCP with DONT-FRAGMENT, EVEN-PORT or
//     RESERVATION-TOKEN: 400;
//   - any of LIFETIME, EVEN-PORT, RESERVATION-TOKEN, REQUESTED-ADDRESS-FAMILY,
//     ADDITIONAL-ADDRESS-FAMILY malformed: 400;
//   - RESERVATION-TOKEN with EVEN-PORT or either family attribute: 400;
//   - both family attributes: 400;
//   - REQUESTED-ADDRESS-FAMILY naming neither IPv4 nor IPv6: 440;
//   - EVEN-PORT R=1 with ADDITIONAL-ADDRESS-FAMILY: 400;
//   - ADDITIONAL-ADDRESS-FAMILY other than IPv6: 400.
//
// What needs the allocation state or the backend (437, DF support 420, the
// offered families 440, reservations and ports 508, quota 486) is the
// engine's; see AllocateRequest.CheckOutcome.
func ParseAllocate(m *stun.Message, env AllocateEnv) (AllocateRequest, error) {
	var a AllocateRequest
	if err := expectType(m, TypeAllocateRequest); err != nil {
		return a, err
	}
	v, err := getOnce(m, stun.AttrRequestedTransport)
	if err != nil {
		return a, bad(err)
	}
	if len(v) != 4 {
		return a, bad(attrErr(stun.AttrRequestedTransport, ErrAttrLength))
	}
	a.Transport = v[0]
	switch {
	case a.Transport == ProtoUDP:
	case a.Transport == ProtoTCP && env.TCPRelays:
	default:
		return a, codeErr(stun.CodeUnsupportedTransProto,
			attrErr(stun.AttrRequestedTransport, fmt.Errorf("protocol %d: %w", a.Transport, ErrAttrValue)))
	}
	a.DontFragment = m.Contains(stun.AttrDontFragment)
	hasEven := m.Contains(stun.AttrEvenPort)
	hasToken := m.Contains(stun.AttrReservationToken)
	if a.Transport == ProtoTCP {
		if !env.StreamClient {
			return a, bad(errors.New("turn: tcp allocation requested over udp"))
		}
		if a.DontFragment || hasEven || hasToken {
			return a, bad(errors.New("turn: tcp allocation with dont-fragment, even-port or reservation-token"))
		}
	}
	if a.DontFragment {
		if err := (DontFragment{}).GetFrom(m); err != nil {
			return a, bad(err)
		}
	}
	if m.Contains(stun.AttrLifetime) {
		if err := a.Lifetime.GetFrom(m); err != nil {
			return a, bad(err)
		}
		a.HasLifetime = true
	}
	if hasEven {
		a.EvenPort = new(EvenPort)
		if err := a.EvenPort.GetFrom(m); err != nil {
			return a, bad(err)
		}
	}
	hasFamily := m.Contains(stun.AttrRequestedAddressFamily)
	hasAdditional := m.Contains(AttrAdditionalAddressFamily) || m.Contains(AttrAdditionalAddressFamilyDraft)
	if hasToken {
		a.ReservationToken = new(ReservationToken)
		if err := a.ReservationToken.GetFrom(m); err != nil {
			return a, bad(err)
		}
		if hasEven || hasFamily || hasAdditional {
			return a, bad(errors.New("turn: reservation-token with even-port or an address family"))
		}
	}
	if hasFamily && hasAdditional {
		return a, bad(errors.New("turn: both requested- and additional-address-family"))
	}
	if hasFamily {
		var f RequestedAddressFamily
		if err := f.GetFrom(m); err != nil {
			if errors.Is(err, ErrBadFamily) {
				return a, codeErr(stun.CodeAddrFamilyNotSupported, err)
			}
			return a, bad(err)
		}
		a.Family = Family(f)
	}
	if hasAdditional {
		if a.EvenPort != nil && a.EvenPort.Reserve {
			return a, bad(errors.New("turn: even-port reserve with additional-address-family"))
		}
		var f AdditionalAddressFamily
		if err := f.GetFrom(m); err != nil {
			return a, bad(err)
		}
		if Family(f) != FamilyIPv6 {
			return a, bad(attrErr(AttrAdditionalAddressFamily, ErrBadFamily))
		}
		a.AdditionalFamily = FamilyIPv6
	}
	return a, nil
}

// RelayFamily returns the family of the (first) relay the Allocate asks for:
// REQUESTED-ADDRESS-FAMILY, or IPv4 when it is absent.
func (a *AllocateRequest) RelayFamily() Family {
	if a.Family == FamilyIPv6 {
		return FamilyIPv6
	}
	return FamilyIPv4
}

// Families returns every relay family the Allocate asks for, in the order the
// XOR-RELAYED-ADDRESS attributes of the success response list them: the
// requested family, then IPv6 for a dual-stack request.
func (a *AllocateRequest) Families() []Family {
	if a.AdditionalFamily == FamilyIPv6 {
		return []Family{FamilyIPv4, FamilyIPv6}
	}
	return []Family{a.RelayFamily()}
}

// GrantedLifetime returns the lifetime to grant, given the server's maximum
// (see AllocateLifetime).
func (a *AllocateRequest) GrantedLifetime(max time.Duration) time.Duration {
	return AllocateLifetime(a.Lifetime, a.HasLifetime, max)
}

// RefreshRequest is a parsed Refresh request.
type RefreshRequest struct {
	// Lifetime is LIFETIME; HasLifetime says whether it was present.
	Lifetime    Lifetime
	HasLifetime bool
	// Family is REQUESTED-ADDRESS-FAMILY, 0 when absent: in a dual-stack
	// allocation it selects the relay to refresh or delete.
	Family Family
}

// ParseRefresh reads a Refresh request. A malformed LIFETIME or
// REQUESTED-ADDRESS-FAMILY is 400; a family value other than IPv4 and IPv6 is
// 443 (it matches no relay). The engine answers 443 itself when Family names
// a relay the allocation lacks.
func ParseRefresh(m *stun.Message) (RefreshRequest, error) {
	var r RefreshRequest
	if err := expectType(m, TypeRefreshRequest); err != nil {
		return r, err
	}
	if m.Contains(stun.AttrLifetime) {
		if err := r.Lifetime.GetFrom(m); err != nil {
			return r, bad(err)
		}
		r.HasLifetime = true
	}
	if m.Contains(stun.AttrRequestedAddressFamily) {
		var f RequestedAddressFamily
		if err := f.GetFrom(m); err != nil {
			if errors.Is(err, ErrBadFamily) {
				return r, codeErr(stun.CodePeerAddrFamilyMismatch, err)
			}
			return r, bad(err)
		}
		r.Family = Family(f)
	}
	return r, nil
}

// GrantedLifetime returns the lifetime the Refresh sets, 0 meaning delete
// (see RefreshLifetime).
func (r *RefreshRequest) GrantedLifetime(max time.Duration) time.Duration {
	return RefreshLifetime(r.Lifetime, r.HasLifetime, max)
}

// ParseCreatePermission reads every XOR-PEER-ADDRESS of a CreatePermission
// request. None, or any malformed one, is 400. Ports are returned as sent;
// permissions ignore them.
func ParseCreatePermission(m *stun.Message) ([]netip.AddrPort, error) {
	if err := expectType(m, TypeCreatePermissionRequest); err != nil {
		return nil, err
	}
	peers, err := PeerAddresses(m)
	if err != nil {
		return nil, bad(err)
	}
	return peers, nil
}

// ChannelBindRequest is a parsed ChannelBind request.
type ChannelBindRequest struct {
	Channel uint16
	Peer    netip.AddrPort
}

// ParseChannelBind reads a ChannelBind request. CHANNEL-NUMBER or
// XOR-PEER-ADDRESS missing, malformed or repeated, or a channel outside
// 0x4000-0x4FFF, is 400.
func ParseChannelBind(m *stun.Message) (ChannelBindRequest, error) {
	var r ChannelBindRequest
	if err := expectType(m, TypeChannelBindRequest); err != nil {
		return r, err
	}
	v, err := getOnce(m, stun.AttrChannelNumber)
	if err != nil {
		return r, bad(err)
	}
	if len(v) != 4 {
		return r, bad(attrErr(stun.AttrChannelNumber, ErrAttrLength))
	}
	r.Channel = uint16(v[0])<<8 | uint16(v[1])
	if !ValidChannel(r.Channel) {
		return r, bad(attrErr(stun.AttrChannelNumber, ErrChannelRange))
	}
	if r.Peer, err = onlyPeer(m); err != nil {
		return r, bad(err)
	}
	return r, nil
}

func onlyPeer(m *stun.Message) (netip.AddrPort, error) {
	v, err := getOnce(m, stun.AttrXORPeerAddress)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := parseXORAddr(v, m.TransactionID)
	if err != nil {
		return netip.AddrPort{}, attrErr(stun.AttrXORPeerAddress, err)
	}
	return ap, nil
}

// SendIndication is a parsed Send indication.
type SendIndication struct {
	Peer netip.AddrPort
	// Data aliases m.Raw.
	Data []byte
	// DontFragment asks for this datagram to go out with DF set.
	DontFragment bool
}

// ParseSend reads a Send indication. XOR-PEER-ADDRESS or DATA missing,
// malformed or repeated is an error; indications are never answered, so the
// engine drops it. Data aliases m.Raw (no copy).
func ParseSend(m *stun.Message) (SendIndication, error) {
	var s SendIndication
	if m.Type != TypeSendIndication {
		return s, fmt.Errorf("turn: %s: %w", m.Type, ErrUnexpectedType)
	}
	var err error
	if s.Peer, err = onlyPeer(m); err != nil {
		return s, err
	}
	if s.Data, err = getOnce(m, stun.AttrData); err != nil {
		return s, err
	}
	s.DontFragment = m.Contains(stun.AttrDontFragment)
	return s, nil
}

// ParseConnect reads an RFC 6062 Connect request: XOR-PEER-ADDRESS missing,
// malformed or repeated is 400.
func ParseConnect(m *stun.Message) (netip.AddrPort, error) {
	if err := expectType(m, TypeConnectRequest); err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := onlyPeer(m)
	if err != nil {
		return ap, bad(err)
	}
	return ap, nil
}

// ParseConnectionBind reads an RFC 6062 ConnectionBind request:
// CONNECTION-ID missing, malformed or repeated is 400.
func ParseConnectionBind(m *stun.Message) (ConnectionID, error) {
	if err := expectType(m, TypeConnectionBindRequest); err != nil {
		return 0, err
	}
	v, err := getOnce(m, stun.AttrConnectionID)
	if err != nil {
		return 0, bad(err)
	}
	if len(v) != 4 {
		return 0, bad(attrErr(stun.AttrConnectionID, ErrAttrLength))
	}
	return ConnectionID(uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])), nil
}
