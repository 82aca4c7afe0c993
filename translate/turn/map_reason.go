package turn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/stun"

	"github.com/sixgate/sixgate/gateway"
)

// CodeForReason returns the ERROR-CODE a TURN server answers a request of
// method with when the neutral model fails it with reason r (turn.md §2.5,
// §8). Family problems are 440 on Allocate and 443 on the peer methods;
// connection failures are 447 on an RFC 6062 Connect and 500 elsewhere. It
// returns 0 for ReasonNone. See the README's table.
func CodeForReason(method stun.Method, r gateway.Reason) stun.ErrorCode {
	connect := method == stun.MethodConnect
	switch r {
	case gateway.ReasonNone:
		return 0
	case gateway.ReasonNotAllowed:
		return stun.CodeForbidden
	case gateway.ReasonAuthFailed:
		return stun.CodeUnauthorized
	case gateway.ReasonAddrTypeNotSupported, gateway.ReasonFamilyMismatch:
		if method == stun.MethodAllocate {
			return stun.CodeAddrFamilyNotSupported
		}
		return stun.CodePeerAddrFamilyMismatch
	case gateway.ReasonDFUnsupported:
		return stun.CodeUnknownAttribute
	case gateway.ReasonQuotaExceeded:
		return stun.CodeAllocQuotaReached
	case gateway.ReasonCapacityExhausted:
		return stun.CodeInsufficientCapacity
	case gateway.ReasonCommandNotSupported:
		if method == stun.MethodAllocate {
			return stun.CodeUnsupportedTransProto
		}
	}
	if connect {
		return stun.CodeConnTimeoutOrFailure
	}
	return stun.CodeServerError
}

// CodeErrorFor turns a neutral failure (an error from a backend or the
// router, classified with gateway.ReasonOf) into the *CodeError a request of
// method is answered with; for ReasonDFUnsupported it lists DONT-FRAGMENT as
// the unknown attribute. It returns nil for a nil error.
func CodeErrorFor(method stun.Method, err error) *CodeError {
	if err == nil {
		return nil
	}
	r := gateway.ReasonOf(err)
	ce := &CodeError{Code: CodeForReason(method, r), Err: err}
	if r == gateway.ReasonDFUnsupported {
		ce.Unknown = []stun.AttrType{stun.AttrDontFragment}
	}
	if ce.Code == 0 {
		ce.Code = stun.CodeServerError
	}
	return ce
}

// ReasonForCode returns the neutral reason for a TURN error code received
// from a server (the client side): 403 and 405 not allowed; 401, 438 and 441
// authentication failed; 440 and 443 family mismatch; 442 command not
// supported; 447 timeout; 486 quota; 508 capacity; anything else general
// failure. A 420 is general failure here; ReasonForResponse recognises the
// DONT-FRAGMENT case.
func ReasonForCode(code stun.ErrorCode) gateway.Reason {
	switch code {
	case 0:
		return gateway.ReasonNone
	case stun.CodeForbidden, CodeMobilityForbidden:
		return gateway.ReasonNotAllowed
	case stun.CodeUnauthorized, stun.CodeStaleNonce, stun.CodeWrongCredentials:
		return gateway.ReasonAuthFailed
	case stun.CodeAddrFamilyNotSupported, stun.CodePeerAddrFamilyMismatch:
		return gateway.ReasonFamilyMismatch
	case stun.CodeUnsupportedTransProto:
		return gateway.ReasonCommandNotSupported
	case stun.CodeConnTimeoutOrFailure:
		return gateway.ReasonTimeout
	case stun.CodeAllocQuotaReached:
		return gateway.ReasonQuotaExceeded
	case stun.CodeInsufficientCapacity:
		return gateway.ReasonCapacityExhausted
	}
	return gateway.ReasonGeneral
}

// ResponseError is an error response received from a TURN server.
type ResponseError struct {
	// Code and Reason are the response's ERROR-CODE.
	Code   stun.ErrorCode
	Reason string
	// Unknown is the UNKNOWN-ATTRIBUTES list of a 420.
	Unknown []stun.AttrType
}

// Error formats the error as "turn: server answered <code> <reason>".
func (e *ResponseError) Error() string {
	return fmt.Sprintf("turn: server answered %d %s", e.Code, strings.ToLower(e.Reason))
}

// DFRejected reports whether the error is a 420 listing DONT-FRAGMENT: the
// server cannot set DF, so retry the Allocate without it.
func (e *ResponseError) DFRejected() bool {
	if e.Code != stun.CodeUnknownAttribute {
		return false
	}
	for _, t := range e.Unknown {
		if t == stun.AttrDontFragment {
			return true
		}
	}
	return false
}

// ReasonForResponse returns the neutral reason of a response: ReasonNone
// for a success, ReasonDFUnsupported for a 420 listing DONT-FRAGMENT,
// otherwise ReasonForCode of its ERROR-CODE (general failure when it has
// none or it is malformed).
func ReasonForResponse(m *stun.Message) gateway.Reason {
	err := ErrorFromResponse("", m)
	if err == nil {
		return gateway.ReasonNone
	}
	return gateway.ReasonOf(err)
}

// ErrorFromResponse returns nil for a success response, and for an error
// response a *gateway.Error whose Reason follows ReasonForResponse and whose
// cause is a *ResponseError. op names the step ("turn: allocate").
func ErrorFromResponse(op string, m *stun.Message) error {
	if m.Type.Class != stun.ClassErrorResponse {
		if m.Type.Class == stun.ClassSuccessResponse {
			return nil
		}
		return gateway.NewError(gateway.ReasonGeneral, op, fmt.Errorf("turn: %s: %w", m.Type, ErrUnexpectedType))
	}
	var ec ErrorCodeAttr
	if err := ec.GetFrom(m); err != nil {
		return gateway.NewError(gateway.ReasonGeneral, op, err)
	}
	re := &ResponseError{Code: ec.Code, Reason: ec.Reason}
	if ec.Code == stun.CodeUnknownAttribute {
		var u UnknownAttributes
		if err := u.GetFrom(m); err == nil {
			re.Unknown = u
		}
	}
	r := ReasonForCode(ec.Code)
	if re.DFRejected() {
		r = gateway.ReasonDFUnsupported
	}
	return gateway.NewError(r, op, re)
}

// IsDFRejected reports whether err (from ErrorFromResponse) is a 420 listing
// DONT-FRAGMENT.
func IsDFRejected(err error) bool {
	var re *ResponseError
	return errors.As(err, &re) && re.DFRejected()
}
