package turn

import (
	"strings"

	"github.com/pion/stun"
)

// Attribute types pion/stun v0.6.1 does not define. The others this package
// handles use pion's constants (stun.AttrChannelNumber, stun.AttrLifetime,
// stun.AttrXORPeerAddress, stun.AttrData, stun.AttrXORRelayedAddress,
// stun.AttrEvenPort, stun.AttrRequestedTransport, stun.AttrDontFragment,
// stun.AttrReservationToken, stun.AttrConnectionID,
// stun.AttrRequestedAddressFamily, ...).
const (
	// AttrAccessToken is ACCESS-TOKEN (RFC 7635).
	AttrAccessToken stun.AttrType = 0x001B
	// AttrAdditionalAddressFamily is ADDITIONAL-ADDRESS-FAMILY (RFC 8656).
	AttrAdditionalAddressFamily stun.AttrType = 0x8000
	// AttrAddressErrorCode is ADDRESS-ERROR-CODE (RFC 8656).
	AttrAddressErrorCode stun.AttrType = 0x8001
	// AttrICMP is ICMP (RFC 8656 §18.13).
	AttrICMP stun.AttrType = 0x8004
	// AttrThirdPartyAuthorization is THIRD-PARTY-AUTHORIZATION (RFC 7635).
	AttrThirdPartyAuthorization stun.AttrType = 0x802E
	// AttrMobilityTicket is MOBILITY-TICKET (RFC 8016).
	AttrMobilityTicket stun.AttrType = 0x8030
	// AttrAdditionalAddressFamilyDraft is the draft code point coturn up to
	// 4.7 uses for ADDITIONAL-ADDRESS-FAMILY; accepted on input only.
	AttrAdditionalAddressFamilyDraft stun.AttrType = 0x8032
	// AttrAddressErrorCodeDraft is the draft code point coturn up to 4.7 uses
	// for ADDRESS-ERROR-CODE; accepted on input only.
	AttrAddressErrorCodeDraft stun.AttrType = 0x8033
)

var attrNames = map[stun.AttrType]string{
	stun.AttrMappedAddress:           "mapped-address",
	stun.AttrUsername:                "username",
	stun.AttrMessageIntegrity:        "message-integrity",
	stun.AttrErrorCode:               "error-code",
	stun.AttrUnknownAttributes:       "unknown-attributes",
	stun.AttrChannelNumber:           "channel-number",
	stun.AttrLifetime:                "lifetime",
	stun.AttrXORPeerAddress:          "xor-peer-address",
	stun.AttrData:                    "data",
	stun.AttrRealm:                   "realm",
	stun.AttrNonce:                   "nonce",
	stun.AttrXORRelayedAddress:       "xor-relayed-address",
	stun.AttrRequestedAddressFamily:  "requested-address-family",
	stun.AttrEvenPort:                "even-port",
	stun.AttrRequestedTransport:      "requested-transport",
	stun.AttrDontFragment:            "dont-fragment",
	AttrAccessToken:                  "access-token",
	stun.AttrMessageIntegritySHA256:  "message-integrity-sha256",
	stun.AttrPasswordAlgorithm:       "password-algorithm",
	stun.AttrUserhash:                "userhash",
	stun.AttrXORMappedAddress:        "xor-mapped-address",
	stun.AttrReservationToken:        "reservation-token",
	stun.AttrConnectionID:            "connection-id",
	AttrAdditionalAddressFamily:      "additional-address-family",
	AttrAddressErrorCode:             "address-error-code",
	stun.AttrPasswordAlgorithms:      "password-algorithms",
	stun.AttrAlternateDomain:         "alternate-domain",
	AttrICMP:                         "icmp",
	stun.AttrSoftware:                "software",
	stun.AttrAlternateServer:         "alternate-server",
	stun.AttrFingerprint:             "fingerprint",
	AttrThirdPartyAuthorization:      "third-party-authorization",
	stun.AttrOrigin:                  "origin",
	AttrMobilityTicket:               "mobility-ticket",
	AttrAdditionalAddressFamilyDraft: "additional-address-family (draft)",
	AttrAddressErrorCodeDraft:        "address-error-code (draft)",
}

// AttrName returns the lower-case RFC name of an attribute type, or its hex
// value when unknown.
func AttrName(t stun.AttrType) string {
	if n, ok := attrNames[t]; ok {
		return n
	}
	return strings.ToLower(t.String())
}

// Understood reports whether a TURN server built on this package understands
// a comprehension-required attribute type (0x0000-0x7FFF), so that a request
// carrying it is not answered with 420. MESSAGE-INTEGRITY-SHA256,
// PASSWORD-ALGORITHM, USERHASH and ACCESS-TOKEN count as understood: the
// server declines to use them (turn.md §3.5, §3.9). DONT-FRAGMENT counts as
// understood too; whether DF can be honoured is decided per Allocate.
// Comprehension-optional types always count as understood.
func Understood(t stun.AttrType) bool {
	if t.Optional() {
		return true
	}
	switch t {
	case stun.AttrMappedAddress, stun.AttrUsername, stun.AttrMessageIntegrity,
		stun.AttrErrorCode, stun.AttrUnknownAttributes, stun.AttrChannelNumber,
		stun.AttrLifetime, stun.AttrXORPeerAddress, stun.AttrData, stun.AttrRealm,
		stun.AttrNonce, stun.AttrXORRelayedAddress, stun.AttrRequestedAddressFamily,
		stun.AttrEvenPort, stun.AttrRequestedTransport, stun.AttrDontFragment,
		AttrAccessToken, stun.AttrMessageIntegritySHA256, stun.AttrPasswordAlgorithm,
		stun.AttrUserhash, stun.AttrXORMappedAddress, stun.AttrReservationToken,
		stun.AttrConnectionID:
		return true
	}
	return false
}

// UnknownRequired returns the comprehension-required attribute types in m
// that known does not accept, each once, in message order (the value of a
// 420's UNKNOWN-ATTRIBUTES). A nil known means Understood. Attributes after
// MESSAGE-INTEGRITY other than FINGERPRINT and MESSAGE-INTEGRITY-SHA256 are
// ignored, as RFC 8489 requires.
func UnknownRequired(m *stun.Message, known func(stun.AttrType) bool) []stun.AttrType {
	if known == nil {
		known = Understood
	}
	var out []stun.AttrType
	for _, a := range signedAttributes(m) {
		if known(a.Type) {
			continue
		}
		dup := false
		for _, t := range out {
			if t == a.Type {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a.Type)
		}
	}
	return out
}

// signedAttributes returns m's attributes up to and including
// MESSAGE-INTEGRITY and any MESSAGE-INTEGRITY-SHA256 or FINGERPRINT after it.
func signedAttributes(m *stun.Message) stun.Attributes {
	for i, a := range m.Attributes {
		if a.Type == stun.AttrMessageIntegrity {
			return m.Attributes[:i+1]
		}
	}
	return m.Attributes
}

// Count returns how many times attribute type t occurs in m.
func Count(m *stun.Message, t stun.AttrType) int {
	n := 0
	for _, a := range m.Attributes {
		if a.Type == t {
			n++
		}
	}
	return n
}

// getOnce returns the value of the only attribute of type t in m: ErrMissing
// when absent and ErrDuplicate when repeated.
func getOnce(m *stun.Message, t stun.AttrType) ([]byte, error) {
	var v []byte
	found := false
	for _, a := range m.Attributes {
		if a.Type != t {
			continue
		}
		if found {
			return nil, attrErr(t, ErrDuplicate)
		}
		v, found = a.Value, true
	}
	if !found {
		return nil, attrErr(t, ErrMissing)
	}
	return v, nil
}

// get returns the first value of attribute type t in m, as pion's m.Get does,
// wrapped in an AttrError when absent.
func get(m *stun.Message, t stun.AttrType) ([]byte, error) {
	for _, a := range m.Attributes {
		if a.Type == t {
			return a.Value, nil
		}
	}
	return nil, attrErr(t, ErrMissing)
}
