package turn

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/stun"
)

// HeaderSize is the size of a STUN message header.
const HeaderSize = 20

// MaxMessageSize is the largest STUN message: a header plus the largest
// length that is a multiple of 4.
const MaxMessageSize = HeaderSize + 0xFFFC

// Decode decodes one STUN message from b into m the way a TURN server must
// (turn.md §4.2), working around pion/stun's hazards (§2.4):
//   - the top two bits of the first byte must be 00 (ErrNotSTUN), the magic
//     cookie must be present (ErrBadCookie) and the length a multiple of 4
//     (ErrBadLength);
//   - bytes after 20+Length are ignored, and m.Raw is cut to 20+Length, so
//     FINGERPRINT and MESSAGE-INTEGRITY checks work;
//   - a FINGERPRINT must be the last attribute, appear once
//     (ErrFingerprintNotLast) and match (ErrFingerprint).
//
// The bytes are copied into m.Raw (reusing its capacity), so b may be reused.
// Every error means "drop".
func Decode(b []byte, m *stun.Message) error {
	if len(b) < HeaderSize {
		return fmt.Errorf("turn: decode: %w", ErrTruncated)
	}
	if b[0]&0xC0 != 0 {
		return fmt.Errorf("turn: decode: %w", ErrNotSTUN)
	}
	if binary.BigEndian.Uint32(b[4:8]) != magicCookie {
		return fmt.Errorf("turn: decode: %w", ErrBadCookie)
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 {
		return fmt.Errorf("turn: decode: %w", ErrBadLength)
	}
	if len(b) < HeaderSize+n {
		return fmt.Errorf("turn: decode: %w", ErrTruncated)
	}
	m.Raw = append(m.Raw[:0], b[:HeaderSize+n]...)
	if err := m.Decode(); err != nil {
		return fmt.Errorf("turn: decode: %w: %w", ErrMalformed, err)
	}
	return checkFingerprint(m)
}

func checkFingerprint(m *stun.Message) error {
	idx := -1
	for i, a := range m.Attributes {
		if a.Type != stun.AttrFingerprint {
			continue
		}
		if idx >= 0 || i != len(m.Attributes)-1 {
			return attrErr(stun.AttrFingerprint, ErrFingerprintNotLast)
		}
		idx = i
	}
	if idx < 0 {
		return nil
	}
	if len(m.Attributes[idx].Value) != 4 {
		return attrErr(stun.AttrFingerprint, ErrAttrLength)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		return attrErr(stun.AttrFingerprint, ErrFingerprint)
	}
	return nil
}

// HasFingerprint reports whether m carries FINGERPRINT; a server answers such
// a request with FINGERPRINT too.
func HasFingerprint(m *stun.Message) bool { return m.Contains(stun.AttrFingerprint) }

// VerifyIntegrity checks m's MESSAGE-INTEGRITY with key (RFC 8489 §14.5):
// it must be present (ErrNoIntegrity), 20 bytes long and verify
// (ErrIntegrity). Attributes after it other than MESSAGE-INTEGRITY-SHA256
// and FINGERPRINT are not covered by it, so on success they are removed from
// m.Attributes (m.Raw is unchanged) and later getters cannot see them.
// Errors carry code 401 (CodeOf). MESSAGE-INTEGRITY-SHA256 is ignored
// (turn.md §3.5). m must have been decoded by Decode (Raw cut to its length);
// the check rewrites m.Raw[2:4] while it runs, so only one goroutine may use m.
func VerifyIntegrity(m *stun.Message, key []byte) error {
	if err := checkIntegrity(m, key); err != nil {
		return err
	}
	trimAfterIntegrity(m)
	return nil
}

func checkIntegrity(m *stun.Message, key []byte) error {
	idx := -1
	for i, a := range m.Attributes {
		if a.Type == stun.AttrMessageIntegrity {
			idx = i
			break
		}
	}
	if idx < 0 {
		return codeErr(stun.CodeUnauthorized, fmt.Errorf("turn: %w", ErrNoIntegrity))
	}
	if len(m.Attributes[idx].Value) != 20 || int(m.Length)+HeaderSize > len(m.Raw) {
		return codeErr(stun.CodeUnauthorized, attrErr(stun.AttrMessageIntegrity, ErrAttrLength))
	}
	if err := stun.MessageIntegrity(key).Check(m); err != nil {
		return codeErr(stun.CodeUnauthorized, attrErr(stun.AttrMessageIntegrity, ErrIntegrity))
	}
	return nil
}

func trimAfterIntegrity(m *stun.Message) {
	out := signedAttributes(m)
	n := len(out)
	for _, a := range m.Attributes[n:] {
		if a.Type == stun.AttrFingerprint || a.Type == stun.AttrMessageIntegritySHA256 {
			out = append(out, a)
		}
	}
	m.Attributes = out
}

// Maximum lengths of the credential attributes a server accepts. USERNAME
// follows RFC 5389 (fewer than 513 bytes) so that older clients pass; REALM
// and NONCE follow RFC 8489 (at most 763 bytes).
const (
	MaxUsernameLen = 512
	MaxRealmLen    = 763
	MaxNonceLen    = 763
)

// Credentials are the long-term credential attributes of a request.
type Credentials struct {
	Username string
	Realm    string
	Nonce    string
}

// ParseCredentials performs steps 1 and 2 of the authentication check order
// (turn.md §3.6) and returns USERNAME, REALM and NONCE:
//   - no MESSAGE-INTEGRITY, or an ACCESS-TOKEN (OAuth is not supported, so
//     the request cannot be authenticated): code 401 with ErrNoIntegrity;
//   - USERNAME, REALM or NONCE missing, empty or too long, or USERHASH
//     instead of USERNAME: code 400.
//
// A request with only MESSAGE-INTEGRITY-SHA256 counts as unauthenticated
// (401). Attributes after MESSAGE-INTEGRITY are not read.
func ParseCredentials(m *stun.Message) (Credentials, error) {
	attrs := signedAttributes(m)
	hasMI := len(attrs) > 0 && attrs[len(attrs)-1].Type == stun.AttrMessageIntegrity
	if !hasMI {
		return Credentials{}, codeErr(stun.CodeUnauthorized, fmt.Errorf("turn: %w", ErrNoIntegrity))
	}
	if m.Contains(AttrAccessToken) {
		return Credentials{}, codeErr(stun.CodeUnauthorized, attrErr(AttrAccessToken, errors.New("oauth not supported")))
	}
	var c Credentials
	var err error
	if c.Username, err = getText(attrs, stun.AttrUsername, MaxUsernameLen); err != nil {
		return Credentials{}, codeErr(stun.CodeBadRequest, err)
	}
	if c.Realm, err = getText(attrs, stun.AttrRealm, MaxRealmLen); err != nil {
		return Credentials{}, codeErr(stun.CodeBadRequest, err)
	}
	if c.Nonce, err = getText(attrs, stun.AttrNonce, MaxNonceLen); err != nil {
		return Credentials{}, codeErr(stun.CodeBadRequest, err)
	}
	return c, nil
}

func getText(attrs stun.Attributes, t stun.AttrType, maxLen int) (string, error) {
	v, ok := attrs.Get(t)
	if !ok {
		return "", attrErr(t, ErrMissing)
	}
	if len(v.Value) == 0 {
		return "", attrErr(t, ErrAttrValue)
	}
	if len(v.Value) > maxLen {
		return "", attrErr(t, ErrTooLarge)
	}
	return string(v.Value), nil
}

// LongTermKey returns the RFC 8489 long-term credential key
// MD5(username ":" realm ":" password). The strings are used as they are (no
// PRECIS preparation), which is exact for ASCII credentials.
func LongTermKey(username, realm, password string) []byte {
	return stun.NewLongTermIntegrity(username, realm, password)
}
