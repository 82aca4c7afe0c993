package socks5

import "errors"

// Failures of the method negotiation. Each is returned wrapped in a
// *gateway.Error with gateway.ReasonAuthFailed; test for them with
// errors.Is.
var (
	// ErrNoAcceptableMethod reports that the server accepts none of the
	// offered authentication methods (METHOD 0xFF).
	ErrNoAcceptableMethod = errors.New("no acceptable methods")
	// ErrBadCredentials reports that the server rejected the configured
	// username and password (a failure status in its RFC 1929 reply).
	ErrBadCredentials = errors.New("credentials rejected")
)

// ErrProtocol reports a server that broke the protocol: a malformed or
// truncated message, or a method it was not offered. It is wrapped in a
// *gateway.Error with gateway.ReasonGeneral, usually together with the
// codec's *s5.FieldError.
var ErrProtocol = errors.New("protocol violation by the server")
