package socks5

import "fmt"

// Version is the SOCKS protocol version byte, the first byte of every SOCKS 5
// message on the control connection (a shared listener dispatches on it).
const Version = 0x05

// UserPassVersion is the version byte of the RFC 1929 username/password
// sub-negotiation (request and reply).
const UserPassVersion = 0x01

// RFC 1929 status values of the username/password reply. Any status other
// than UserPassSuccess is a failure, after which the server closes.
const (
	UserPassSuccess = 0x00
	UserPassFailure = 0x01
)

// Method is an authentication method identifier of the method negotiation.
type Method uint8

// Method identifiers (RFC 1928 section 3).
const (
	MethodNoAuth       Method = 0x00 // no authentication required
	MethodGSSAPI       Method = 0x01 // GSSAPI (RFC 1961); named, not implemented
	MethodUserPass     Method = 0x02 // username/password (RFC 1929)
	MethodNoAcceptable Method = 0xFF // no acceptable methods
)

// String names the method, or gives its number.
func (m Method) String() string {
	switch m {
	case MethodNoAuth:
		return "no authentication"
	case MethodGSSAPI:
		return "gssapi"
	case MethodUserPass:
		return "username/password"
	case MethodNoAcceptable:
		return "no acceptable methods"
	}
	return fmt.Sprintf("method 0x%02x", uint8(m))
}

// Command is the CMD field of a request.
type Command uint8

// Commands (RFC 1928 section 4).
const (
	CmdConnect      Command = 0x01
	CmdBind         Command = 0x02
	CmdUDPAssociate Command = 0x03
)

// Valid reports whether c is one of the three commands RFC 1928 defines.
func (c Command) Valid() bool { return c >= CmdConnect && c <= CmdUDPAssociate }

// String names the command, or gives its number.
func (c Command) String() string {
	switch c {
	case CmdConnect:
		return "connect"
	case CmdBind:
		return "bind"
	case CmdUDPAssociate:
		return "udp associate"
	}
	return fmt.Sprintf("command 0x%02x", uint8(c))
}

// AddrType is the ATYP field of a request, a reply or a UDP header.
type AddrType uint8

// Address types (RFC 1928 section 5).
const (
	AddrIPv4   AddrType = 0x01
	AddrDomain AddrType = 0x03
	AddrIPv6   AddrType = 0x04
)

// ReplyCode is the REP field of a reply.
type ReplyCode uint8

// Reply codes (RFC 1928 section 6). Values from 0x09 to 0xFF are unassigned;
// ReadReply accepts them (Tor, for one, sends 0xF0-0xF7) and Reason maps
// them to gateway.ReasonGeneral.
const (
	RepSucceeded            ReplyCode = 0x00
	RepGeneralFailure       ReplyCode = 0x01
	RepNotAllowed           ReplyCode = 0x02
	RepNetUnreachable       ReplyCode = 0x03
	RepHostUnreachable      ReplyCode = 0x04
	RepConnRefused          ReplyCode = 0x05
	RepTTLExpired           ReplyCode = 0x06
	RepCommandNotSupported  ReplyCode = 0x07
	RepAddrTypeNotSupported ReplyCode = 0x08
)

var repNames = [...]string{
	RepSucceeded:            "succeeded",
	RepGeneralFailure:       "general socks server failure",
	RepNotAllowed:           "connection not allowed by ruleset",
	RepNetUnreachable:       "network unreachable",
	RepHostUnreachable:      "host unreachable",
	RepConnRefused:          "connection refused",
	RepTTLExpired:           "ttl expired",
	RepCommandNotSupported:  "command not supported",
	RepAddrTypeNotSupported: "address type not supported",
}

// String gives the RFC 1928 meaning of the code in lower case, or its number
// for an unassigned code.
func (c ReplyCode) String() string {
	if int(c) < len(repNames) {
		return repNames[c]
	}
	return fmt.Sprintf("unassigned reply 0x%02x", uint8(c))
}
