package socks6

import (
	"github.com/sixgate/sixgate/gateway"
)

// ReplyCodeFor returns the Operation Reply code for a neutral reason.
//
// Choices beyond the one-to-one rows:
//   - ReasonAuthFailed → 0x01 general failure. A client's own failed
//     authentication is an Authentication Reply of Type 1, never an
//     Operation Reply; an AuthFailed that reaches an Operation Reply comes
//     from an upstream hop rejecting the gateway's credentials, which is a
//     server-side failure, not the client's ruleset.
//   - ReasonFamilyMismatch → 0x08 address type not supported.
//   - ReasonQuotaExceeded → 0x02 not allowed: a per-user limit is policy
//     applied to this client.
//   - ReasonCapacityExhausted → 0x01 general failure: a gateway-wide limit
//     says nothing about this client's rights.
//   - ReasonDFUnsupported → 0x01 general failure (normally DF is reported as
//     a declined stack option instead of failing the request).
//   - ReasonNone → 0x00; unknown reasons → 0x01.
func ReplyCodeFor(r gateway.Reason) ReplyCode {
	switch r {
	case gateway.ReasonNone:
		return ReplySuccess
	case gateway.ReasonNotAllowed, gateway.ReasonQuotaExceeded:
		return ReplyNotAllowed
	case gateway.ReasonNetUnreachable:
		return ReplyNetUnreachable
	case gateway.ReasonHostUnreachable:
		return ReplyHostUnreachable
	case gateway.ReasonRefused:
		return ReplyRefused
	case gateway.ReasonTTLExpired:
		return ReplyTTLExpired
	case gateway.ReasonTimeout:
		return ReplyTimeout
	case gateway.ReasonCommandNotSupported:
		return ReplyCommandNotSupported
	case gateway.ReasonAddrTypeNotSupported, gateway.ReasonFamilyMismatch:
		return ReplyAddrTypeUnsupported
	}
	return ReplyGeneralFailure
}

// ReplyCodeForError returns the Operation Reply code for an error from a
// backend: ReplyCodeFor(gateway.ReasonOf(err)), so nil gives success.
func ReplyCodeForError(err error) ReplyCode {
	return ReplyCodeFor(gateway.ReasonOf(err))
}

// Reason returns the neutral reason of an Operation Reply code; unknown
// codes are ReasonGeneral.
func (c ReplyCode) Reason() gateway.Reason {
	switch c {
	case ReplySuccess:
		return gateway.ReasonNone
	case ReplyNotAllowed:
		return gateway.ReasonNotAllowed
	case ReplyNetUnreachable:
		return gateway.ReasonNetUnreachable
	case ReplyHostUnreachable:
		return gateway.ReasonHostUnreachable
	case ReplyRefused:
		return gateway.ReasonRefused
	case ReplyTTLExpired:
		return gateway.ReasonTTLExpired
	case ReplyCommandNotSupported:
		return gateway.ReasonCommandNotSupported
	case ReplyAddrTypeUnsupported:
		return gateway.ReasonAddrTypeNotSupported
	case ReplyTimeout:
		return gateway.ReasonTimeout
	}
	return gateway.ReasonGeneral
}

// Err returns nil for success and otherwise a *gateway.Error carrying the
// code's reason, for an upstream backend to return.
func (c ReplyCode) Err() error {
	if c == ReplySuccess {
		return nil
	}
	return &gateway.Error{Reason: c.Reason(), Op: "socks6: operation reply", Err: replyCodeError(c)}
}

type replyCodeError ReplyCode

// Error names the reply code.
func (e replyCodeError) Error() string { return "upstream replied " + ReplyCode(e).String() }
