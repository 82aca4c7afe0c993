package turn

import (
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

// CheckPeerFamily answers whether a peer address may be used with an
// allocation whose relays have the given families: nil when the peer's
// family (taken from the XOR-PEER-ADDRESS family byte, so ::ffff:a.b.c.d is
// IPv6) is one of them, otherwise a *CodeError with 443 (CreatePermission,
// ChannelBind, Connect; a Send is dropped).
func CheckPeerFamily(peer netip.AddrPort, relays ...Family) error {
	f := FamilyOf(peer.Addr())
	for _, r := range relays {
		if f == r {
			return nil
		}
	}
	return codeErr(stun.CodePeerAddrFamilyMismatch, fmt.Errorf("turn: peer %v: %w", peer, ErrBadFamily))
}

var (
	prefixNAT64 = netip.MustParsePrefix("64:ff9b::/96")
	prefix6to4  = netip.MustParsePrefix("2002::/16")
	prefixV4C   = netip.MustParsePrefix("::/96")
)

// EmbeddedIPv4 returns the IPv4 address an IPv6 address carries, for peer
// policy checks that must see through IPv4-in-IPv6 encodings (turn.md §10.1):
// IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d (not :: or ::1),
// NAT64 64:ff9b::a.b.c.d and 6to4 2002:aabb:ccdd::/48. A policy denies the
// peer when it denies either address. ok is false for other addresses and
// for IPv4 ones.
func EmbeddedIPv4(ip netip.Addr) (v4 netip.Addr, ok bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	if ip.Is4In6() {
		return ip.Unmap(), true
	}
	b := ip.As16()
	switch {
	case prefixNAT64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case prefix6to4.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	case prefixV4C.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	}
	return netip.Addr{}, false
}
