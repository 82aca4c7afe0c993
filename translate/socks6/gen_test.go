package socks6

import (
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/sixgate/sixgate/gateway"
)

// Generators of valid messages for the round-trip property tests and the
// fuzz seeds.

type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, seed^0x5eed))} }

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *gen) name() string {
	target := 1 + g.r.IntN(255)
	if g.r.IntN(2) == 0 {
		target = 1 + g.r.IntN(20)
	}
	var sb strings.Builder
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const chars = letters + "0123456789-"
	for sb.Len() < target {
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteByte(letters[g.r.IntN(len(letters))])
		for l := g.r.IntN(12); l > 0 && sb.Len() < target; l-- {
			sb.WriteByte(chars[g.r.IntN(len(chars))])
		}
	}
	s := sb.String()
	if len(s) > target {
		s = s[:target]
	}
	s = strings.TrimRight(s, ".")
	if s == "" {
		s = "a"
	}
	return s
}

func (g *gen) addr(names bool) gateway.Addr {
	port := uint16(g.r.Uint32())
	switch g.r.IntN(4) {
	case 0:
		return gateway.Addr{IP: netip.AddrFrom4([4]byte(g.bytes(4))), Port: port}
	case 1:
		return gateway.Addr{IP: netip.AddrFrom16([16]byte(g.bytes(16))), Port: port}
	case 2:
		if names {
			a, err := gateway.NameAddr(g.name(), port)
			if err == nil {
				return a
			}
		}
	}
	return gateway.Addr{IP: netip.IPv4Unspecified(), Port: port}
}

func (g *gen) ip() netip.Addr {
	if g.r.IntN(2) == 0 {
		return netip.AddrFrom4([4]byte(g.bytes(4)))
	}
	return netip.AddrFrom16([16]byte(g.bytes(16))).Unmap()
}

func (g *gen) stack(d Dialect) StackOption {
	for {
		o := StackOption{Leg: Leg(1 + g.r.IntN(3)), Kind: stackKinds[g.r.IntN(len(stackKinds))]}
		switch {
		case g.r.IntN(8) == 0:
			o = StackOption{Leg: Leg(g.r.IntN(4)), Kind: StackKind(g.r.IntN(64))<<8 | StackKind(g.r.IntN(256)), Value: uint16(g.r.Uint32()), Raw: true}
			if o.Leg != 0 && o.Kind.Known() {
				continue
			}
		case o.Kind == StackTOS || o.Kind == StackTTL:
			o.Value = uint16(g.r.IntN(256))
		case o.Kind == StackTFO || o.Kind == StackBacklog:
			o.Value = uint16(g.r.Uint32())
		case o.Kind.usesAvail():
			o.Avail = Availability(1 + g.r.IntN(2))
		case o.Kind == StackPortParity:
			o.PortParity = gateway.PortParity{Parity: gateway.Parity(g.r.IntN(3)), Reserve: g.r.IntN(2) == 0}
		}
		if !o.Raw && !expressible(&o, d) {
			continue
		}
		return o
	}
}

func (g *gen) options(d Dialect, request bool) Options {
	var o Options
	p := func() bool { return g.r.IntN(3) == 0 }
	var seen uint64
	for i := g.r.IntN(6); i > 0; i-- {
		so := g.stack(d)
		if k, ok := so.dupKey(); ok {
			if seen&(1<<k) != 0 {
				continue
			}
			seen |= 1 << k
		}
		o.Stack = append(o.Stack, so)
	}
	if p() {
		a := &Advertisement{InitialDataLen: uint16(g.r.IntN(MaxInitialData + 1))}
		for i := g.r.IntN(5); i > 0; i-- {
			a.Methods = append(a.Methods, Method(1+g.r.IntN(255)))
		}
		o.Advertisement = a
	}
	if p() {
		m := Method(g.r.IntN(256))
		o.Selection = &m
	}
	for i := g.r.IntN(3); i > 0; i-- {
		m := Method(g.r.IntN(256))
		if _, dup := o.AuthDataFor(m); dup {
			continue
		}
		data := g.bytes(g.r.IntN(40))
		if m == MethodUserPass && request {
			data, _ = AppendUserPassRequest(nil, UserPassRequest{Username: g.name(), Password: string(g.bytes(g.r.IntN(20)))})
		}
		o.AuthData = append(o.AuthData, AuthData{Method: m, Data: data})
	}
	o.SessionRequest = p()
	if p() {
		o.SessionID = g.bytes(4 * (1 + g.r.IntN(4)))
	}
	o.SessionOK, o.SessionInvalid, o.SessionTeardown = p(), p(), p()
	if p() {
		s := uint32(1 + g.r.IntN(MaxWindowSize))
		o.WindowRequest = &s
	}
	if p() {
		o.Window = &Window{Base: g.r.Uint32(), Size: uint32(1 + g.r.IntN(MaxWindowSize))}
	}
	if p() {
		t := g.r.Uint32()
		o.Expenditure = &t
	}
	o.IdempotenceAccepted, o.IdempotenceRejected = p(), p()
	for i := g.r.IntN(3); i > 0; i-- {
		kinds := []OptionKind{0, 16, 17, 18, 0x0100, 0xfc00, 0xfd10, 0xfde8, 0xffff}
		o.Other = appendRaw(o.Other, kinds[g.r.IntN(len(kinds))], g.bytes(4*g.r.IntN(5)))
	}
	return o
}

func (g *gen) dialect() Dialect { return Dialect(g.r.IntN(2)) }

func (g *gen) request(d Dialect) Request {
	return Request{Command: Command(g.r.IntN(6)), Addr: g.addr(true), Options: g.options(d, true)}
}

func (g *gen) authReply(d Dialect) AuthReply {
	return AuthReply{Type: AuthType(g.r.IntN(3)), Options: g.options(d, false)}
}

func (g *gen) opReply(d Dialect) OpReply {
	return OpReply{Code: ReplyCode(g.r.IntN(11)), Bind: g.addr(true), Options: g.options(d, false)}
}

func (g *gen) udp() UDPMessage {
	m := UDPMessage{Type: UDPType(1 + g.r.IntN(4)), Assoc: AssocID(g.bytes(8))}
	switch m.Type {
	case UDPDatagram:
		m.Addr = g.addr(true)
		n := g.r.IntN(64)
		if g.r.IntN(50) == 0 {
			n = g.r.IntN(MaxUDPMessageLen - MaxDatagramHeaderLen)
		}
		m.Payload = g.bytes(n)
	case UDPError:
		m.Addr = gateway.Addr{IP: g.ip(), Port: uint16(g.r.Uint32())}
		m.Code = ErrorCode(g.r.IntN(6))
		m.Reporter = g.ip()
	}
	return m
}
