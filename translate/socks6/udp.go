package socks6

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
)

// AssocID is a UDP association's 8-byte Association ID.
type AssocID [8]byte

// UDPType is the Type of a UDP relay message (-09 and later).
type UDPType uint8

// UDP relay message types.
const (
	UDPInit     UDPType = 0x01 // Association Initialization, P → C, TCP only
	UDPConfirm  UDPType = 0x02 // Association Confirmation, P → C, TCP only
	UDPDatagram UDPType = 0x03 // Datagram, both ways
	UDPError    UDPType = 0x04 // Error, P → C, only to clients that opted in
)

// String returns the message type's name.
func (t UDPType) String() string {
	switch t {
	case UDPInit:
		return "association initialization"
	case UDPConfirm:
		return "association confirmation"
	case UDPDatagram:
		return "datagram"
	case UDPError:
		return "error"
	}
	return fmt.Sprintf("udp message type 0x%02x", uint8(t))
}

// ErrorCode is the Code of an Error message.
type ErrorCode uint8

// Error message codes.
const (
	ErrorCodeNetUnreachable  ErrorCode = 0x01
	ErrorCodeHostUnreachable ErrorCode = 0x02
	ErrorCodeTTLExpired      ErrorCode = 0x03
	// ErrorCodeDatagramTooBig is IPv6 only (-10 and later); no MTU is
	// carried.
	ErrorCodeDatagramTooBig ErrorCode = 0x04
)

// String returns the code's meaning.
func (c ErrorCode) String() string {
	switch c {
	case ErrorCodeNetUnreachable:
		return "network unreachable"
	case ErrorCodeHostUnreachable:
		return "host unreachable"
	case ErrorCodeTTLExpired:
		return "TTL expired"
	case ErrorCodeDatagramTooBig:
		return "datagram too big"
	}
	return fmt.Sprintf("error code 0x%02x", uint8(c))
}

// Sizes of UDP relay messages.
const (
	// UDPHeaderLen is the common header: Ver, Type, Message Length, ID.
	UDPHeaderLen = 12
	// MaxUDPMessageLen is the largest Message Length.
	MaxUDPMessageLen = 65535
	// MaxDatagramHeaderLen is the largest Datagram header (a 255-byte
	// name); with an IP address it is at most 32 bytes.
	MaxDatagramHeaderLen = UDPHeaderLen + 4 + 1 + gateway.MaxNameLen
)

// UDPMessage is a UDP relay message. Which fields are used depends on Type:
//
//	UDPInit, UDPConfirm   Assoc
//	UDPDatagram           Assoc, Addr, Payload
//	UDPError              Assoc, Addr, Code, Reporter
type UDPMessage struct {
	Type  UDPType
	Assoc AssocID
	// Addr is, in a Datagram, the destination (client to proxy) or the
	// remote source (proxy to client); in an Error, the destination of the
	// datagram that failed (an IP address, never a name).
	Addr gateway.Addr
	// Payload is a Datagram's payload; decoded, it is a sub-slice of the
	// input.
	Payload []byte
	// Code is an Error's code; unknown codes are kept.
	Code ErrorCode
	// Reporter is an Error's Reporter Address: the source of the ICMP
	// packet.
	Reporter netip.Addr
}

// IsReceiveFirst reports whether m is the empty all-zero Datagram a
// receive-first client sends to set up its mapping; the proxy does not
// relay it.
func (m *UDPMessage) IsReceiveFirst() bool {
	return m.Type == UDPDatagram && len(m.Payload) == 0 && m.Addr.Port == 0 && m.Addr.IsAny()
}

const (
	msgUDP      = "udp message"
	msgDatagram = "datagram"
	msgError    = "error message"
)

func msgName(t UDPType) string {
	switch t {
	case UDPDatagram:
		return msgDatagram
	case UDPError:
		return msgError
	case UDPInit:
		return "association initialization"
	case UDPConfirm:
		return "association confirmation"
	}
	return msgUDP
}

// ParseUDPMessage decodes the UDP relay message at the start of b and
// returns it and its Message Length. Bytes after Message Length are not
// examined (on plain UDP they are padding; on TCP the next message). A
// Message Length larger than b gives ErrShort (on UDP: drop silently).
//
// It does not allocate, except for a domain name in a Datagram.
func ParseUDPMessage(b []byte) (UDPMessage, int, error) {
	var m UDPMessage
	if len(b) < 4 {
		return m, 0, fieldErr(msgUDP, "header", 0, ErrShort)
	}
	if err := checkUDPHeader(b); err != nil {
		return m, 0, err
	}
	m.Type = UDPType(b[1])
	msg := msgName(m.Type)
	ml := int(binary.BigEndian.Uint16(b[2:]))
	if len(b) < ml {
		return m, 0, fieldErr(msg, "message", 4, ErrShort)
	}
	b = b[:ml]
	m.Assoc = AssocID(b[4:12])
	switch m.Type {
	case UDPInit, UDPConfirm:
		if ml != UDPHeaderLen {
			return m, 0, fieldErr(msg, "message length", 2, ErrBadLength)
		}
	case UDPDatagram:
		n, err := parseUDPAddr(b, &m.Addr, false, msg)
		if err != nil {
			return m, 0, err
		}
		m.Payload = b[n:]
	case UDPError:
		n, err := parseUDPAddr(b, &m.Addr, true, msg)
		if err != nil {
			return m, 0, err
		}
		if len(b) < n+4 {
			return m, 0, fieldErr(msg, "reporter address type", n, ErrShort)
		}
		rt := AddrType(b[n])
		if rt != AddrIPv4 && rt != AddrIPv6 {
			return m, 0, fieldErr(msg, "reporter address type", n, ErrAddrType)
		}
		m.Code = ErrorCode(b[n+1])
		rep, rl, err := parseAddr(b[n+4:], rt, n, 0, false, msg, n+4)
		if err != nil {
			return m, 0, err
		}
		m.Reporter = rep.IP
		if n+4+rl != ml {
			return m, 0, fieldErr(msg, "message length", 2, ErrBadLength)
		}
	}
	return m, ml, nil
}

// checkUDPHeader checks the first 4 bytes of a UDP relay message: version,
// type and Message Length ≥ 12.
func checkUDPHeader(b []byte) error {
	if b[0] != Version {
		return fieldErr(msgUDP, "version", 0, ErrVersion)
	}
	t := UDPType(b[1])
	if t < UDPInit || t > UDPError {
		return fieldErr(msgName(t), "type", 1, ErrMessageType)
	}
	if binary.BigEndian.Uint16(b[2:]) < UDPHeaderLen {
		return fieldErr(msgName(t), "message length", 2, ErrBadLength)
	}
	return nil
}

// parseUDPAddr parses the ATYP, pad, Port, Address block at offset 12 of a
// Datagram or Error message and returns the offset after it. ipOnly rejects
// domain names (Error messages).
func parseUDPAddr(b []byte, a *gateway.Addr, ipOnly bool, msg string) (int, error) {
	if len(b) < 16 {
		return 0, fieldErr(msg, "address type", 12, ErrShort)
	}
	atyp := AddrType(b[12])
	switch {
	case atyp == AddrIPv4 || atyp == AddrIPv6 || (atyp == AddrDomain && !ipOnly):
	case validATYP(b[15]) && b[14] == 0 && !validATYP(b[12]):
		// Port, pad, ATYP: the Request order the Go library uses.
		return 0, fieldErr(msg, "address type", 12, ErrAddrOrder)
	default:
		return 0, fieldErr(msg, "address type", 12, ErrAddrType)
	}
	port := binary.BigEndian.Uint16(b[14:])
	addr, n, err := parseAddr(b[16:], atyp, 12, port, false, msg, 16)
	if err != nil {
		return 0, err
	}
	*a = addr
	return 16 + n, nil
}

func validATYP(t byte) bool {
	return AddrType(t) == AddrIPv4 || AddrType(t) == AddrIPv6 || AddrType(t) == AddrDomain
}

func putUDPHeader(b []byte, t UDPType, length int, id AssocID) {
	b[0], b[1], b[2], b[3] = Version, byte(t), byte(length>>8), byte(length)
	copy(b[4:12], id[:])
}

// putUDPAddr writes ATYP, pad, Port, Address (names unpadded) and returns
// its length.
func putUDPAddr(b []byte, a gateway.Addr) int {
	b[0], b[1], b[2], b[3] = byte(AddrTypeOf(a)), 0, byte(a.Port>>8), byte(a.Port)
	return 4 + putAddrField(b[4:], a, false)
}

// DatagramHeaderLen returns the length of a Datagram header addressed to or
// from a: 20 for IPv4, 32 for IPv6, 17 + the name's length for a name.
func DatagramHeaderLen(a gateway.Addr) (int, error) {
	n, err := addrFieldLen(a, false)
	if err != nil {
		return 0, encodeErr(msgDatagram, "address", err)
	}
	return UDPHeaderLen + 4 + n, nil
}

// PutDatagramHeader writes the header of a Datagram carrying payloadLen bytes
// at the start of b and returns its length. It lets a relay read a payload at
// a fixed offset of a buffer and put the header right before it without
// copying; it fails with io.ErrShortBuffer if b is too small and ErrTooLong
// if the message would exceed MaxUDPMessageLen. It does not allocate.
func PutDatagramHeader(b []byte, id AssocID, a gateway.Addr, payloadLen int) (int, error) {
	h, err := DatagramHeaderLen(a)
	if err != nil {
		return 0, err
	}
	if payloadLen < 0 || h+payloadLen > MaxUDPMessageLen {
		return 0, encodeErr(msgDatagram, "message length", ErrTooLong)
	}
	if len(b) < h {
		return 0, encodeErr(msgDatagram, "header", io.ErrShortBuffer)
	}
	putUDPHeader(b, UDPDatagram, h+payloadLen, id)
	putUDPAddr(b[12:], a)
	return h, nil
}

// AppendDatagram appends a Datagram to b. It does not allocate when b has the
// capacity.
func AppendDatagram(b []byte, id AssocID, a gateway.Addr, payload []byte) ([]byte, error) {
	h, err := DatagramHeaderLen(a)
	if err != nil {
		return b, err
	}
	if h+len(payload) > MaxUDPMessageLen {
		return b, encodeErr(msgDatagram, "message length", ErrTooLong)
	}
	n := len(b)
	b = append(b, make([]byte, h)...)
	putUDPHeader(b[n:], UDPDatagram, h+len(payload), id)
	putUDPAddr(b[n+12:], a)
	return append(b, payload...), nil
}

// AppendUDPMessage appends the encoded message to b. An Error's Addr and
// Reporter must be IP addresses. On error b is returned unchanged.
func AppendUDPMessage(b []byte, m *UDPMessage) ([]byte, error) {
	switch m.Type {
	case UDPInit, UDPConfirm:
		n := len(b)
		b = append(b, make([]byte, UDPHeaderLen)...)
		putUDPHeader(b[n:], m.Type, UDPHeaderLen, m.Assoc)
		return b, nil
	case UDPDatagram:
		return AppendDatagram(b, m.Assoc, m.Addr, m.Payload)
	case UDPError:
		if m.Addr.IsName() || !m.Addr.IP.IsValid() {
			return b, encodeErr(msgError, "address", ErrValue)
		}
		if !m.Reporter.IsValid() {
			return b, encodeErr(msgError, "reporter address", ErrValue)
		}
		rep := gateway.Addr{IP: m.Reporter}
		al, _ := addrFieldLen(m.Addr, false)
		rl, _ := addrFieldLen(rep, false)
		total := UDPHeaderLen + 4 + al + 4 + rl
		n := len(b)
		b = append(b, make([]byte, total)...)
		w := b[n:]
		putUDPHeader(w, UDPError, total, m.Assoc)
		off := 12 + putUDPAddr(w[12:], m.Addr)
		w[off], w[off+1], w[off+2], w[off+3] = byte(AddrTypeOf(rep)), byte(m.Code), 0, 0
		putAddrField(w[off+4:], rep, false)
		return b, nil
	}
	return b, encodeErr(msgUDP, "type", ErrMessageType)
}

// AppendAssocInit appends an Association Initialization for id.
func AppendAssocInit(b []byte, id AssocID) []byte {
	b, _ = AppendUDPMessage(b, &UDPMessage{Type: UDPInit, Assoc: id})
	return b
}

// AppendAssocConfirm appends an Association Confirmation for id.
func AppendAssocConfirm(b []byte, id AssocID) []byte {
	b, _ = AppendUDPMessage(b, &UDPMessage{Type: UDPConfirm, Assoc: id})
	return b
}

// ReadUDPMessage reads one UDP relay message from a TCP stream, delimited by
// its Message Length. Payload aliases the buffer the message was read into
// (buf when it is large enough). With a buf of MaxUDPMessageLen bytes and an
// IP address it does not allocate.
func ReadUDPMessage(r io.Reader, buf []byte) (UDPMessage, error) {
	b, err := readN(r, buf[:0], 4)
	if err != nil {
		if len(b) == 0 && err == io.EOF {
			return UDPMessage{}, io.EOF
		}
		return UDPMessage{}, readErr(msgUDP, "header", len(b), err)
	}
	if err := checkUDPHeader(b); err != nil {
		return UDPMessage{}, err
	}
	if b, err = readN(r, b, (int(b[2])<<8|int(b[3]))-4); err != nil {
		return UDPMessage{}, readErr(msgName(UDPType(b[1])), "message", len(b), err)
	}
	m, _, err := ParseUDPMessage(b)
	return m, err
}
