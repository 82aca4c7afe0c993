package turn

import (
	"encoding/binary"
	"time"

	"github.com/pion/stun"
)

// ChannelNumber is CHANNEL-NUMBER (0x000C): a 16-bit channel number followed
// by 16 RFFU bits. GetFrom checks the length only; ValidChannel checks the
// RFC 8656 range.
type ChannelNumber uint16

// AddTo adds CHANNEL-NUMBER to m.
func (c ChannelNumber) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint16(v[:2], uint16(c))
	m.Add(stun.AttrChannelNumber, v[:])
	return nil
}

// GetFrom decodes the first CHANNEL-NUMBER of m; the value must be 4 bytes.
// The RFFU bits are ignored.
func (c *ChannelNumber) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrChannelNumber)
	if err != nil {
		return err
	}
	if len(v) != 4 {
		return attrErr(stun.AttrChannelNumber, ErrAttrLength)
	}
	*c = ChannelNumber(binary.BigEndian.Uint16(v[:2]))
	return nil
}

// Lifetime is LIFETIME (0x000D) in seconds.
type Lifetime uint32

// LifetimeOf converts a duration to a Lifetime, rounding down to whole
// seconds and clamping to the u32 range.
func LifetimeOf(d time.Duration) Lifetime {
	switch s := d / time.Second; {
	case s <= 0:
		return 0
	case s > 0xFFFFFFFF:
		return 0xFFFFFFFF
	default:
		return Lifetime(s)
	}
}

// Duration returns the lifetime as a time.Duration.
func (l Lifetime) Duration() time.Duration { return time.Duration(l) * time.Second }

// AddTo adds LIFETIME to m.
func (l Lifetime) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(l))
	m.Add(stun.AttrLifetime, v[:])
	return nil
}

// GetFrom decodes the first LIFETIME of m; the value must be 4 bytes.
func (l *Lifetime) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrLifetime)
	if err != nil {
		return err
	}
	if len(v) != 4 {
		return attrErr(stun.AttrLifetime, ErrAttrLength)
	}
	*l = Lifetime(binary.BigEndian.Uint32(v))
	return nil
}

// EvenPort is EVEN-PORT (0x0018): one byte whose most significant bit is R,
// "also reserve the next port". GetFrom reads R from the MSB only, so
// pion/turn's 0xFF also means R=1; AddTo writes 0x80 or 0x00.
type EvenPort struct {
	// Reserve is the R bit.
	Reserve bool
}

// AddTo adds EVEN-PORT to m.
func (e EvenPort) AddTo(m *stun.Message) error {
	v := [1]byte{0}
	if e.Reserve {
		v[0] = 0x80
	}
	m.Add(stun.AttrEvenPort, v[:])
	return nil
}

// GetFrom decodes the first EVEN-PORT of m; the value must be 1 byte.
func (e *EvenPort) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrEvenPort)
	if err != nil {
		return err
	}
	if len(v) != 1 {
		return attrErr(stun.AttrEvenPort, ErrAttrLength)
	}
	e.Reserve = v[0]&0x80 != 0
	return nil
}

// RequestedTransport is REQUESTED-TRANSPORT (0x0019): a protocol number
// (ProtoUDP or ProtoTCP) followed by 24 RFFU bits.
type RequestedTransport struct {
	// Protocol is the IP protocol number.
	Protocol uint8
}

// AddTo adds REQUESTED-TRANSPORT to m.
func (t RequestedTransport) AddTo(m *stun.Message) error {
	v := [4]byte{t.Protocol}
	m.Add(stun.AttrRequestedTransport, v[:])
	return nil
}

// GetFrom decodes the first REQUESTED-TRANSPORT of m; the value must be 4
// bytes. Any protocol number is returned; the caller decides which it
// supports (442 otherwise).
func (t *RequestedTransport) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrRequestedTransport)
	if err != nil {
		return err
	}
	if len(v) != 4 {
		return attrErr(stun.AttrRequestedTransport, ErrAttrLength)
	}
	t.Protocol = v[0]
	return nil
}

// DontFragment is DONT-FRAGMENT (0x001A), which has no value.
type DontFragment struct{}

// AddTo adds DONT-FRAGMENT to m.
func (DontFragment) AddTo(m *stun.Message) error {
	m.Add(stun.AttrDontFragment, nil)
	return nil
}

// GetFrom succeeds when m carries DONT-FRAGMENT with an empty value.
func (DontFragment) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrDontFragment)
	if err != nil {
		return err
	}
	if len(v) != 0 {
		return attrErr(stun.AttrDontFragment, ErrAttrLength)
	}
	return nil
}

// HasDontFragment reports whether m carries DONT-FRAGMENT (of any length).
func HasDontFragment(m *stun.Message) bool { return m.Contains(stun.AttrDontFragment) }

// ReservationToken is RESERVATION-TOKEN (0x0022): an opaque 8-byte token.
type ReservationToken [8]byte

// AddTo adds RESERVATION-TOKEN to m.
func (t ReservationToken) AddTo(m *stun.Message) error {
	m.Add(stun.AttrReservationToken, t[:])
	return nil
}

// GetFrom decodes the first RESERVATION-TOKEN of m; the value must be 8
// bytes.
func (t *ReservationToken) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrReservationToken)
	if err != nil {
		return err
	}
	if len(v) != 8 {
		return attrErr(stun.AttrReservationToken, ErrAttrLength)
	}
	copy(t[:], v)
	return nil
}

// ConnectionID is CONNECTION-ID (0x002A, RFC 6062): an opaque 32-bit value.
type ConnectionID uint32

// AddTo adds CONNECTION-ID to m.
func (c ConnectionID) AddTo(m *stun.Message) error {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], uint32(c))
	m.Add(stun.AttrConnectionID, v[:])
	return nil
}

// GetFrom decodes the first CONNECTION-ID of m; the value must be 4 bytes.
func (c *ConnectionID) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrConnectionID)
	if err != nil {
		return err
	}
	if len(v) != 4 {
		return attrErr(stun.AttrConnectionID, ErrAttrLength)
	}
	*c = ConnectionID(binary.BigEndian.Uint32(v))
	return nil
}

// RequestedAddressFamily is REQUESTED-ADDRESS-FAMILY (0x0017): a family byte
// followed by 24 RFFU bits.
type RequestedAddressFamily Family

// AddTo adds REQUESTED-ADDRESS-FAMILY to m.
func (f RequestedAddressFamily) AddTo(m *stun.Message) error {
	return addFamily(m, stun.AttrRequestedAddressFamily, Family(f))
}

// GetFrom decodes the first REQUESTED-ADDRESS-FAMILY of m. A 4-byte value
// with a family other than IPv4 and IPv6 is stored and reported as
// ErrBadFamily (an Allocate answers it with 440, a Refresh with 443).
func (f *RequestedAddressFamily) GetFrom(m *stun.Message) error {
	fam, read, err := getFamily(m, stun.AttrRequestedAddressFamily)
	if read {
		*f = RequestedAddressFamily(fam)
	}
	return err
}

// AdditionalAddressFamily is ADDITIONAL-ADDRESS-FAMILY (0x8000), laid out as
// REQUESTED-ADDRESS-FAMILY. GetFrom also accepts coturn's draft code point
// 0x8032 when 0x8000 is absent; AddTo writes 0x8000.
type AdditionalAddressFamily Family

// AddTo adds ADDITIONAL-ADDRESS-FAMILY to m.
func (f AdditionalAddressFamily) AddTo(m *stun.Message) error {
	return addFamily(m, AttrAdditionalAddressFamily, Family(f))
}

// GetFrom decodes the first ADDITIONAL-ADDRESS-FAMILY (or, failing that, the
// first 0x8032) of m, with the checks of RequestedAddressFamily.GetFrom.
// Getters leave the receiver unchanged when the value is malformed.
func (f *AdditionalAddressFamily) GetFrom(m *stun.Message) error {
	t := AttrAdditionalAddressFamily
	if !m.Contains(t) && m.Contains(AttrAdditionalAddressFamilyDraft) {
		t = AttrAdditionalAddressFamilyDraft
	}
	fam, read, err := getFamily(m, t)
	if read {
		*f = AdditionalAddressFamily(fam)
	}
	return err
}

func addFamily(m *stun.Message, t stun.AttrType, f Family) error {
	if !f.Valid() {
		return attrErr(t, ErrBadFamily)
	}
	v := [4]byte{byte(f)}
	m.Add(t, v[:])
	return nil
}

// getFamily reads a family attribute; read says whether a 4-byte value was
// found (its family may still be invalid).
func getFamily(m *stun.Message, t stun.AttrType) (f Family, read bool, err error) {
	v, err := get(m, t)
	if err != nil {
		return 0, false, err
	}
	if len(v) != 4 {
		return 0, false, attrErr(t, ErrAttrLength)
	}
	f = Family(v[0])
	if !f.Valid() {
		return f, true, attrErr(t, ErrBadFamily)
	}
	return f, true, nil
}

var (
	_ stun.Setter = ChannelNumber(0)
	_ stun.Getter = (*ChannelNumber)(nil)
	_ stun.Setter = Lifetime(0)
	_ stun.Getter = (*Lifetime)(nil)
	_ stun.Setter = EvenPort{}
	_ stun.Getter = (*EvenPort)(nil)
	_ stun.Setter = RequestedTransport{}
	_ stun.Getter = (*RequestedTransport)(nil)
	_ stun.Setter = DontFragment{}
	_ stun.Getter = DontFragment{}
	_ stun.Setter = ReservationToken{}
	_ stun.Getter = (*ReservationToken)(nil)
	_ stun.Setter = ConnectionID(0)
	_ stun.Getter = (*ConnectionID)(nil)
	_ stun.Setter = RequestedAddressFamily(0)
	_ stun.Getter = (*RequestedAddressFamily)(nil)
	_ stun.Setter = AdditionalAddressFamily(0)
	_ stun.Getter = (*AdditionalAddressFamily)(nil)
)
