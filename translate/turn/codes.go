package turn

import "github.com/pion/stun"

// TURN error codes pion/stun v0.6.1 does not name.
const (
	// CodeMobilityForbidden is 405 Mobility Forbidden (RFC 8016).
	CodeMobilityForbidden stun.ErrorCode = 405
)

var reasonPhrases = map[stun.ErrorCode]string{
	stun.CodeTryAlternate:           "Try Alternate",
	stun.CodeBadRequest:             "Bad Request",
	stun.CodeUnauthorized:           "Unauthorized",
	stun.CodeForbidden:              "Forbidden",
	CodeMobilityForbidden:           "Mobility Forbidden",
	stun.CodeUnknownAttribute:       "Unknown Attribute",
	stun.CodeAllocMismatch:          "Allocation Mismatch",
	stun.CodeStaleNonce:             "Stale Nonce",
	stun.CodeAddrFamilyNotSupported: "Address Family not Supported",
	stun.CodeWrongCredentials:       "Wrong Credentials",
	stun.CodeUnsupportedTransProto:  "Unsupported Transport Protocol",
	stun.CodePeerAddrFamilyMismatch: "Peer Address Family Mismatch",
	stun.CodeConnAlreadyExists:      "Connection Already Exists",
	stun.CodeConnTimeoutOrFailure:   "Connection Timeout or Failure",
	stun.CodeAllocQuotaReached:      "Allocation Quota Reached",
	stun.CodeRoleConflict:           "Role Conflict",
	stun.CodeServerError:            "Server Error",
	stun.CodeInsufficientCapacity:   "Insufficient Capacity",
}

// ReasonPhrase returns the canonical reason phrase for an error code (the
// text turn.md §2.5 and the §9 vectors use), or "Error" for a code without
// one.
func ReasonPhrase(code stun.ErrorCode) string {
	if s, ok := reasonPhrases[code]; ok {
		return s
	}
	return "Error"
}

// Family is an address family as TURN writes it in REQUESTED-ADDRESS-FAMILY,
// ADDITIONAL-ADDRESS-FAMILY, ADDRESS-ERROR-CODE and XOR addresses.
type Family uint8

// Address families.
const (
	FamilyIPv4 Family = 0x01
	FamilyIPv6 Family = 0x02
)

// String returns "ipv4", "ipv6" or the hex value.
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	}
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[f>>4], hex[f&15]})
}

// Valid reports whether f is IPv4 or IPv6.
func (f Family) Valid() bool { return f == FamilyIPv4 || f == FamilyIPv6 }

// Transport protocol numbers for REQUESTED-TRANSPORT.
const (
	// ProtoUDP asks for a UDP relay (RFC 8656).
	ProtoUDP uint8 = 17
	// ProtoTCP asks for a TCP relay (RFC 6062).
	ProtoTCP uint8 = 6
)
