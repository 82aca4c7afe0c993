package socks6

import (
	"encoding/binary"
	"fmt"

	"github.com/sixgate/sixgate/gateway"
)

// Command is a Request's Command Code.
type Command uint8

// The commands.
const (
	CmdNoop         Command = 0x00
	CmdConnect      Command = 0x01
	CmdBind         Command = 0x02
	CmdUDPAssociate Command = 0x03
)

// String returns the command's name.
func (c Command) String() string {
	switch c {
	case CmdNoop:
		return "noop"
	case CmdConnect:
		return "connect"
	case CmdBind:
		return "bind"
	case CmdUDPAssociate:
		return "udp-associate"
	}
	return fmt.Sprintf("command(0x%02x)", uint8(c))
}

// MaxRequestLen is the size of the largest possible Request: an 8-byte
// header, a 256-byte domain-name field and MaxOptionsLen bytes of options.
const MaxRequestLen = 8 + 256 + MaxOptionsLen

// Request is the client's first message.
type Request struct {
	// Command is the command; unknown codes are kept (the proxy answers
	// them with ReplyCommandNotSupported).
	Command Command
	// Addr is the destination (CONNECT) or the wanted bind address (BIND,
	// UDP ASSOCIATE); for NOOP it is zero (written as 0.0.0.0:0).
	Addr    gateway.Addr
	Options Options
}

// InitialDataLen returns the number of bytes of initial data that follow the
// Request on the stream: the Advertisement's Initial Data Length for CONNECT,
// and 0 for every other command or without an Advertisement (§10 item 12:
// the field has no defined meaning for other commands).
func (r *Request) InitialDataLen() int {
	if r.Command != CmdConnect || r.Options.Advertisement == nil {
		return 0
	}
	return int(r.Options.Advertisement.InitialDataLen)
}

const (
	msgRequest = "request"
	msgAuthRep = "authentication reply"
	msgOpRep   = "operation reply"
)

// AppendRequest appends the encoded Request to b. Domain names are written
// style A (length = name, NUL padding to 4-byte alignment). On error b is
// returned unchanged.
func AppendRequest(b []byte, r *Request, d Dialect) ([]byte, error) {
	return appendAddrMsg(b, byte(r.Command), r.Addr, &r.Options, d, msgRequest)
}

// ParseRequest decodes the Request at the start of b and returns it and its
// length; bytes after it (initial or false-start data) are not examined.
func ParseRequest(b []byte, d Dialect) (Request, int, error) {
	var r Request
	code, n, err := parseAddrMsg(b, &r.Addr, &r.Options, d, msgRequest)
	r.Command = Command(code)
	if err != nil {
		return Request{}, 0, err
	}
	return r, n, nil
}

// appendAddrMsg writes the layout shared by the Request and the Operation
// Reply: Ver, Code, Options Length, Port, Pad, ATYP, Address, Options.
func appendAddrMsg(b []byte, code byte, a gateway.Addr, o *Options, d Dialect, msg string) ([]byte, error) {
	alen, err := addrFieldLen(a, true)
	if err != nil {
		return b, encodeErr(msg, "address", err)
	}
	start := len(b)
	b = append(b, Version, code, 0, 0, byte(a.Port>>8), byte(a.Port), 0, byte(AddrTypeOf(a)))
	n := len(b)
	b = append(b, make([]byte, alen)...)
	putAddrField(b[n:], a, true)
	n = len(b)
	b, err = AppendOptions(b, o, d)
	if err != nil {
		return b[:start], err
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-n))
	return b, nil
}

// parseAddrMsg decodes the Request/Operation Reply layout. It checks the
// fields in wire order and reports ErrShort only when no earlier field is
// wrong, so that a stream reader can probe a prefix of the message.
func parseAddrMsg(b []byte, a *gateway.Addr, o *Options, d Dialect, msg string) (code byte, n int, err error) {
	if len(b) < 1 {
		return 0, 0, fieldErr(msg, "version", 0, ErrShort)
	}
	if b[0] != Version {
		return 0, 0, fieldErr(msg, "version", 0, fmt.Errorf("%w: 0x%02x", ErrVersion, b[0]))
	}
	if len(b) < 8 {
		return 0, 0, fieldErr(msg, "header", 1, ErrShort)
	}
	code = b[1]
	ol := int(binary.BigEndian.Uint16(b[2:]))
	if err := checkOptionsLen(ol); err != nil {
		return code, 0, fieldErr(msg, "options length", 2, err)
	}
	port := binary.BigEndian.Uint16(b[4:])
	*a, n, err = parseAddr(b[8:], AddrType(b[7]), 7, port, true, msg, 8)
	if err != nil {
		return code, 0, err
	}
	n += 8
	if len(b)-n < ol {
		return code, 0, fieldErr(msg, "options", n, ErrShort)
	}
	o.parse(b[n:n+ol], d)
	return code, n + ol, nil
}
