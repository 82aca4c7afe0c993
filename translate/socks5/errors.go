package socks5

import (
	"errors"
	"fmt"
	"io"

	"github.com/sixgate/sixgate/gateway"
)

// Sentinel errors, wrapped in a *FieldError. Domain name problems wrap
// gateway.ErrBadName instead of a sentinel of this package.
var (
	// ErrVersion reports a VER byte other than 5 (1 for RFC 1929 messages).
	ErrVersion = errors.New("unsupported version")
	// ErrShort reports a message that ended early: a byte slice too short,
	// or a reader that hit EOF inside the message (the error then also
	// matches io.EOF or io.ErrUnexpectedEOF, see FieldError).
	ErrShort = errors.New("truncated message")
	// ErrLength reports a length field or a list out of its range: NMETHODS,
	// ULEN or PLEN of 0, or more than 255 bytes or methods to encode.
	ErrLength = errors.New("length out of range")
	// ErrCommand reports a CMD other than CONNECT, BIND or UDP ASSOCIATE.
	ErrCommand = errors.New("unsupported command")
	// ErrAddrType reports an ATYP other than 1 (IPv4), 3 (domain name) or 4
	// (IPv6).
	ErrAddrType = errors.New("unsupported address type")
)

// Message names used in FieldError.Msg.
const (
	msgGreeting        = "greeting"
	msgMethodSelection = "method selection"
	msgUserPassRequest = "username/password request"
	msgUserPassReply   = "username/password reply"
	msgRequest         = "request"
	msgReply           = "reply"
	msgUDPHeader       = "udp header"
)

// FieldError is the error every decoder and encoder of this package returns:
// the message and the RFC field at fault and the cause. Err wraps one of the
// sentinels (ErrVersion, ErrShort, ErrLength, ErrCommand, ErrAddrType,
// gateway.ErrBadName) or is the reader's own error (a deadline, a reset).
//
// A reader that ends before the first byte of a message gives an error that
// matches both ErrShort and io.EOF; one that ends inside a message matches
// ErrShort and io.ErrUnexpectedEOF, never io.EOF. So errors.Is(err, io.EOF)
// means "the peer closed cleanly between messages".
type FieldError struct {
	// Msg names the message: "greeting", "request", "udp header", ...
	Msg string
	// Field is the RFC 1928/1929 field name: "VER", "NMETHODS", "ULEN",
	// "CMD", "ATYP", "DST.ADDR", "BND.PORT", ...
	Field string
	// Err is the cause.
	Err error
}

// Error formats the error as "socks5: msg: field: cause".
func (e *FieldError) Error() string {
	return "socks5: " + e.Msg + ": " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(msg, field string, err error) error {
	return &FieldError{Msg: msg, Field: field, Err: err}
}

// readErr wraps an error of io.ReadFull. first is true for the read that
// starts a message; a later EOF is reported as io.ErrUnexpectedEOF.
func readErr(msg, field string, err error, first bool) error {
	switch {
	case errors.Is(err, io.EOF) && !first:
		err = fmt.Errorf("%w: %w", ErrShort, io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %w", ErrShort, err)
	}
	return fieldErr(msg, field, err)
}

// RequestFailure says how a server answers an error of ReadRequest: ok is
// true with the REP code to send when the request was understood well enough
// to reply (an unknown command gives RepCommandNotSupported, an unknown
// address type RepAddrTypeNotSupported, an unusable domain name
// RepHostUnreachable, as for a name that does not resolve), and false when
// the server should close without replying (wrong version, truncated or
// unreadable request).
func RequestFailure(err error) (code ReplyCode, ok bool) {
	switch {
	case err == nil:
		return RepSucceeded, false
	case errors.Is(err, ErrCommand):
		return RepCommandNotSupported, true
	case errors.Is(err, ErrAddrType):
		return RepAddrTypeNotSupported, true
	case errors.Is(err, gateway.ErrBadName):
		return RepHostUnreachable, true
	}
	return 0, false
}
