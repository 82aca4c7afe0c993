package socks5

import (
	"github.com/sixgate/sixgate/gateway"
)

// MaxUDPHeaderLen is the longest UDP request header: RSV, FRAG, ATYP, a
// 255-byte domain name with its length byte, and DST.PORT. Reserving it in
// front of a payload always leaves room to prepend the header.
const MaxUDPHeaderLen = 2 + 1 + 1 + maxAddrLen

// UDPHeader is the header in front of each datagram relayed for UDP
// ASSOCIATE (RFC 1928 section 7), in both directions:
//
//	+----+------+------+----------+----------+----------+
//	|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+----+------+------+----------+----------+----------+
//	| 2  |  1   |  1   | Variable |    2     | Variable |
//	+----+------+------+----------+----------+----------+
//
// From the client, Addr is the destination; towards the client, the remote
// source of the datagram.
type UDPHeader struct {
	// Frag is the fragment number; 0 for a whole datagram. sixgate does not
	// reassemble: callers drop datagrams with Frag != 0, as RFC 1928 allows.
	Frag uint8
	Addr gateway.Addr
}

// Errors of ParseUDPHeader that carry no data, allocated once so that a
// flood of bad datagrams allocates nothing.
var (
	errUDPShort = [...]error{
		&FieldError{Msg: msgUDPHeader, Field: "RSV", Err: ErrShort},
		&FieldError{Msg: msgUDPHeader, Field: "RSV", Err: ErrShort},
		&FieldError{Msg: msgUDPHeader, Field: "FRAG", Err: ErrShort},
		&FieldError{Msg: msgUDPHeader, Field: "ATYP", Err: ErrShort},
	}
	errUDPShortAddr = &FieldError{Msg: msgUDPHeader, Field: "DST.ADDR", Err: ErrShort}
	errUDPShortPort = &FieldError{Msg: msgUDPHeader, Field: "DST.PORT", Err: ErrShort}
	errUDPAddrType  = &FieldError{Msg: msgUDPHeader, Field: "ATYP", Err: ErrAddrType}
)

// ParseUDPHeader parses the header at the start of datagram b and returns it
// with the payload, a sub-slice of b. RSV is ignored; FRAG is returned for
// the caller to judge. It does not allocate for IP addresses, nor for any
// error but a bad domain name; a domain name allocates its string.
func ParseUDPHeader(b []byte) (h UDPHeader, payload []byte, err error) {
	if len(b) < 4 {
		return UDPHeader{}, nil, errUDPShort[len(b)]
	}
	atyp := AddrType(b[3])
	alen := 0
	switch atyp {
	case AddrIPv4:
		alen = 4
	case AddrIPv6:
		alen = 16
	case AddrDomain:
		if len(b) < 5 {
			return UDPHeader{}, nil, errUDPShortAddr
		}
		alen = 1 + int(b[4])
	default:
		return UDPHeader{}, nil, errUDPAddrType
	}
	end := 4 + alen + 2
	switch {
	case len(b) < 4+alen:
		return UDPHeader{}, nil, errUDPShortAddr
	case len(b) < end:
		return UDPHeader{}, nil, errUDPShortPort
	}
	a, err := decodeAddr(atyp, b[4:end])
	if err != nil {
		return UDPHeader{}, nil, fieldErr(msgUDPHeader, "DST.ADDR", err)
	}
	return UDPHeader{Frag: b[2], Addr: a}, b[end:], nil
}

// Len returns the encoded length of the header. To prepend a header to a
// payload read at buf[MaxUDPHeaderLen:], append it in place:
//
//	start := MaxUDPHeaderLen - h.Len()
//	_, err := h.Append(buf[start:start])
//	datagram := buf[start : MaxUDPHeaderLen+n]
func (h UDPHeader) Len() int { return 3 + addrLen(h.Addr) }

// Append appends the encoded header to b; the caller appends the payload.
// It does not allocate when b has room. A domain name must be at most 255
// bytes of ASCII without NUL or empty labels (gateway.ErrBadName).
func (h UDPHeader) Append(b []byte) ([]byte, error) {
	if err := checkAddr(h.Addr); err != nil {
		return b, fieldErr(msgUDPHeader, "DST.ADDR", err)
	}
	b = append(b, 0, 0, h.Frag)
	return appendAddr(b, h.Addr), nil
}
