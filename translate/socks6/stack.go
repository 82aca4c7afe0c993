package socks6

import (
	"github.com/sixgate/sixgate/gateway"
)

// Leg is the part of the path a stack option applies to (the top two bits of
// the option's byte 4).
type Leg uint8

// Legs. Leg 0 is invalid on the wire; an option carrying it is kept Raw and
// ignored.
const (
	LegClient Leg = 1 // client–proxy leg
	LegRemote Leg = 2 // proxy–remote leg
	LegBoth   Leg = 3 // both legs
)

// String returns the leg's name.
func (l Leg) String() string {
	switch l {
	case LegClient:
		return "client-proxy"
	case LegRemote:
		return "proxy-remote"
	case LegBoth:
		return "both"
	}
	return "invalid"
}

// Stack option levels (the low six bits of byte 4).
const (
	LevelIP   = 1
	LevelIPv4 = 2 // no options defined
	LevelIPv6 = 3 // no options defined
	LevelTCP  = 4
	LevelUDP  = 5
)

// StackKind names a stack option by its level and code: Level<<8 | Code.
type StackKind uint16

// The stack options of -10/-11. Every one is 8 bytes long on the wire.
const (
	StackTOS             StackKind = LevelIP<<8 | 1
	StackHappyEyeballs   StackKind = LevelIP<<8 | 2
	StackTTL             StackKind = LevelIP<<8 | 3
	StackNoFragmentation StackKind = LevelIP<<8 | 4
	StackTFO             StackKind = LevelTCP<<8 | 1
	StackMPTCP           StackKind = LevelTCP<<8 | 2
	StackBacklog         StackKind = LevelTCP<<8 | 3
	StackUDPError        StackKind = LevelUDP<<8 | 1
	StackPortParity      StackKind = LevelUDP<<8 | 2
)

// stackKinds lists the known stack options in the order the codec writes
// echoes (ascending level and code).
var stackKinds = [...]StackKind{
	StackTOS, StackHappyEyeballs, StackTTL, StackNoFragmentation,
	StackTFO, StackMPTCP, StackBacklog, StackUDPError, StackPortParity,
}

// Level returns the option's level.
func (k StackKind) Level() uint8 { return uint8(k >> 8) }

// Code returns the option's code within its level.
func (k StackKind) Code() uint8 { return uint8(k) }

// Known reports whether the codec interprets this kind.
func (k StackKind) Known() bool { return k.slot() >= 0 }

// slot is the kind's index in stackKinds, or -1.
func (k StackKind) slot() int {
	for i, s := range stackKinds {
		if s == k {
			return i
		}
	}
	return -1
}

// bothLegs reports whether the kind may be requested on legs 1, 2 and 3;
// every other known kind is defined for the proxy–remote leg only.
func (k StackKind) bothLegs() bool {
	return k == StackTOS || k == StackTTL || k == StackNoFragmentation
}

// String returns the option's name.
func (k StackKind) String() string {
	switch k {
	case StackTOS:
		return "tos"
	case StackHappyEyeballs:
		return "happy-eyeballs"
	case StackTTL:
		return "ttl"
	case StackNoFragmentation:
		return "no-fragmentation"
	case StackTFO:
		return "tfo"
	case StackMPTCP:
		return "mptcp"
	case StackBacklog:
		return "listen-backlog"
	case StackUDPError:
		return "udp-error"
	case StackPortParity:
		return "port-parity"
	}
	return "unknown"
}

// Availability is the yes/no byte of the Happy Eyeballs, No Fragmentation,
// MPTCP and UDP Error options.
type Availability uint8

// Availability values (-11). From the client: wanted or not; from the proxy:
// done/available/enforced or not.
const (
	AvailNo  Availability = 1
	AvailYes Availability = 2
)

// usesAvail reports whether the kind's payload is an Availability byte.
func (k StackKind) usesAvail() bool {
	return k == StackHappyEyeballs || k == StackNoFragmentation || k == StackMPTCP || k == StackUDPError
}

// noAvailIn10 reports whether the kind has no Availability byte in -10
// (payload `00 00`, presence means yes).
func (k StackKind) noAvailIn10() bool {
	return k == StackHappyEyeballs || k == StackNoFragmentation || k == StackUDPError
}

// StackOption is one stack option (kind 1), 8 bytes on the wire. Which value
// field is used depends on Kind:
//
//	TOS, TTL                       Value (0..255)
//	TFO                            Value: maximum SYN payload, 0 = any
//	Listen Backlog                 Value
//	Happy Eyeballs, No Fragmentation,
//	MPTCP, UDP Error               Avail
//	Port Parity                    PortParity
//
// A Raw option is kept only so that it survives re-encoding: its level and
// code are unknown, its leg is 0, or its payload is not valid for its kind in
// the Dialect it was parsed with. Value then holds bytes 6–7 as they were,
// and the mappings ignore it.
type StackOption struct {
	Leg        Leg
	Kind       StackKind
	Value      uint16
	Avail      Availability
	PortParity gateway.PortParity
	Raw        bool
}

// parseStack decodes bytes 4–7 of an 8-byte stack option.
func parseStack(p []byte, d Dialect) StackOption {
	o := StackOption{
		Leg:  Leg(p[0] >> 6),
		Kind: StackKind(p[0]&0x3f)<<8 | StackKind(p[1]),
	}
	raw := uint16(p[2])<<8 | uint16(p[3])
	if o.Leg == 0 || !o.Kind.Known() {
		o.Value, o.Raw = raw, true
		return o
	}
	switch {
	case o.Kind == StackTOS || o.Kind == StackTTL:
		o.Value = uint16(p[2])
	case o.Kind == StackTFO || o.Kind == StackBacklog:
		o.Value = raw
	case d == Draft10 && o.Kind.noAvailIn10():
		o.Avail = AvailYes // presence is the request (or, from a proxy, "done")
	case o.Kind.usesAvail():
		if a := Availability(p[2]); a == AvailNo || a == AvailYes {
			o.Avail = a
		} else {
			o.Value, o.Raw = raw, true
		}
	case o.Kind == StackPortParity:
		pp, ok := parseParity(p[2], p[3], d)
		if !ok {
			o.Value, o.Raw = raw, true
		}
		o.PortParity = pp
	}
	return o
}

func parseParity(parity, reserve byte, d Dialect) (gateway.PortParity, bool) {
	var pp gateway.PortParity
	switch reserve {
	case 0:
	case 1:
		pp.Reserve = true
	default:
		return gateway.PortParity{}, false
	}
	if d == Draft10 {
		switch parity {
		case 0:
			pp.Parity = gateway.ParityEven
		case 1:
			pp.Parity = gateway.ParityOdd
		default:
			return gateway.PortParity{}, false
		}
		return pp, true
	}
	switch parity {
	case 0:
		pp.Parity = gateway.ParityNone
	case 1:
		pp.Parity = gateway.ParityEven
	case 2:
		pp.Parity = gateway.ParityOdd
	default:
		return gateway.PortParity{}, false
	}
	return pp, true
}

// putStack writes the whole 8-byte option into b.
func putStack(b []byte, o *StackOption, d Dialect) error {
	b[0], b[1], b[2], b[3] = 0, byte(KindStack), 0, 8
	if o.Leg > LegBoth || o.Kind.Level() > 0x3f {
		return ErrValue
	}
	b[4] = byte(o.Leg)<<6 | o.Kind.Level()
	b[5] = o.Kind.Code()
	if o.Raw {
		b[6], b[7] = byte(o.Value>>8), byte(o.Value)
		return nil
	}
	if o.Leg == 0 || !o.Kind.Known() {
		return ErrValue
	}
	b[6], b[7] = 0, 0
	switch {
	case o.Kind == StackTOS || o.Kind == StackTTL:
		if o.Value > 0xff {
			return ErrValue
		}
		b[6] = byte(o.Value)
	case o.Kind == StackTFO || o.Kind == StackBacklog:
		b[6], b[7] = byte(o.Value>>8), byte(o.Value)
	case d == Draft10 && o.Kind.noAvailIn10():
		if o.Avail != AvailYes {
			return ErrValue // -10 cannot say "no": leave the option out
		}
	case o.Kind.usesAvail():
		if o.Avail != AvailNo && o.Avail != AvailYes {
			return ErrValue
		}
		b[6] = byte(o.Avail)
	case o.Kind == StackPortParity:
		p, ok := putParity(o.PortParity.Parity, d)
		if !ok {
			return ErrValue
		}
		b[6] = p
		if o.PortParity.Reserve {
			b[7] = 1
		}
	}
	return nil
}

func putParity(p gateway.Parity, d Dialect) (byte, bool) {
	if d == Draft10 {
		switch p {
		case gateway.ParityEven:
			return 0, true
		case gateway.ParityOdd:
			return 1, true
		}
		return 0, false // -10 has no "no preference"
	}
	switch p {
	case gateway.ParityNone:
		return 0, true
	case gateway.ParityEven:
		return 1, true
	case gateway.ParityOdd:
		return 2, true
	}
	return 0, false
}

// dupKey identifies a known stack option on one leg, for duplicate checks;
// it is below 64.
func (o *StackOption) dupKey() (uint, bool) {
	s := o.Kind.slot()
	if o.Raw || s < 0 {
		return 0, false
	}
	return uint(o.Leg)*16 + uint(s), true
}

const msgStack = "stack option"

// ParseStackOption decodes one whole stack option (kind 1, Length 8) at the
// start of b. The message decoders keep an option they cannot interpret as
// Raw and ignore it; this function says why instead: ErrBadLength for another
// kind or Length, ErrValue for leg 0 or a known kind whose payload is invalid
// in d (for example the Go library's Port Parity Reserve = 2). Unknown levels
// and codes are not errors: they come back Raw.
func ParseStackOption(b []byte, d Dialect) (StackOption, error) {
	if len(b) < 8 {
		return StackOption{}, fieldErr(msgStack, "option", 0, ErrShort)
	}
	if b[0] != 0 || b[1] != byte(KindStack) {
		return StackOption{}, fieldErr(msgStack, "kind", 0, ErrBadLength)
	}
	if b[2] != 0 || b[3] != 8 {
		return StackOption{}, fieldErr(msgStack, "length", 2, ErrBadLength)
	}
	o := parseStack(b[4:8], d)
	switch {
	case o.Leg == 0:
		return o, fieldErr(msgStack, "leg", 4, ErrValue)
	case o.Raw && o.Kind.Known():
		return o, fieldErr(msgStack, o.Kind.String(), 6, ErrValue)
	}
	return o, nil
}

// AppendStackOption appends one 8-byte stack option in dialect d; it fails
// with ErrValue for a value out of range or not expressible in d.
func AppendStackOption(b []byte, o StackOption, d Dialect) ([]byte, error) {
	n := len(b)
	b = append(b, make([]byte, 8)...)
	if err := putStack(b[n:], &o, d); err != nil {
		return b[:n], encodeErr(msgStack, o.Kind.String(), err)
	}
	return b, nil
}
