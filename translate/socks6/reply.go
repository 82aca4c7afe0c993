package socks6

import (
	"encoding/binary"
	"fmt"

	"github.com/sixgate/sixgate/gateway"
)

// AppendVersionMismatch appends the Version Mismatch reply, the single byte
// 06, which the proxy sends when a Request's first byte is not 6.
func AppendVersionMismatch(b []byte) []byte { return append(b, Version) }

// AuthType is the Type of an Authentication Reply.
type AuthType uint8

// Authentication Reply types.
const (
	AuthSuccess AuthType = 0x00
	// AuthFailure is final unless the reply carries a Selection of a method
	// other than 0xFF, in which case that method's exchange follows.
	AuthFailure AuthType = 0x01
)

// AuthReply is the proxy's Authentication Reply.
type AuthReply struct {
	Type    AuthType
	Options Options
}

// Continues reports whether the reply opens a method-specific exchange: Type
// 1 with a Selection of a method other than 0xFF.
func (r *AuthReply) Continues() bool {
	return r.Type == AuthFailure && r.Options.Selection != nil && *r.Options.Selection != MethodNoAcceptable
}

// Reason returns the neutral reason of the reply: ReasonNone for success,
// ReasonAuthFailed for any failure (wrong credentials, Session Invalid,
// Idempotence Rejected, no acceptable method).
func (r *AuthReply) Reason() gateway.Reason {
	if r.Type == AuthSuccess {
		return gateway.ReasonNone
	}
	return gateway.ReasonAuthFailed
}

// AppendAuthReply appends the encoded Authentication Reply to b. On error b
// is returned unchanged.
func AppendAuthReply(b []byte, r *AuthReply, d Dialect) ([]byte, error) {
	start := len(b)
	b = append(b, Version, byte(r.Type), 0, 0)
	b, err := AppendOptions(b, &r.Options, d)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start-4))
	return b, nil
}

// ParseAuthReply decodes the Authentication Reply at the start of b and
// returns it and its length.
func ParseAuthReply(b []byte, d Dialect) (AuthReply, int, error) {
	if len(b) < 1 {
		return AuthReply{}, 0, fieldErr(msgAuthRep, "version", 0, ErrShort)
	}
	if b[0] != Version {
		return AuthReply{}, 0, fieldErr(msgAuthRep, "version", 0, fmt.Errorf("%w: 0x%02x", ErrVersion, b[0]))
	}
	if len(b) < 4 {
		return AuthReply{}, 0, fieldErr(msgAuthRep, "header", 1, ErrShort)
	}
	ol := int(binary.BigEndian.Uint16(b[2:]))
	if err := checkOptionsLen(ol); err != nil {
		return AuthReply{}, 0, fieldErr(msgAuthRep, "options length", 2, err)
	}
	if len(b)-4 < ol {
		return AuthReply{}, 0, fieldErr(msgAuthRep, "options", 4, ErrShort)
	}
	r := AuthReply{Type: AuthType(b[1])}
	r.Options.parse(b[4:4+ol], d)
	return r, 4 + ol, nil
}

// ReplyCode is an Operation Reply's code.
type ReplyCode uint8

// Operation Reply codes.
const (
	ReplySuccess             ReplyCode = 0x00
	ReplyGeneralFailure      ReplyCode = 0x01
	ReplyNotAllowed          ReplyCode = 0x02
	ReplyNetUnreachable      ReplyCode = 0x03
	ReplyHostUnreachable     ReplyCode = 0x04
	ReplyRefused             ReplyCode = 0x05
	ReplyTTLExpired          ReplyCode = 0x06
	ReplyCommandNotSupported ReplyCode = 0x07
	ReplyAddrTypeUnsupported ReplyCode = 0x08
	ReplyTimeout             ReplyCode = 0x09
)

// String returns the code's meaning.
func (c ReplyCode) String() string {
	switch c {
	case ReplySuccess:
		return "success"
	case ReplyGeneralFailure:
		return "general SOCKS server failure"
	case ReplyNotAllowed:
		return "connection not allowed by ruleset"
	case ReplyNetUnreachable:
		return "network unreachable"
	case ReplyHostUnreachable:
		return "host unreachable"
	case ReplyRefused:
		return "connection refused"
	case ReplyTTLExpired:
		return "TTL expired"
	case ReplyCommandNotSupported:
		return "command not supported"
	case ReplyAddrTypeUnsupported:
		return "address type not supported"
	case ReplyTimeout:
		return "connection attempt timed out"
	}
	return fmt.Sprintf("reply code 0x%02x", uint8(c))
}

// OpReply is the proxy's Operation Reply.
type OpReply struct {
	Code ReplyCode
	// Bind is the bind address and port (§3.4: the proxy's local endpoint
	// for CONNECT, the listening address or the peer for BIND, the
	// remote-facing socket for UDP ASSOCIATE); zero (0.0.0.0:0) on failure.
	Bind    gateway.Addr
	Options Options
}

// AppendOpReply appends the encoded Operation Reply to b. On error b is
// returned unchanged.
func AppendOpReply(b []byte, r *OpReply, d Dialect) ([]byte, error) {
	return appendAddrMsg(b, byte(r.Code), r.Bind, &r.Options, d, msgOpRep)
}

// ParseOpReply decodes the Operation Reply at the start of b and returns it
// and its length.
func ParseOpReply(b []byte, d Dialect) (OpReply, int, error) {
	var r OpReply
	code, n, err := parseAddrMsg(b, &r.Bind, &r.Options, d, msgOpRep)
	if err != nil {
		return OpReply{}, 0, err
	}
	r.Code = ReplyCode(code)
	return r, n, nil
}
