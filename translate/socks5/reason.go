package socks5

import "github.com/sixgate/sixgate/gateway"

// Reason returns the neutral reason a reply code carries: each RFC 1928 code
// maps to its namesake, an unassigned code to gateway.ReasonGeneral and
// RepSucceeded to gateway.ReasonNone. RepTTLExpired maps to
// gateway.ReasonTTLExpired although many servers (Dante, Tor, sixgate
// itself) send it for timeouts: the code cannot tell the two apart.
func (c ReplyCode) Reason() gateway.Reason {
	switch c {
	case RepSucceeded:
		return gateway.ReasonNone
	case RepNotAllowed:
		return gateway.ReasonNotAllowed
	case RepNetUnreachable:
		return gateway.ReasonNetUnreachable
	case RepHostUnreachable:
		return gateway.ReasonHostUnreachable
	case RepConnRefused:
		return gateway.ReasonRefused
	case RepTTLExpired:
		return gateway.ReasonTTLExpired
	case RepCommandNotSupported:
		return gateway.ReasonCommandNotSupported
	case RepAddrTypeNotSupported:
		return gateway.ReasonAddrTypeNotSupported
	}
	return gateway.ReasonGeneral
}

// ReplyFor returns the reply code that carries reason r. SOCKS 5 has fewer
// codes than the neutral model has reasons, so several reasons share one:
//
//   - ReasonTimeout sends RepTTLExpired (0x06), as Dante and Tor do; RFC 1928
//     has no timeout code, and 0x06 tells the client the attempt ran out
//     rather than that the host is unreachable.
//   - ReasonAuthFailed and ReasonQuotaExceeded send RepNotAllowed (0x02): both
//     are rules about this client, and retrying will not help.
//   - ReasonCapacityExhausted sends RepGeneralFailure (0x01): the server is
//     out of resources, which is no verdict on the client's request.
//   - ReasonFamilyMismatch sends RepAddrTypeNotSupported (0x08).
//   - ReasonDFUnsupported (a SOCKS 6 stack option) and any unknown reason
//     send RepGeneralFailure.
func ReplyFor(r gateway.Reason) ReplyCode {
	switch r {
	case gateway.ReasonNone:
		return RepSucceeded
	case gateway.ReasonNotAllowed, gateway.ReasonAuthFailed, gateway.ReasonQuotaExceeded:
		return RepNotAllowed
	case gateway.ReasonNetUnreachable:
		return RepNetUnreachable
	case gateway.ReasonHostUnreachable:
		return RepHostUnreachable
	case gateway.ReasonRefused:
		return RepConnRefused
	case gateway.ReasonTTLExpired, gateway.ReasonTimeout:
		return RepTTLExpired
	case gateway.ReasonCommandNotSupported:
		return RepCommandNotSupported
	case gateway.ReasonAddrTypeNotSupported, gateway.ReasonFamilyMismatch:
		return RepAddrTypeNotSupported
	}
	return RepGeneralFailure
}

// ReplyForError returns the reply code for a backend's error:
// ReplyFor(gateway.ReasonOf(err)), so RepSucceeded for nil.
func ReplyForError(err error) ReplyCode { return ReplyFor(gateway.ReasonOf(err)) }
