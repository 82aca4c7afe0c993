package socks6

import (
	"errors"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Authentication failures. Every one is returned wrapped in a *gateway.Error
// with gateway.ReasonAuthFailed; test for them with errors.Is.
var (
	// ErrBadCredentials reports that the proxy rejected the username and
	// password (its RFC 1929 reply carried a failure status, or the final
	// Authentication Reply of an in-band exchange failed).
	ErrBadCredentials = errors.New("credentials rejected")
	// ErrNoAcceptableMethod reports that the proxy accepts none of the
	// methods offered (Selection 0xFF, or a failure with no Selection when
	// no credentials were sent).
	ErrNoAcceptableMethod = errors.New("no acceptable authentication method")
	// ErrSessionInvalid reports that the proxy does not know the Session ID
	// (Session Invalid). Client methods recover from it once by themselves.
	ErrSessionInvalid = errors.New("session invalid")
	// ErrTokenRejected reports that the proxy rejected the idempotence
	// token (Idempotence Rejected). Client methods recover from it once by
	// themselves.
	ErrTokenRejected = errors.New("idempotence token rejected")
	// ErrAuthFailed reports an authentication failure the proxy gave no
	// reason for.
	ErrAuthFailed = errors.New("authentication failed")
)

// ErrVersionMismatch reports the proxy's Version Mismatch reply: the single
// byte 06 followed by the end of the stream, the proxy's answer to a Request
// whose version it does not speak. It is wrapped in a *gateway.Error with
// gateway.ReasonGeneral.
var ErrVersionMismatch = errors.New("proxy answered version mismatch")

// ErrNotSOCKS6 reports a proxy whose reply does not start with version 6 (a
// SOCKS 5 server answers `05 FF`; the Go and C++ implementations use private
// version bytes). It is wrapped in a *gateway.Error with
// gateway.ReasonGeneral, together with the codec's s6.ErrVersion.
var ErrNotSOCKS6 = errors.New("proxy does not speak socks 6")

// ErrProtocol reports a reply that breaks the protocol (malformed, or a
// message the client did not ask for). It is wrapped in a *gateway.Error
// with gateway.ReasonGeneral, usually together with the codec's
// *s6.FieldError.
var ErrProtocol = errors.New("protocol violation by the proxy")

// ReplyError is an Operation Reply that reported failure. The *gateway.Error
// around it carries the neutral reason of the code (Code.Reason()), so a
// SOCKS 5 client behind sixgate sees "connection refused" when the far end
// refused.
type ReplyError struct {
	// Command is the Request's command.
	Command s6.Command
	// Code is the Operation Reply's code.
	Code s6.ReplyCode
}

// Error returns "upstream replied <code meaning>".
func (e *ReplyError) Error() string { return "upstream replied " + e.Code.String() }

// fail wraps err in a *gateway.Error whose Op is "socks6 backend: op".
func fail(r gateway.Reason, op string, err error) error {
	return &gateway.Error{Reason: r, Op: "socks6 backend: " + op, Err: err}
}

// upstreamReason is the neutral reason for a failure to reach the upstream
// proxy or to talk to it: a timeout stays a timeout, anything else is the
// proxy chain failing (general failure) and never the destination's
// refusal.
func upstreamReason(err error) gateway.Reason {
	if gateway.Classify(err) == gateway.ReasonTimeout {
		return gateway.ReasonTimeout
	}
	return gateway.ReasonGeneral
}
