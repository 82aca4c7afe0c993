package turn

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

const magicCookie = 0x2112A442

// FamilyOf returns the TURN family of an address: IPv4 for a 4-byte address,
// IPv6 for every 16-byte one, IPv4-mapped included (turn.md §2.2 rule 3).
// It returns 0 for the zero Addr.
func FamilyOf(ip netip.Addr) Family {
	switch {
	case ip.Is4():
		return FamilyIPv4
	case ip.Is6():
		return FamilyIPv6
	}
	return 0
}

// AppendXORAddr appends the value of an XOR address attribute (XOR-PEER-,
// XOR-RELAYED- or XOR-MAPPED-ADDRESS) for ap, XORed with the cookie and tid.
// The family follows the address as it is: an IPv4-mapped IPv6 address is
// written as family 0x02, so Unmap it first to send IPv4. The zone is
// ignored.
func AppendXORAddr(dst []byte, ap netip.AddrPort, tid [stun.TransactionIDSize]byte) ([]byte, error) {
	out, err := appendXORAddr(dst, ap, tid)
	if err != nil {
		return dst, fmt.Errorf("turn: xor address %v: %w", ap, err)
	}
	return out, nil
}

func appendXORAddr(dst []byte, ap netip.AddrPort, tid [stun.TransactionIDSize]byte) ([]byte, error) {
	ip := ap.Addr()
	port := ap.Port() ^ uint16(magicCookie>>16)
	switch {
	case ip.Is4():
		a := ip.As4()
		x := binary.BigEndian.Uint32(a[:]) ^ magicCookie
		dst = append(dst, 0, byte(FamilyIPv4), byte(port>>8), byte(port))
		return binary.BigEndian.AppendUint32(dst, x), nil
	case ip.Is6():
		a := ip.As16()
		dst = append(dst, 0, byte(FamilyIPv6), byte(port>>8), byte(port))
		var key [16]byte
		binary.BigEndian.PutUint32(key[:4], magicCookie)
		copy(key[4:], tid[:])
		for i := range a {
			dst = append(dst, a[i]^key[i])
		}
		return dst, nil
	}
	return dst, ErrBadFamily
}

// ParseXORAddr decodes the value of an XOR address attribute. The length must
// be exactly 8 for family 0x01 and 20 for family 0x02; the family comes from
// the family byte, so a family-0x02 value holding ::ffff:a.b.c.d yields an
// IPv4-mapped IPv6 address, never an IPv4 one. The first (reserved) byte is
// ignored.
func ParseXORAddr(v []byte, tid [stun.TransactionIDSize]byte) (netip.AddrPort, error) {
	ap, err := parseXORAddr(v, tid)
	if err != nil {
		return ap, fmt.Errorf("turn: xor address: %w", err)
	}
	return ap, nil
}

func parseXORAddr(v []byte, tid [stun.TransactionIDSize]byte) (netip.AddrPort, error) {
	if len(v) < 4 {
		return netip.AddrPort{}, ErrAttrLength
	}
	port := binary.BigEndian.Uint16(v[2:4]) ^ uint16(magicCookie>>16)
	switch Family(v[1]) {
	case FamilyIPv4:
		if len(v) != 8 {
			return netip.AddrPort{}, ErrAttrLength
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.BigEndian.Uint32(v[4:8])^magicCookie)
		return netip.AddrPortFrom(netip.AddrFrom4(a), port), nil
	case FamilyIPv6:
		if len(v) != 20 {
			return netip.AddrPort{}, ErrAttrLength
		}
		var key, a [16]byte
		binary.BigEndian.PutUint32(key[:4], magicCookie)
		copy(key[4:], tid[:])
		for i := range a {
			a[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(a), port), nil
	}
	return netip.AddrPort{}, ErrBadFamily
}

// AddXORAddr adds an XOR address attribute of type t for ap to m.
func AddXORAddr(m *stun.Message, t stun.AttrType, ap netip.AddrPort) error {
	var buf [20]byte
	v, err := appendXORAddr(buf[:0], ap, m.TransactionID)
	if err != nil {
		return attrErr(t, err)
	}
	m.Add(t, v)
	return nil
}

// GetXORAddr decodes the first XOR address attribute of type t in m, with the
// length and family checks of ParseXORAddr.
func GetXORAddr(m *stun.Message, t stun.AttrType) (netip.AddrPort, error) {
	v, err := get(m, t)
	if err != nil {
		return netip.AddrPort{}, err
	}
	ap, err := parseXORAddr(v, m.TransactionID)
	if err != nil {
		return netip.AddrPort{}, attrErr(t, err)
	}
	return ap, nil
}

// GetXORAddrs decodes every XOR address attribute of type t in m, in message
// order; any malformed one fails the whole call. It returns ErrMissing when
// there is none.
func GetXORAddrs(m *stun.Message, t stun.AttrType) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, a := range m.Attributes {
		if a.Type != t {
			continue
		}
		ap, err := parseXORAddr(a.Value, m.TransactionID)
		if err != nil {
			return nil, attrErr(t, err)
		}
		out = append(out, ap)
	}
	if len(out) == 0 {
		return nil, attrErr(t, ErrMissing)
	}
	return out, nil
}

// PeerAddress is XOR-PEER-ADDRESS (0x0012). A message may carry several
// (CreatePermission); GetFrom reads the first, so use PeerAddresses or
// stun.Message.ForEach to read them all.
type PeerAddress struct {
	Addr netip.AddrPort
}

// AddTo adds XOR-PEER-ADDRESS to m.
func (a PeerAddress) AddTo(m *stun.Message) error {
	return AddXORAddr(m, stun.AttrXORPeerAddress, a.Addr)
}

// GetFrom decodes the first XOR-PEER-ADDRESS of m.
func (a *PeerAddress) GetFrom(m *stun.Message) error {
	ap, err := GetXORAddr(m, stun.AttrXORPeerAddress)
	if err != nil {
		return err
	}
	a.Addr = ap
	return nil
}

// PeerAddresses decodes every XOR-PEER-ADDRESS of m.
func PeerAddresses(m *stun.Message) ([]netip.AddrPort, error) {
	return GetXORAddrs(m, stun.AttrXORPeerAddress)
}

// RelayedAddress is XOR-RELAYED-ADDRESS (0x0016). A dual-stack Allocate
// success carries two; RelayedAddresses reads them all.
type RelayedAddress struct {
	Addr netip.AddrPort
}

// AddTo adds XOR-RELAYED-ADDRESS to m.
func (a RelayedAddress) AddTo(m *stun.Message) error {
	return AddXORAddr(m, stun.AttrXORRelayedAddress, a.Addr)
}

// GetFrom decodes the first XOR-RELAYED-ADDRESS of m.
func (a *RelayedAddress) GetFrom(m *stun.Message) error {
	ap, err := GetXORAddr(m, stun.AttrXORRelayedAddress)
	if err != nil {
		return err
	}
	a.Addr = ap
	return nil
}

// RelayedAddresses decodes every XOR-RELAYED-ADDRESS of m.
func RelayedAddresses(m *stun.Message) ([]netip.AddrPort, error) {
	return GetXORAddrs(m, stun.AttrXORRelayedAddress)
}

// MappedAddress is XOR-MAPPED-ADDRESS (0x0020) with the length and family
// checks pion's XORMappedAddress.GetFrom lacks, and without its net.IP
// allocations.
type MappedAddress struct {
	Addr netip.AddrPort
}

// AddTo adds XOR-MAPPED-ADDRESS to m.
func (a MappedAddress) AddTo(m *stun.Message) error {
	return AddXORAddr(m, stun.AttrXORMappedAddress, a.Addr)
}

// GetFrom decodes the first XOR-MAPPED-ADDRESS of m.
func (a *MappedAddress) GetFrom(m *stun.Message) error {
	ap, err := GetXORAddr(m, stun.AttrXORMappedAddress)
	if err != nil {
		return err
	}
	a.Addr = ap
	return nil
}

var (
	_ stun.Setter = PeerAddress{}
	_ stun.Getter = (*PeerAddress)(nil)
	_ stun.Setter = RelayedAddress{}
	_ stun.Getter = (*RelayedAddress)(nil)
	_ stun.Setter = MappedAddress{}
	_ stun.Getter = (*MappedAddress)(nil)
)
