package turn

import (
	"errors"
	"strconv"
	"strings"

	"github.com/pion/stun"
)

// Sentinel errors. Functions wrap them (with a "turn: " prefix and context),
// so test for them with errors.Is.
var (
	// ErrNotSTUN reports bytes that are not a STUN message: the top two bits
	// of the first byte are not 00.
	ErrNotSTUN = errors.New("not a stun message")
	// ErrBadCookie reports a STUN header without the RFC 5389 magic cookie.
	ErrBadCookie = errors.New("bad magic cookie")
	// ErrTruncated reports a message or frame shorter than its length field
	// says.
	ErrTruncated = errors.New("truncated")
	// ErrBadLength reports a STUN length field that is not a multiple of 4.
	ErrBadLength = errors.New("length not a multiple of 4")
	// ErrMalformed reports a STUN message whose attributes do not parse.
	ErrMalformed = errors.New("malformed message")
	// ErrFingerprintNotLast reports a FINGERPRINT that is not the last
	// attribute, or a second FINGERPRINT.
	ErrFingerprintNotLast = errors.New("fingerprint not last")
	// ErrFingerprint reports a FINGERPRINT that does not match the message.
	ErrFingerprint = errors.New("fingerprint mismatch")
	// ErrAttrLength reports an attribute value of the wrong length.
	ErrAttrLength = errors.New("bad attribute length")
	// ErrAttrValue reports an attribute value outside its allowed range.
	ErrAttrValue = errors.New("bad attribute value")
	// ErrMissing reports a mandatory attribute that is absent. It wraps
	// stun.ErrAttributeNotFound.
	ErrMissing = stun.ErrAttributeNotFound
	// ErrDuplicate reports an attribute that may appear once but appears
	// several times.
	ErrDuplicate = errors.New("duplicate attribute")
	// ErrBadFamily reports an address family byte other than 0x01 and 0x02.
	ErrBadFamily = errors.New("bad address family")
	// ErrChannelRange reports a channel number outside 0x4000-0x4FFF.
	ErrChannelRange = errors.New("channel number out of range")
	// ErrNoIntegrity reports a request without MESSAGE-INTEGRITY.
	ErrNoIntegrity = errors.New("no message-integrity")
	// ErrIntegrity reports a MESSAGE-INTEGRITY that does not verify with the
	// key, or is not laid out as RFC 8489 requires.
	ErrIntegrity = errors.New("message-integrity mismatch")
	// ErrTooLarge reports a value or frame larger than the wire format or
	// the caller's buffer allows.
	ErrTooLarge = errors.New("too large")
	// ErrUnknownFrame reports a stream frame whose first byte is neither STUN
	// (0x00-0x3F) nor RFC 8656 ChannelData (0x40-0x4F). A stream cannot be
	// resynchronised after it: close the connection.
	ErrUnknownFrame = errors.New("unknown frame type")
	// ErrRESTUsername reports a TURN REST username without a timestamp.
	ErrRESTUsername = errors.New("rest username has no timestamp")
	// ErrRESTExpired reports a TURN REST username whose timestamp has passed.
	ErrRESTExpired = errors.New("rest credentials expired")
	// ErrUnexpectedType reports a message of another method or class than the
	// parser expects.
	ErrUnexpectedType = errors.New("unexpected message type")
	// ErrNotRelayed reports an ICMP error of a kind TURN does not relay.
	ErrNotRelayed = errors.New("icmp kind not relayed")
)

// AttrError is an error about one attribute of a message.
type AttrError struct {
	// Type is the attribute's type.
	Type stun.AttrType
	// Err is the cause, usually one of the sentinel errors.
	Err error
}

// Error formats the error as "turn: <attribute>: <cause>".
func (e *AttrError) Error() string {
	return "turn: " + AttrName(e.Type) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *AttrError) Unwrap() error { return e.Err }

func attrErr(t stun.AttrType, err error) error {
	return &AttrError{Type: t, Err: err}
}

// CodeError is an error a TURN server answers with an error response: Code is
// the ERROR-CODE and, for 420, Unknown lists the attribute types for
// UNKNOWN-ATTRIBUTES.
type CodeError struct {
	// Code is the ERROR-CODE to answer with.
	Code stun.ErrorCode
	// Unknown lists the unknown comprehension-required attributes (420).
	Unknown []stun.AttrType
	// Err is the cause.
	Err error
}

// Error formats the error as the cause followed by the code in parentheses.
func (e *CodeError) Error() string {
	if e.Err == nil {
		return "turn: error " + strconv.Itoa(int(e.Code)) + " " + strings.ToLower(ReasonPhrase(e.Code))
	}
	return e.Err.Error() + " (" + strconv.Itoa(int(e.Code)) + ")"
}

// Unwrap returns the cause.
func (e *CodeError) Unwrap() error { return e.Err }

func codeErr(code stun.ErrorCode, err error) error {
	return &CodeError{Code: code, Err: err}
}

// CodeOf returns the ERROR-CODE a server answers err with: the Code of the
// first *CodeError in its chain, 0 for a nil error, and 400 (Bad Request) for
// any other error.
func CodeOf(err error) stun.ErrorCode {
	if err == nil {
		return 0
	}
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return stun.CodeBadRequest
}
