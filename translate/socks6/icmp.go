package socks6

import (
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
)

// ICMP codes used by the mapping (RFC 792/1812 for ICMPv4, RFC 4443 for
// ICMPv6).
const (
	icmp4NetUnreach      = 0
	icmp4HostUnreach     = 1
	icmp4FragNeeded      = 4
	icmp4NetUnknown      = 6
	icmp4HostUnknown     = 7
	icmp4NetProhibited   = 9
	icmp4HostProhibited  = 10
	icmp4NetUnreachTOS   = 11
	icmp4HostUnreachTOS  = 12
	icmp4CommProhibited  = 13
	icmp4HostPrecedence  = 14
	icmp4PrecedenceCut   = 15
	icmp6NoRoute         = 0
	icmp6AdminProhibited = 1
	icmp6BeyondScope     = 2
	icmp6AddrUnreach     = 3
	icmp6PolicyFail      = 5
	icmp6RejectRoute     = 6
	icmpTTLInTransit     = 0 // time exceeded: hop limit / TTL in transit
)

// ErrorCodeForICMP returns the Error message code that reports e, and false
// when SOCKS 6 does not report it (the proxy then sends nothing).
//
// The digest's table (§8.3): ICMPv4 3/0 and ICMPv6 1/0 → 1; ICMPv4 3/1 and
// ICMPv6 1/3 → 2; ICMPv4 11/0 and ICMPv6 3/0 → 3; ICMPv6 2 (packet too big)
// → 4. The other destination-unreachable codes follow how the Linux kernel
// turns them into errno values (icmp_err_convert): a code the kernel reports
// as ENETUNREACH gives 1 and one it reports as EHOSTUNREACH/EHOSTDOWN gives 2.
// So ICMPv4 6 (net unknown), 9 (net administratively prohibited) and 11 (net
// unreachable for TOS) → 1; 7, 10, 12, 13 (communication administratively
// prohibited), 14 and 15 → 2. Administratively prohibited is reported rather
// than hidden because the client would otherwise wait for a timeout; for
// symmetry ICMPv6 1/1, 1/5 and 1/6 (prohibited, policy, reject route) and
// 1/2 (beyond scope) → 2. Not reported: port and protocol unreachable,
// ICMPv4 fragmentation needed (no code exists for it), source route failed,
// source host isolated, reassembly time exceeded, parameter problems, and
// every other type.
func ErrorCodeForICMP(e gateway.ICMPError) (ErrorCode, bool) {
	if e.V6 {
		switch e.Type {
		case gateway.ICMPv6DestUnreachable:
			switch e.Code {
			case icmp6NoRoute:
				return ErrorCodeNetUnreachable, true
			case icmp6AdminProhibited, icmp6BeyondScope, icmp6AddrUnreach, icmp6PolicyFail, icmp6RejectRoute:
				return ErrorCodeHostUnreachable, true
			}
		case gateway.ICMPv6PacketTooBig:
			return ErrorCodeDatagramTooBig, true
		case gateway.ICMPv6TimeExceeded:
			if e.Code == icmpTTLInTransit {
				return ErrorCodeTTLExpired, true
			}
		}
		return 0, false
	}
	switch e.Type {
	case gateway.ICMPv4DestUnreachable:
		switch e.Code {
		case icmp4NetUnreach, icmp4NetUnknown, icmp4NetProhibited, icmp4NetUnreachTOS:
			return ErrorCodeNetUnreachable, true
		case icmp4HostUnreach, icmp4HostUnknown, icmp4HostProhibited, icmp4HostUnreachTOS,
			icmp4CommProhibited, icmp4HostPrecedence, icmp4PrecedenceCut:
			return ErrorCodeHostUnreachable, true
		}
	case gateway.ICMPv4TimeExceeded:
		if e.Code == icmpTTLInTransit {
			return ErrorCodeTTLExpired, true
		}
	}
	return 0, false
}

// ErrorMessageFor builds the Error message reporting e on association id; ok
// is false when e is not reported (see ErrorCodeForICMP) or has no valid
// destination. IPv4-mapped addresses are unmapped. A missing reporter is
// written as the unspecified address of the destination's family.
func ErrorMessageFor(id AssocID, e gateway.ICMPError) (UDPMessage, bool) {
	code, ok := ErrorCodeForICMP(e)
	if !ok || !e.Dest.Addr().IsValid() {
		return UDPMessage{}, false
	}
	dst := e.Dest.Addr().Unmap()
	rep := e.Reporter.Unmap()
	if !rep.IsValid() {
		rep = netip.IPv4Unspecified()
		if dst.Is6() {
			rep = netip.IPv6Unspecified()
		}
	}
	return UDPMessage{
		Type:     UDPError,
		Assoc:    id,
		Addr:     gateway.Addr{IP: dst, Port: e.Dest.Port()},
		Code:     code,
		Reporter: rep,
	}, true
}

// ICMPFor returns the neutral ICMP error for a received Error message, with a
// canonical type and code per Error code, in the family of the failed
// datagram's destination: 1 → ICMPv4 3/0, ICMPv6 1/0; 2 → ICMPv4 3/1,
// ICMPv6 1/3; 3 → ICMPv4 11/0, ICMPv6 3/0; 4 → ICMPv6 2/0, and for an IPv4
// destination the IPv4 analogue 3/4 (fragmentation needed). MTU is 0: SOCKS
// 6 does not carry it. ok is false for another message type or an unknown
// code.
func ICMPFor(m *UDPMessage) (gateway.ICMPError, bool) {
	if m.Type != UDPError || !m.Addr.IP.IsValid() {
		return gateway.ICMPError{}, false
	}
	e := gateway.ICMPError{
		V6:       m.Addr.IP.Unmap().Is6(),
		Dest:     netip.AddrPortFrom(m.Addr.IP, m.Addr.Port),
		Reporter: m.Reporter,
	}
	type tc struct{ t, c uint8 }
	var v4, v6 tc
	switch m.Code {
	case ErrorCodeNetUnreachable:
		v4, v6 = tc{gateway.ICMPv4DestUnreachable, icmp4NetUnreach}, tc{gateway.ICMPv6DestUnreachable, icmp6NoRoute}
	case ErrorCodeHostUnreachable:
		v4, v6 = tc{gateway.ICMPv4DestUnreachable, icmp4HostUnreach}, tc{gateway.ICMPv6DestUnreachable, icmp6AddrUnreach}
	case ErrorCodeTTLExpired:
		v4, v6 = tc{gateway.ICMPv4TimeExceeded, icmpTTLInTransit}, tc{gateway.ICMPv6TimeExceeded, icmpTTLInTransit}
	case ErrorCodeDatagramTooBig:
		v4, v6 = tc{gateway.ICMPv4DestUnreachable, icmp4FragNeeded}, tc{gateway.ICMPv6PacketTooBig, 0}
	default:
		return gateway.ICMPError{}, false
	}
	if e.V6 {
		e.Type, e.Code = v6.t, v6.c
	} else {
		e.Type, e.Code = v4.t, v4.c
	}
	return e, true
}
