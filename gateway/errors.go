package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
)

// Reason is the protocol-neutral cause of a failed request. Package translate
// maps it to every protocol's reply or error codes.
type Reason uint8

// The failure reasons. ReasonNone means success.
const (
	ReasonNone                 Reason = iota
	ReasonGeneral                     // general failure
	ReasonNotAllowed                  // denied by policy or ruleset
	ReasonAuthFailed                  // authentication failed
	ReasonNetUnreachable              // network unreachable
	ReasonHostUnreachable             // host unreachable
	ReasonRefused                     // connection refused
	ReasonTTLExpired                  // TTL expired
	ReasonTimeout                     // attempt timed out
	ReasonCommandNotSupported         // command not supported
	ReasonAddrTypeNotSupported        // address type not supported
	ReasonFamilyMismatch              // address family not supported or mismatched
	ReasonDFUnsupported               // Don't Fragment cannot be honoured
	ReasonQuotaExceeded               // a per-user quota is exhausted
	ReasonCapacityExhausted           // a gateway-wide limit is exhausted
)

var reasonNames = [...]string{
	ReasonNone:                 "ok",
	ReasonGeneral:              "general failure",
	ReasonNotAllowed:           "not allowed",
	ReasonAuthFailed:           "authentication failed",
	ReasonNetUnreachable:       "network unreachable",
	ReasonHostUnreachable:      "host unreachable",
	ReasonRefused:              "connection refused",
	ReasonTTLExpired:           "ttl expired",
	ReasonTimeout:              "timeout",
	ReasonCommandNotSupported:  "command not supported",
	ReasonAddrTypeNotSupported: "address type not supported",
	ReasonFamilyMismatch:       "address family mismatch",
	ReasonDFUnsupported:        "dont-fragment unsupported",
	ReasonQuotaExceeded:        "quota exceeded",
	ReasonCapacityExhausted:    "capacity exhausted",
}

// String returns a short lower-case description of the reason.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Label returns the reason as a metric label value (no spaces).
func (r Reason) Label() string {
	b := []byte(r.String())
	for i, c := range b {
		if c == ' ' || c == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Error is an error carrying a neutral Reason. Op names the component and step
// ("direct: dial"); Err is the cause, kept for errors.Is/As.
type Error struct {
	Reason Reason
	Op     string
	Err    error
}

// Error formats the error as "op: reason: cause".
func (e *Error) Error() string {
	s := e.Reason.String()
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// NewError returns an *Error with the given reason, operation and cause.
func NewError(r Reason, op string, err error) error {
	return &Error{Reason: r, Op: op, Err: err}
}

// ReasonOf returns the neutral reason of err: the Reason of the outermost
// *Error in its chain, or one classified from operating-system and context
// errors; ReasonNone for a nil error and ReasonGeneral when nothing is known.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonNone
	}
	var ge *Error
	if errors.As(err, &ge) && ge.Reason != ReasonNone {
		return ge.Reason
	}
	return Classify(err)
}

// Classify maps an operating-system or context error to a Reason.
func Classify(err error) Reason {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ReasonRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.ENETDOWN):
		return ReasonNetUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return ReasonHostUnreachable
	case errors.Is(err, syscall.EAFNOSUPPORT), errors.Is(err, syscall.EADDRNOTAVAIL):
		return ReasonFamilyMismatch
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return ReasonNotAllowed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return ReasonTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsTimeout {
			return ReasonTimeout
		}
		return ReasonHostUnreachable
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ReasonTimeout
	}
	return ReasonGeneral
}
