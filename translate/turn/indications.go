package turn

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

// NewDataIndication builds a Data indication from peer carrying data
// (XOR-PEER-ADDRESS, DATA; TV12). Indications are never signed; tid should
// be fresh and random (stun.NewTransactionID). AppendDataIndication is the
// allocation-free equivalent for the relay path.
func NewDataIndication(tid [stun.TransactionIDSize]byte, peer netip.AddrPort, data []byte) (*stun.Message, error) {
	return build(TypeDataIndication, tid, ResponseOptions{}, []stun.Setter{PeerAddress{Addr: peer}, Data(data)})
}

// NewICMPIndication builds the Data indication that reports an ICMP error
// (XOR-PEER-ADDRESS = the failed datagram's destination, ICMP, and no DATA;
// TV13). See ICMPFromError.
func NewICMPIndication(tid [stun.TransactionIDSize]byte, peer netip.AddrPort, icmp ICMP) (*stun.Message, error) {
	return build(TypeDataIndication, tid, ResponseOptions{}, []stun.Setter{PeerAddress{Addr: peer}, icmp})
}

// NewSendIndication builds a Send indication to peer carrying data
// (XOR-PEER-ADDRESS, DATA, and DONT-FRAGMENT when df; TV11), for the client
// side.
func NewSendIndication(tid [stun.TransactionIDSize]byte, peer netip.AddrPort, data []byte, df bool) (*stun.Message, error) {
	attrs := []stun.Setter{PeerAddress{Addr: peer}, Data(data)}
	if df {
		attrs = append(attrs, DontFragment{})
	}
	return build(TypeSendIndication, tid, ResponseOptions{}, attrs)
}

// NewConnectionAttempt builds an RFC 6062 ConnectionAttempt indication
// (CONNECTION-ID, XOR-PEER-ADDRESS; TV26).
func NewConnectionAttempt(tid [stun.TransactionIDSize]byte, id ConnectionID, peer netip.AddrPort) (*stun.Message, error) {
	return build(TypeConnectionAttemptIndication, tid, ResponseOptions{}, []stun.Setter{id, PeerAddress{Addr: peer}})
}

var (
	errIndicationTooLarge = fmt.Errorf("turn: indication: %w", ErrTooLarge)
	errIndicationPeer     = fmt.Errorf("turn: indication: xor-peer-address: %w", ErrBadFamily)
)

// appendIndication appends a Data or Send indication: header, XOR-PEER-ADDRESS,
// DATA (zero padded) and, when df, DONT-FRAGMENT.
func appendIndication(dst []byte, t uint16, tid [stun.TransactionIDSize]byte, peer netip.AddrPort, data []byte, df bool) ([]byte, error) {
	var addrLen int
	switch FamilyOf(peer.Addr()) {
	case FamilyIPv4:
		addrLen = 8
	case FamilyIPv6:
		addrLen = 20
	default:
		return dst, errIndicationPeer
	}
	length := 4 + addrLen + 4 + pad4(len(data))
	if df {
		length += 4
	}
	if length > 0xFFFC {
		return dst, errIndicationTooLarge
	}
	dst = binary.BigEndian.AppendUint16(dst, t)
	dst = binary.BigEndian.AppendUint16(dst, uint16(length))
	dst = binary.BigEndian.AppendUint32(dst, magicCookie)
	dst = append(dst, tid[:]...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(stun.AttrXORPeerAddress))
	dst = binary.BigEndian.AppendUint16(dst, uint16(addrLen))
	dst, _ = appendXORAddr(dst, peer, tid) // cannot fail: the family is valid
	dst = binary.BigEndian.AppendUint16(dst, uint16(stun.AttrData))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(data)))
	dst = append(dst, data...)
	for i := len(data); i%4 != 0; i++ {
		dst = append(dst, 0)
	}
	if df {
		dst = binary.BigEndian.AppendUint16(dst, uint16(stun.AttrDontFragment))
		dst = binary.BigEndian.AppendUint16(dst, 0)
	}
	return dst, nil
}

// AppendDataIndication appends to dst the bytes NewDataIndication would
// build, without allocating when dst has room: 20 + 12 (IPv4 peer) or 24
// (IPv6 peer) + 4 + len(data) rounded up to 4. It fails when the result
// would exceed the largest STUN message or peer is invalid.
func AppendDataIndication(dst []byte, tid [stun.TransactionIDSize]byte, peer netip.AddrPort, data []byte) ([]byte, error) {
	return appendIndication(dst, TypeDataIndication.Value(), tid, peer, data, false)
}

// AppendSendIndication appends to dst the bytes NewSendIndication would
// build, without allocating when dst has room.
func AppendSendIndication(dst []byte, tid [stun.TransactionIDSize]byte, peer netip.AddrPort, data []byte, df bool) ([]byte, error) {
	return appendIndication(dst, TypeSendIndication.Value(), tid, peer, data, df)
}

// DataIndication is a parsed Data indication (the client side).
type DataIndication struct {
	// Peer is the datagram's source, or the failed datagram's destination
	// for an ICMP report.
	Peer netip.AddrPort
	// Data is the payload, aliasing m.Raw; nil for an ICMP report.
	Data []byte
	// HasICMP says the indication reports an ICMP error, described by ICMP.
	HasICMP bool
	ICMP    ICMP
}

// ParseData reads a Data indication: exactly one valid XOR-PEER-ADDRESS, and
// exactly one DATA or else an ICMP attribute. Data aliases m.Raw.
func ParseData(m *stun.Message) (DataIndication, error) {
	var d DataIndication
	if m.Type != TypeDataIndication {
		return d, fmt.Errorf("turn: %s: %w", m.Type, ErrUnexpectedType)
	}
	var err error
	if d.Peer, err = onlyPeer(m); err != nil {
		return d, err
	}
	if m.Contains(stun.AttrData) {
		d.Data, err = getOnce(m, stun.AttrData)
		return d, err
	}
	if err = d.ICMP.GetFrom(m); err != nil {
		return d, err
	}
	d.HasICMP = true
	return d, nil
}

// ParseConnectionAttempt reads an RFC 6062 ConnectionAttempt indication (the
// client side): CONNECTION-ID and XOR-PEER-ADDRESS.
func ParseConnectionAttempt(m *stun.Message) (ConnectionID, netip.AddrPort, error) {
	if m.Type != TypeConnectionAttemptIndication {
		return 0, netip.AddrPort{}, fmt.Errorf("turn: %s: %w", m.Type, ErrUnexpectedType)
	}
	var id ConnectionID
	if err := id.GetFrom(m); err != nil {
		return 0, netip.AddrPort{}, err
	}
	peer, err := onlyPeer(m)
	return id, peer, err
}
