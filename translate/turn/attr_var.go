package turn

import (
	"encoding/binary"
	"strings"

	"github.com/pion/stun"
)

// maxAttrValue is the largest attribute value whose padded TLV still fits a
// STUN message (the length field is 16 bits and a multiple of 4).
const maxAttrValue = 0xFFFC - 4

// maxReasonLen bounds ERROR-CODE and ADDRESS-ERROR-CODE reason phrases (RFC
// 8489: fewer than 128 characters, at most 763 bytes).
const maxReasonLen = 763

// fits reports whether an attribute with a value of n bytes still fits m.
func fits(m *stun.Message, n int) bool {
	return n <= maxAttrValue && int(m.Length)+4+pad4(n) <= 0xFFFC
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// Data is DATA (0x0013): the raw payload of a Send or Data indication.
// GetFrom does not copy: the value aliases m.Raw and is valid as long as it.
type Data []byte

// AddTo adds DATA to m (padded with zeros).
func (d Data) AddTo(m *stun.Message) error {
	if !fits(m, len(d)) {
		return attrErr(stun.AttrData, ErrTooLarge)
	}
	m.Add(stun.AttrData, d)
	return nil
}

// GetFrom sets d to the first DATA value of m, without copying. An empty
// value is valid.
func (d *Data) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrData)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ICMP is the ICMP attribute (0x8004, RFC 8656 §18.13) of a Data indication
// reporting an ICMP error. It is laid out with the 8/8 reading turn.md §2.3
// recommends: two reserved bytes, the ICMP type byte, the ICMP code byte, then
// 32 bits of Error Data (the next-hop MTU for ICMPv4 3/4 and ICMPv6 2, zero
// otherwise). The family (ICMP or ICMPv6) is the family of the indication's
// XOR-PEER-ADDRESS.
type ICMP struct {
	// Type is the ICMP or ICMPv6 type.
	Type uint8
	// Code is the ICMP or ICMPv6 code.
	Code uint8
	// ErrorData is the MTU for "fragmentation needed" and "packet too big".
	ErrorData uint32
}

// AddTo adds ICMP to m.
func (i ICMP) AddTo(m *stun.Message) error {
	v := [8]byte{0, 0, i.Type, i.Code}
	binary.BigEndian.PutUint32(v[4:], i.ErrorData)
	m.Add(AttrICMP, v[:])
	return nil
}

// GetFrom decodes the first ICMP attribute of m; the value must be 8 bytes
// and the reserved bytes are ignored.
func (i *ICMP) GetFrom(m *stun.Message) error {
	v, err := get(m, AttrICMP)
	if err != nil {
		return err
	}
	if len(v) != 8 {
		return attrErr(AttrICMP, ErrAttrLength)
	}
	i.Type, i.Code = v[2], v[3]
	i.ErrorData = binary.BigEndian.Uint32(v[4:])
	return nil
}

// AddressErrorCode is ADDRESS-ERROR-CODE (0x8001): in a partially successful
// dual-stack Allocate, the family that could not be allocated and why (440 or
// 508). GetFrom also accepts coturn's draft code point 0x8033 when 0x8001 is
// absent; AddTo writes 0x8001.
type AddressErrorCode struct {
	Family Family
	Code   stun.ErrorCode
	// Reason is the reason phrase; AddTo writes ReasonPhrase(Code) when it
	// is empty.
	Reason string
}

// AddTo adds ADDRESS-ERROR-CODE to m.
func (a AddressErrorCode) AddTo(m *stun.Message) error {
	if !a.Family.Valid() {
		return attrErr(AttrAddressErrorCode, ErrBadFamily)
	}
	v, err := appendErrorCode([]byte{byte(a.Family), 0}, a.Code, a.Reason)
	if err != nil {
		return attrErr(AttrAddressErrorCode, err)
	}
	m.Add(AttrAddressErrorCode, v)
	return nil
}

// GetFrom decodes the first ADDRESS-ERROR-CODE (or 0x8033) of m. The family
// must be valid, the class 3-6 and the number 0-99; trailing NULs are
// stripped from the reason.
func (a *AddressErrorCode) GetFrom(m *stun.Message) error {
	t := AttrAddressErrorCode
	if !m.Contains(t) && m.Contains(AttrAddressErrorCodeDraft) {
		t = AttrAddressErrorCodeDraft
	}
	v, err := get(m, t)
	if err != nil {
		return err
	}
	if len(v) < 4 {
		return attrErr(t, ErrAttrLength)
	}
	f := Family(v[0])
	if !f.Valid() {
		return attrErr(t, ErrBadFamily)
	}
	code, reason, err := parseErrorCode(v)
	if err != nil {
		return attrErr(t, err)
	}
	a.Family, a.Code, a.Reason = f, code, reason
	return nil
}

// ErrorCodeAttr is ERROR-CODE (0x0009) with the checks pion's
// ErrorCodeAttribute lacks: class 3-6, number 0-99, a bounded reason, and
// trailing NULs stripped (coturn terminates reasons with one). AddTo writes
// ReasonPhrase(Code) when Reason is empty.
type ErrorCodeAttr struct {
	Code   stun.ErrorCode
	Reason string
}

// AddTo adds ERROR-CODE to m.
func (e ErrorCodeAttr) AddTo(m *stun.Message) error {
	v, err := appendErrorCode([]byte{0, 0}, e.Code, e.Reason)
	if err != nil {
		return attrErr(stun.AttrErrorCode, err)
	}
	m.Add(stun.AttrErrorCode, v)
	return nil
}

// GetFrom decodes the first ERROR-CODE of m.
func (e *ErrorCodeAttr) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrErrorCode)
	if err != nil {
		return err
	}
	code, reason, err := parseErrorCode(v)
	if err != nil {
		return attrErr(stun.AttrErrorCode, err)
	}
	e.Code, e.Reason = code, reason
	return nil
}

func appendErrorCode(dst []byte, code stun.ErrorCode, reason string) ([]byte, error) {
	if code < 300 || code > 699 {
		return nil, ErrAttrValue
	}
	if reason == "" {
		reason = ReasonPhrase(code)
	}
	if len(reason) > maxReasonLen {
		return nil, ErrTooLarge
	}
	dst = append(dst, byte(code/100), byte(code%100))
	return append(dst, reason...), nil
}

// parseErrorCode reads bytes 2.. of an ERROR-CODE style value (class byte,
// number byte, reason); bytes 0-1 belong to the caller.
func parseErrorCode(v []byte) (stun.ErrorCode, string, error) {
	if len(v) < 4 {
		return 0, "", ErrAttrLength
	}
	class, number := v[2]&0x07, v[3]
	if class < 3 || class > 6 || number > 99 {
		return 0, "", ErrAttrValue
	}
	r := v[4:]
	if len(r) > maxReasonLen {
		return 0, "", ErrTooLarge
	}
	return stun.ErrorCode(int(class)*100 + int(number)), strings.TrimRight(string(r), "\x00"), nil
}

// UnknownAttributes is UNKNOWN-ATTRIBUTES (0x000A) in the RFC layout: 2 bytes
// per type (pion's stun.UnknownAttributes writes 4, turn.md §2.4). GetFrom
// accepts any even length and skips 0x0000 entries, so pion's 4-byte form
// reads as intended too.
type UnknownAttributes []stun.AttrType

// AddTo adds UNKNOWN-ATTRIBUTES to m.
func (u UnknownAttributes) AddTo(m *stun.Message) error {
	if !fits(m, 2*len(u)) {
		return attrErr(stun.AttrUnknownAttributes, ErrTooLarge)
	}
	v := make([]byte, 0, 2*len(u))
	for _, t := range u {
		v = binary.BigEndian.AppendUint16(v, uint16(t))
	}
	m.Add(stun.AttrUnknownAttributes, v)
	return nil
}

// GetFrom decodes the first UNKNOWN-ATTRIBUTES of m.
func (u *UnknownAttributes) GetFrom(m *stun.Message) error {
	v, err := get(m, stun.AttrUnknownAttributes)
	if err != nil {
		return err
	}
	if len(v)%2 != 0 {
		return attrErr(stun.AttrUnknownAttributes, ErrAttrLength)
	}
	out := (*u)[:0]
	for i := 0; i+1 < len(v); i += 2 {
		if t := stun.AttrType(binary.BigEndian.Uint16(v[i:])); t != 0 {
			out = append(out, t)
		}
	}
	*u = out
	return nil
}

var (
	_ stun.Setter = Data(nil)
	_ stun.Getter = (*Data)(nil)
	_ stun.Setter = ICMP{}
	_ stun.Getter = (*ICMP)(nil)
	_ stun.Setter = AddressErrorCode{}
	_ stun.Getter = (*AddressErrorCode)(nil)
	_ stun.Setter = ErrorCodeAttr{}
	_ stun.Getter = (*ErrorCodeAttr)(nil)
	_ stun.Setter = UnknownAttributes(nil)
	_ stun.Getter = (*UnknownAttributes)(nil)
)
