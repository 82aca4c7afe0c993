package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Addr is a destination or source: an IP address or a domain name, and a port.
// Exactly one of IP and Name is set; a zero Addr is "any address, any port".
type Addr struct {
	// IP is the address when the Addr is not a name.
	IP netip.Addr
	// Name is a normalized domain name: lower case, no trailing dot.
	Name string
	// Port is the transport port.
	Port uint16
}

// MaxNameLen is the longest domain name any of the protocols can carry.
const MaxNameLen = 255

// ErrBadName reports a domain name that is empty, too long or contains bytes
// no host name may contain.
var ErrBadName = errors.New("invalid domain name")

// AddrFromAddrPort returns the Addr for an IP address and port. IPv4-mapped
// IPv6 addresses are kept as they are; use Unmap on the result's IP to compare.
func AddrFromAddrPort(ap netip.AddrPort) Addr {
	return Addr{IP: ap.Addr(), Port: ap.Port()}
}

// AddrFromNet converts a *net.TCPAddr or *net.UDPAddr; other types give a zero
// Addr.
func AddrFromNet(a net.Addr) Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		return AddrFromAddrPort(v.AddrPort())
	case *net.UDPAddr:
		return AddrFromAddrPort(v.AddrPort())
	}
	return Addr{}
}

// NameAddr returns the Addr for a host name and port, normalized: a single
// trailing dot is removed, a name that is an IP literal becomes that IP, and
// ASCII letters are lower-cased. It fails for a name CheckName refuses.
func NameAddr(name string, port uint16) (Addr, error) {
	n := strings.TrimSuffix(name, ".")
	if looksLikeIP(n) {
		ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(n, "["), "]"))
		if err != nil {
			return Addr{}, fmt.Errorf("%w: %q is not a valid IP literal", ErrBadName, name)
		}
		if ip.Zone() != "" {
			return Addr{}, fmt.Errorf("%w: zone in %q", ErrBadName, name)
		}
		return Addr{IP: ip, Port: port}, nil
	}
	if err := CheckName(n); err != nil {
		return Addr{}, err
	}
	return Addr{Name: lowerASCII(n), Port: port}, nil
}

// looksLikeIP reports whether n can only be meant as an IP literal: it
// holds a colon, or only digits and dots (no host name is all-numeric).
func looksLikeIP(n string) bool {
	if strings.ContainsRune(n, ':') {
		return true
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return n != ""
}

// CheckName reports whether n (without a trailing dot) can be a host name
// here: 1..255 bytes, printable ASCII without spaces or the URL delimiters
// "/\@:", no empty label. It does not allocate on success.
func CheckName(n string) error {
	if n == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if len(n) > MaxNameLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrBadName, MaxNameLen)
	}
	prevDot := true
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' || c == '@' || c == ':' {
			return fmt.Errorf("%w: byte 0x%02x at %d", ErrBadName, c, i)
		}
		if c == '.' {
			if prevDot {
				return fmt.Errorf("%w: empty label at %d", ErrBadName, i)
			}
			prevDot = true
		} else {
			prevDot = false
		}
	}
	if prevDot {
		return fmt.Errorf("%w: empty last label", ErrBadName)
	}
	return nil
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// ParseAddr parses "host:port", where host is an IP literal (IPv6 in brackets)
// or a domain name.
func ParseAddr(s string) (Addr, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Addr{}, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("bad port %q", port)
	}
	if host == "" {
		return Addr{Port: uint16(p)}, nil
	}
	return NameAddr(host, uint16(p))
}

// IsName reports whether the Addr holds a domain name.
func (a Addr) IsName() bool { return a.Name != "" }

// IsZero reports whether the Addr is the zero value ("any").
func (a Addr) IsZero() bool { return a.Name == "" && !a.IP.IsValid() && a.Port == 0 }

// IsAny reports whether the address part means "any": no address, or an
// unspecified IP. The port may be set.
func (a Addr) IsAny() bool { return a.Name == "" && (!a.IP.IsValid() || a.IP.IsUnspecified()) }

// AddrPort returns the IP and port; it is invalid for a name.
func (a Addr) AddrPort() netip.AddrPort {
	if a.Name != "" || !a.IP.IsValid() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.IP, a.Port)
}

// Host returns the name or the IP literal (without brackets).
func (a Addr) Host() string {
	if a.Name != "" {
		return a.Name
	}
	if !a.IP.IsValid() {
		return ""
	}
	return a.IP.String()
}

// String formats the Addr as host:port.
func (a Addr) String() string {
	h := a.Host()
	if h == "" && a.Port == 0 {
		return "any"
	}
	return net.JoinHostPort(h, strconv.Itoa(int(a.Port)))
}

// Is6 reports whether the Addr is an IPv6 address (IPv4-mapped counts as v4).
func (a Addr) Is6() bool { return a.IP.IsValid() && !a.IP.Unmap().Is4() }

// AddrPortOf returns the address and port of a *net.TCPAddr or
// *net.UDPAddr (other net.Addrs are parsed from their String form; the
// zero AddrPort when that fails).
func AddrPortOf(a net.Addr) netip.AddrPort {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.AddrPort()
	case *net.UDPAddr:
		return v.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
