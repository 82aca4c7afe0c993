package socks5

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/sixgate/sixgate/gateway"
)

// maxAddrLen is the longest ATYP-specific address and port: a length byte,
// a 255-byte domain name and the port.
const maxAddrLen = 1 + gateway.MaxNameLen + 2

// readAddr reads the address and port that follow an ATYP byte of type atyp
// into buf, which holds at least maxAddrLen bytes. It reads exactly their
// bytes (two reads for a domain name, one otherwise).
func readAddr(r io.Reader, buf []byte, atyp AddrType, msg, addrField, portField string) (gateway.Addr, error) {
	buf = buf[:maxAddrLen]
	start, alen := 0, 0 // alen counts the address bytes, length byte included
	switch atyp {
	case AddrIPv4:
		alen = 4
	case AddrIPv6:
		alen = 16
	case AddrDomain:
		if _, err := io.ReadFull(r, buf[:1]); err != nil {
			return gateway.Addr{}, readErr(msg, addrField, err, false)
		}
		start, alen = 1, 1+int(buf[0])
	default:
		return gateway.Addr{}, fieldErr(msg, "ATYP", fmt.Errorf("%w 0x%02x", ErrAddrType, uint8(atyp)))
	}
	if n, err := io.ReadFull(r, buf[start:alen+2]); err != nil {
		field := addrField
		if start+n >= alen {
			field = portField
		}
		return gateway.Addr{}, readErr(msg, field, err, false)
	}
	a, err := decodeAddr(atyp, buf[:alen+2])
	if err != nil {
		return gateway.Addr{}, fieldErr(msg, addrField, err)
	}
	return a, nil
}

// decodeAddr decodes the address and port of a known type atyp from b, which
// holds exactly them (with the length byte of a domain name). Only a domain
// name can fail, with an error wrapping gateway.ErrBadName. IP addresses do
// not allocate.
func decodeAddr(atyp AddrType, b []byte) (gateway.Addr, error) {
	port := binary.BigEndian.Uint16(b[len(b)-2:])
	switch atyp {
	case AddrIPv4:
		return gateway.Addr{IP: netip.AddrFrom4([4]byte(b[:4])), Port: port}, nil
	case AddrIPv6:
		return gateway.Addr{IP: netip.AddrFrom16([16]byte(b[:16])).Unmap(), Port: port}, nil
	}
	name := string(b[1 : len(b)-2])
	if err := checkName(name); err != nil {
		return gateway.Addr{}, err
	}
	// The trailing dot goes before NameAddr looks for an IP literal, so
	// that "192.0.2.1." is the IP, as its re-encoding would be.
	a, err := gateway.NameAddr(strings.TrimSuffix(name, "."), port)
	if err != nil {
		return gateway.Addr{}, err
	}
	a.IP = a.IP.Unmap()
	return a, nil
}

// checkName refuses, with gateway.ErrBadName, the domain names that
// gateway.NameAddr would not map to a stable, encodable name, and NUL:
//
//   - a byte above 0x7F: host names travel as ASCII (IDNs as A-labels, RFC
//     5890), and NameAddr lower-cases with strings.ToLower, which rewrites
//     such bytes (invalid UTF-8 becomes U+FFFD, three bytes each, so a
//     255-byte name could grow past what any protocol can carry);
//   - an empty label (a leading dot, two dots in a row, a lone dot): NameAddr
//     drops one trailing dot, so "a.." would become "a." and then "a";
//   - NUL, which would truncate the name for any peer that treats it as a C
//     string ("evil.example\x00.good.example");
//   - more than 255 bytes.
//
// One trailing dot is allowed. NameAddr refuses the rest (empty, blanks,
// control bytes, '/', '\', '@', ':').
func checkName(name string) error {
	if len(name) > gateway.MaxNameLen {
		return fmt.Errorf("%w: longer than %d bytes", gateway.ErrBadName, gateway.MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == 0:
			return fmt.Errorf("%w: nul byte at %d", gateway.ErrBadName, i)
		case c >= 0x80:
			return fmt.Errorf("%w: non-ascii byte 0x%02x at %d", gateway.ErrBadName, c, i)
		case c == '.' && (i == 0 || name[i-1] == '.'):
			return fmt.Errorf("%w: empty label at %d", gateway.ErrBadName, i)
		}
	}
	return nil
}

// checkAddr reports whether a can be encoded, so that the encoder never
// writes what decodeAddr refuses (see checkName).
func checkAddr(a gateway.Addr) error {
	if a.Name == "" {
		return nil
	}
	return checkName(a.Name)
}

// addrLen is the encoded length of a checked address: ATYP, address, port.
func addrLen(a gateway.Addr) int {
	switch {
	case a.Name != "":
		return 1 + 1 + len(a.Name) + 2
	case a.IP.Unmap().Is6():
		return 1 + 16 + 2
	}
	return 1 + 4 + 2
}

// appendAddr appends ATYP, address and port of a checked address. An
// IPv4-mapped IPv6 address is sent as IPv4; an Addr with neither IP nor
// name as 0.0.0.0.
func appendAddr(b []byte, a gateway.Addr) []byte {
	ip := a.IP.Unmap()
	switch {
	case a.Name != "":
		b = append(b, byte(AddrDomain), byte(len(a.Name)))
		b = append(b, a.Name...)
	case ip.Is6():
		x := ip.As16()
		b = append(b, byte(AddrIPv6))
		b = append(b, x[:]...)
	case ip.Is4():
		x := ip.As4()
		b = append(b, byte(AddrIPv4), x[0], x[1], x[2], x[3])
	default:
		b = append(b, byte(AddrIPv4), 0, 0, 0, 0)
	}
	return binary.BigEndian.AppendUint16(b, a.Port)
}
