package gateway

import "net/netip"

// ICMPError is the raw fact of an ICMP (or ICMPv6) error about a datagram an
// association sent. Each protocol's filtering (SOCKS 6 reports four kinds, TURN
// relays more) lives in package translate, so the neutral error keeps every
// type.
type ICMPError struct {
	// V6 is true for ICMPv6 type/code values.
	V6   bool
	Type uint8
	Code uint8
	// MTU is the next-hop MTU for "fragmentation needed" and "packet too
	// big", zero otherwise.
	MTU uint32
	// Dest is the destination of the datagram that failed.
	Dest netip.AddrPort
	// Reporter is the source of the ICMP packet (the router for TTL expired),
	// or the local address for errors the local stack raised.
	Reporter netip.Addr
	// Local is true when the local stack raised the error (for example a
	// datagram larger than the cached path MTU) instead of a received ICMP.
	Local bool
}

// ICMP type values the neutral model names, for both families.
const (
	ICMPv4DestUnreachable = 3
	ICMPv4TimeExceeded    = 11
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
)
