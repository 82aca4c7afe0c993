package turn

import (
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
)

// ICMP types and codes this mapping names beyond package gateway's.
const (
	icmpv4FragNeeded = 4 // code of type 3: fragmentation needed and DF set
)

// RelaysICMP reports whether a TURN server relays an ICMP error of this kind
// to the client (RFC 8656 §11, turn.md §5.4): ICMPv4 Destination Unreachable
// (3) and Time Exceeded (11), any code; ICMPv6 Destination Unreachable (1),
// Packet Too Big (2) and Time Exceeded (3), any code.
func RelaysICMP(v6 bool, typ uint8) bool {
	if v6 {
		return typ == gateway.ICMPv6DestUnreachable || typ == gateway.ICMPv6PacketTooBig ||
			typ == gateway.ICMPv6TimeExceeded
	}
	return typ == gateway.ICMPv4DestUnreachable || typ == gateway.ICMPv4TimeExceeded
}

// carriesMTU reports whether the ICMP kind's Error Data is the next-hop MTU.
func carriesMTU(v6 bool, typ, code uint8) bool {
	if v6 {
		return typ == gateway.ICMPv6PacketTooBig
	}
	return typ == gateway.ICMPv4DestUnreachable && code == icmpv4FragNeeded
}

// ICMPFromError returns the ICMP attribute and the XOR-PEER-ADDRESS of the
// Data indication that reports a neutral ICMP error to a TURN client, or ok
// false when TURN does not relay it (RelaysICMP, or a destination that is not
// an address of the error's family). Error Data is the MTU for ICMPv4 3/4
// and ICMPv6 2, zero otherwise. The reporter is not carried (TURN has no
// field for it). Errors the local stack raised are relayed like received
// ones when their type and code are relayable. The caller still checks the
// permission for peer's IP (turn.md §5.4 step 3).
func ICMPFromError(e gateway.ICMPError) (icmp ICMP, peer netip.AddrPort, ok bool) {
	if !RelaysICMP(e.V6, e.Type) {
		return ICMP{}, netip.AddrPort{}, false
	}
	ip := e.Dest.Addr().Unmap()
	if !ip.IsValid() || ip.Is6() != e.V6 {
		return ICMP{}, netip.AddrPort{}, false
	}
	icmp = ICMP{Type: e.Type, Code: e.Code}
	if carriesMTU(e.V6, e.Type, e.Code) {
		icmp.ErrorData = e.MTU
	}
	return icmp, netip.AddrPortFrom(ip, e.Dest.Port()), true
}

// ErrorFromICMP returns the neutral ICMP error a Data indication's ICMP
// attribute reports (the client side). The family is XOR-PEER-ADDRESS's:
// ICMPv6 for an IPv6 peer. MTU is Error Data for ICMPv4 3/4 and ICMPv6 2. The
// Reporter is the zero Addr, since TURN does not carry it; Dest is peer.
func ErrorFromICMP(icmp ICMP, peer netip.AddrPort) gateway.ICMPError {
	v6 := FamilyOf(peer.Addr()) == FamilyIPv6
	e := gateway.ICMPError{V6: v6, Type: icmp.Type, Code: icmp.Code, Dest: peer}
	if carriesMTU(v6, icmp.Type, icmp.Code) {
		e.MTU = icmp.ErrorData
	}
	return e
}
