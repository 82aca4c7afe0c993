package socks6

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"github.com/sixgate/sixgate/gateway"
)

// Version is the version byte of every SOCKS 6 message.
const Version = 0x06

// AddrType is an Address Type (ATYP) byte.
type AddrType uint8

// The defined address types. 0x02 is unused, as in SOCKS 5.
const (
	AddrIPv4   AddrType = 0x01
	AddrDomain AddrType = 0x03
	AddrIPv6   AddrType = 0x04
)

// String returns the address type's name.
func (t AddrType) String() string {
	switch t {
	case AddrIPv4:
		return "ipv4"
	case AddrDomain:
		return "domain"
	case AddrIPv6:
		return "ipv6"
	}
	return "unknown"
}

// AddrTypeOf returns the ATYP the codec writes for a: AddrDomain for a name,
// AddrIPv4 for an IPv4 address and for the zero Addr (written as 0.0.0.0),
// AddrIPv6 otherwise (an IPv4-mapped IPv6 address stays IPv6 on the wire).
func AddrTypeOf(a gateway.Addr) AddrType {
	switch {
	case a.Name != "":
		return AddrDomain
	case a.IP.Is6():
		return AddrIPv6
	}
	return AddrIPv4
}

// namePad is the NUL padding that aligns a style-A domain field of name
// length n to 4 bytes: (4 − (1+n) mod 4) mod 4.
func namePad(n int) int { return (4 - (1+n)%4) % 4 }

func checkName(name string) error {
	if len(name) == 0 || len(name) > gateway.MaxNameLen {
		return ErrTooLong
	}
	if strings.IndexByte(name, 0) >= 0 {
		return ErrValue
	}
	return nil
}

// addrFieldLen is the size of a's address field; padded selects the
// Request/Operation Reply form (names NUL-padded to 4-byte alignment).
func addrFieldLen(a gateway.Addr, padded bool) (int, error) {
	switch AddrTypeOf(a) {
	case AddrDomain:
		if err := checkName(a.Name); err != nil {
			return 0, err
		}
		n := 1 + len(a.Name)
		if padded {
			n += namePad(len(a.Name))
		}
		return n, nil
	case AddrIPv6:
		return 16, nil
	}
	return 4, nil
}

// putAddrField writes a's address field at the start of b, which must hold
// addrFieldLen bytes. Domain names are written style A: the length byte is
// the name's length; padding, if any, follows and is not counted.
func putAddrField(b []byte, a gateway.Addr, padded bool) int {
	switch AddrTypeOf(a) {
	case AddrDomain:
		b[0] = byte(len(a.Name))
		n := 1 + copy(b[1:], a.Name)
		if padded {
			for i := namePad(len(a.Name)); i > 0; i-- {
				b[n] = 0
				n++
			}
		}
		return n
	case AddrIPv6:
		ip := a.IP.As16()
		return copy(b, ip[:])
	}
	var ip [4]byte // an Addr without IP or name is written as 0.0.0.0
	if a.IP.IsValid() {
		ip = a.IP.As4()
	}
	return copy(b, ip[:])
}

// parseAddr parses an address field of type atyp at the start of b. off is
// the field's offset in the message and atypOff the ATYP's, for errors. padded selects the TCP form
// (§2.1): a domain name may be style A or B and is followed by its alignment
// padding; otherwise (Datagram headers) the name is unpadded. It returns the
// address and the field's length.
func parseAddr(b []byte, atyp AddrType, atypOff int, port uint16, padded bool, msg string, off int) (gateway.Addr, int, error) {
	switch atyp {
	case AddrIPv4:
		if len(b) < 4 {
			return gateway.Addr{}, 0, fieldErr(msg, "address", off, ErrShort)
		}
		return gateway.Addr{IP: netip.AddrFrom4([4]byte(b[:4])), Port: port}, 4, nil
	case AddrIPv6:
		if len(b) < 16 {
			return gateway.Addr{}, 0, fieldErr(msg, "address", off, ErrShort)
		}
		return gateway.Addr{IP: netip.AddrFrom16([16]byte(b[:16])), Port: port}, 16, nil
	case AddrDomain:
		return parseName(b, port, padded, msg, off)
	}
	return gateway.Addr{}, 0, fieldErr(msg, "address type", atypOff, ErrAddrType)
}

// nameBytesOK reports whether the name bytes (all or a prefix of the L bytes)
// can belong to style A or B: a NUL is allowed only when (1+L) mod 4 = 0,
// where it is style B's padding.
func nameBytesOK(l int, name []byte) bool {
	return (1+l)%4 == 0 || bytes.IndexByte(name, 0) < 0
}

// parseName parses a domain-name field tolerantly, as §2.1 recommends.
//
// TCP form: the length byte L is followed by L bytes; trailing NULs are
// stripped. If (1+L) mod 4 ≠ 0 the field is style A, whose L bytes hold no
// NUL, and (4 − (1+L) mod 4) mod 4 NUL padding bytes follow. If (1+L) mod 4 =
// 0 the field may be style A or B (the L bytes may end in NUL padding). Any
// other shape — in particular style C, whose length byte counts itself and so
// swallows the first byte after the field — is ErrDomainStyle. The NUL check
// runs on whatever part of the L bytes is present before the length check, so
// a truncated style-C message is reported as such, not as merely short.
//
// Datagram form: L bytes, trailing NULs stripped, no padding skipped.
func parseName(b []byte, port uint16, padded bool, msg string, off int) (gateway.Addr, int, error) {
	if len(b) < 1 {
		return gateway.Addr{}, 0, fieldErr(msg, "address length", off, ErrShort)
	}
	l := int(b[0])
	if l == 0 {
		return gateway.Addr{}, 0, fieldErr(msg, "address length", off, ErrBadLength)
	}
	name := b[1:]
	if len(name) > l {
		name = name[:l]
	}
	if padded && !nameBytesOK(l, name) {
		return gateway.Addr{}, 0, fieldErr(msg, "address length", off, ErrDomainStyle)
	}
	if len(name) < l {
		return gateway.Addr{}, 0, fieldErr(msg, "address", off+1, ErrShort)
	}
	n := 1 + l
	if padded {
		p := namePad(l)
		if len(b) < n+p {
			return gateway.Addr{}, 0, fieldErr(msg, "address padding", off+n, ErrShort)
		}
		for _, c := range b[n : n+p] {
			if c != 0 {
				return gateway.Addr{}, 0, fieldErr(msg, "address padding", off+n, ErrDomainStyle)
			}
		}
		n += p
	}
	for len(name) > 0 && name[len(name)-1] == 0 {
		name = name[:len(name)-1]
	}
	if len(name) == 0 {
		return gateway.Addr{}, 0, fieldErr(msg, "address", off+1, gateway.ErrBadName)
	}
	a, err := gateway.NameAddr(string(name), port)
	if err == nil && strings.HasSuffix(a.Name, ".") {
		// "a.." normalizes to "a.", which would normalize again to "a":
		// an empty label is no host name.
		err = fmt.Errorf("%w: empty label in %q", gateway.ErrBadName, a.Name)
	}
	if err != nil {
		return gateway.Addr{}, 0, fieldErr(msg, "address", off+1, err)
	}
	return a, n, nil
}
