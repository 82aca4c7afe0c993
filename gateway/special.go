package gateway

import "net/netip"

// specialRange is a special-purpose address block denied as a destination
// unless the matching route unlocks it.
type specialRange struct {
	prefix netip.Prefix
	name   string
}

// specialRanges are the IANA special-purpose blocks (RFC 6890 and
// successors) plus multicast and broadcast. Order matters only for naming:
// the first containing block names the denial.
var specialRanges = func() []specialRange {
	list := []struct{ p, name string }{
		{"0.0.0.0/8", "this network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "shared address space (CGNAT)"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "IETF protocol assignments"},
		{"192.0.2.0/24", "documentation"},
		{"192.31.196.0/24", "AS112"},
		{"192.52.193.0/24", "AMT"},
		{"192.88.99.0/24", "6to4 relay anycast"},
		{"192.168.0.0/16", "private"},
		{"192.175.48.0/24", "AS112"},
		{"198.18.0.0/15", "benchmarking"},
		{"198.51.100.0/24", "documentation"},
		{"203.0.113.0/24", "documentation"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"255.255.255.255/32", "broadcast"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"::/96", "IPv4-compatible"},
		{"::ffff:0:0/96", "IPv4-mapped"},
		{"64:ff9b::/96", "NAT64"},
		{"64:ff9b:1::/48", "local-use NAT64"},
		{"100::/64", "discard-only"},
		{"2001::/23", "IETF protocol assignments"},
		{"2001:db8::/32", "documentation"},
		{"2002::/16", "6to4"},
		{"3fff::/20", "documentation"},
		{"5f00::/16", "segment routing SIDs"},
		{"fc00::/7", "unique local"},
		{"fe80::/10", "link-local"},
		{"fec0::/10", "site-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]specialRange, len(list))
	for i, e := range list {
		out[i] = specialRange{netip.MustParsePrefix(e.p), e.name}
	}
	return out
}()

// SpecialRange returns the special-purpose block containing ip and its name,
// or ok = false for an ordinary global address. IPv4-mapped addresses are
// judged by the IPv4 address they carry; NAT64 addresses are special
// themselves and, when the embedded IPv4 is special, by that block too.
func SpecialRange(ip netip.Addr) (prefix netip.Prefix, name string, ok bool) {
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	for _, r := range specialRanges {
		if r.prefix.Contains(ip) {
			return r.prefix, r.name, true
		}
	}
	return netip.Prefix{}, "", false
}

// unlocks reports whether a route CIDR unlocks ip inside its special block:
// the CIDR must contain ip and lie inside the block, so 127.0.0.0/8 unlocks
// loopback but 0.0.0.0/0 unlocks nothing.
func unlocks(cidr netip.Prefix, block netip.Prefix, ip netip.Addr) bool {
	if cidr.Addr().Is4In6() && cidr.Bits() >= 96 {
		cidr = netip.PrefixFrom(cidr.Addr().Unmap(), cidr.Bits()-96)
	}
	return cidr.Contains(ip) && cidr.Bits() >= block.Bits() && block.Contains(cidr.Addr())
}
