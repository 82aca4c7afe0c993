package socks6

import (
	"errors"
	"fmt"
	"io"
)

// Sentinel errors wrapped by *FieldError (and by encoder errors). Test for
// them with errors.Is.
var (
	// ErrShort reports a message or field that ends before its declared size.
	ErrShort = errors.New("message too short")
	// ErrVersion reports a version byte other than 6. For a Request read
	// from a stream the server answers it with the Version Mismatch reply.
	ErrVersion = errors.New("version is not 6")
	// ErrBadLength reports a length field that is out of range or not a
	// multiple of 4 where it must be.
	ErrBadLength = errors.New("bad length")
	// ErrAddrType reports an Address Type that is not defined or not allowed
	// in the field.
	ErrAddrType = errors.New("unsupported address type")
	// ErrDomainStyle reports a domain-name field that is neither style A
	// (length = name) nor style B (length = name + padding): style C, whose
	// length byte also counts itself, and other mis-aligned encodings.
	ErrDomainStyle = errors.New("domain name length does not match its padding (style C?)")
	// ErrAddrOrder reports a UDP relay address in Request order (Port, pad,
	// ATYP) instead of the draft's ATYP, pad, Port, as the Go library writes
	// it.
	ErrAddrOrder = errors.New("address fields in request order (Go library layout)")
	// ErrMessageType reports an unknown UDP relay message type.
	ErrMessageType = errors.New("unknown message type")
	// ErrTooLong reports a message or field too large to encode.
	ErrTooLong = errors.New("too long")
	// ErrValue reports a value that cannot be encoded (out of range, or not
	// expressible in the selected Dialect).
	ErrValue = errors.New("invalid value")
	// ErrDuplicate reports an option the encoder would send twice.
	ErrDuplicate = errors.New("duplicate option")
)

// FieldError describes what is wrong with a message and where.
type FieldError struct {
	// Msg names the message ("request", "operation reply", "datagram", ...).
	Msg string
	// Field names the field ("version", "options length", "address", ...).
	Field string
	// Offset is the field's byte offset from the start of the message.
	Offset int
	// Err is the cause: one of the Err* sentinels, an I/O error, or both.
	Err error
}

// Error formats the error as "socks6: msg: field at offset n: cause".
func (e *FieldError) Error() string {
	return fmt.Sprintf("socks6: %s: %s at offset %d: %v", e.Msg, e.Field, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(msg, field string, off int, err error) error {
	return &FieldError{Msg: msg, Field: field, Offset: off, Err: err}
}

// readErr turns an error from reading a field of a message into a
// *FieldError. A clean end of stream is reported as ErrShort together with
// io.ErrUnexpectedEOF; other I/O errors (deadlines) are kept as they are.
func readErr(msg, field string, off int, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: %w", ErrShort, io.ErrUnexpectedEOF)
	}
	return fieldErr(msg, field, off, err)
}

func encodeErr(msg, field string, err error) error {
	return fmt.Errorf("socks6: encode %s: %s: %w", msg, field, err)
}
