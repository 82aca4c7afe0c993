package socks6

import (
	"github.com/sixgate/sixgate/gateway"
)

// Legs are the stack options of one Request in the neutral model, split per
// leg: what the frontend applies on the client's connection (Client) and what
// the backend applies towards the destination (Remote).
//
// Server side: SplitStack fills Legs from a Request; the frontend hands
// Remote to the backend, stores the backend's outcomes back into Remote,
// records its own outcomes in Client, and Echo builds the Operation Reply's
// stack options. Client side (an upstream backend): fill Remote (and Client)
// with requested options, send RequestOptions, and ApplyReply records the
// proxy's answer as outcomes.
type Legs struct {
	Client gateway.StackOptions
	Remote gateway.StackOptions
	// Both records the options that were requested on leg 3 (both legs) by
	// one option; Echo answers them on leg 3.
	Both BothLegs
}

// BothLegs flags the options, among those defined on every leg, that were
// requested on leg 3.
type BothLegs struct {
	TOS, TTL, DF bool
}

func (b *BothLegs) flag(k StackKind) *bool {
	switch k {
	case StackTOS:
		return &b.TOS
	case StackTTL:
		return &b.TTL
	case StackNoFragmentation:
		return &b.DF
	}
	return nil
}

// stackField binds one StackKind to its gateway.StackOptions field.
type stackField struct {
	kind StackKind
	// outcome and form: the option's outcome and its value in wire form
	// (for Declined, the forced declined value).
	form func(s *gateway.StackOptions) (gateway.Outcome, StackOption, bool)
	// want records o as requested unless the field is already wanted.
	want func(s *gateway.StackOptions, o *StackOption) bool
	// settle records a proxy's echo o for a pending field.
	settle func(s *gateway.StackOptions, o *StackOption)
	// unsupport marks a pending field unsupported.
	unsupport func(s *gateway.StackOptions)
}

func field[T comparable](kind StackKind, get func(*gateway.StackOptions) *gateway.Opt[T],
	enc func(T, *StackOption) bool, dec func(*StackOption) T, declined func(T) T, isDecline func(req, got T) bool) stackField {
	return stackField{
		kind: kind,
		form: func(s *gateway.StackOptions) (gateway.Outcome, StackOption, bool) {
			o := get(s)
			so := StackOption{Kind: kind}
			v := o.Value
			if o.Outcome == gateway.Declined {
				v = declined(v)
			}
			ok := enc(v, &so)
			return o.Outcome, so, ok
		},
		want: func(s *gateway.StackOptions, so *StackOption) bool {
			o := get(s)
			if o.Wanted() {
				return false // the first request for a leg wins
			}
			*o = gateway.Want(dec(so))
			return true
		},
		settle: func(s *gateway.StackOptions, so *StackOption) {
			o := get(s)
			if !o.Pending() {
				return
			}
			got := dec(so)
			if isDecline(o.Value, got) {
				o.Decline(got)
			} else {
				o.Apply(got)
			}
		},
		unsupport: func(s *gateway.StackOptions) {
			if o := get(s); o.Pending() {
				o.Unsupport()
			}
		},
	}
}

func encByte(v uint8, o *StackOption) bool     { o.Value = uint16(v); return true }
func decByte(o *StackOption) uint8             { return uint8(o.Value) }
func encU16(v uint16, o *StackOption) bool     { o.Value = v; return true }
func decU16(o *StackOption) uint16             { return o.Value }
func same[T any](v T) T                        { return v }
func never[T any](T, T) bool                   { return false }
func decAvail(o *StackOption) bool             { return o.Avail == AvailYes }
func declinedBool(bool) bool                   { return false }
func declinedAvail(req, got bool) bool         { return req && !got }
func declinedBacklog(uint16) uint16            { return 0 }
func declinedBacklogEcho(req, got uint16) bool { return req > 0 && got == 0 }
func decParity(o *StackOption) gateway.PortParity {
	return o.PortParity
}

func encAvail(v bool, o *StackOption) bool {
	o.Avail = AvailNo
	if v {
		o.Avail = AvailYes
	}
	return true
}

func encParity(v gateway.PortParity, o *StackOption) bool {
	o.PortParity = v
	return true
}

func declinedParity(v gateway.PortParity) gateway.PortParity {
	v.Reserve = false
	return v
}

func declinedParityEcho(req, got gateway.PortParity) bool {
	return (req.Reserve && !got.Reserve) || (req.Parity != gateway.ParityNone && got.Parity != req.Parity)
}

// TFO has no way to say "declined": a declined TFO is left out of the reply.
func encTFO(v uint16, o *StackOption) bool { o.Value = v; return true }

var stackFields = [...]stackField{
	field(StackTOS, func(s *gateway.StackOptions) *gateway.Opt[uint8] { return &s.TOS }, encByte, decByte, same[uint8], never[uint8]),
	field(StackHappyEyeballs, func(s *gateway.StackOptions) *gateway.Opt[bool] { return &s.HappyEyeballs }, encAvail, decAvail, declinedBool, declinedAvail),
	field(StackTTL, func(s *gateway.StackOptions) *gateway.Opt[uint8] { return &s.TTL }, encByte, decByte, same[uint8], never[uint8]),
	field(StackNoFragmentation, func(s *gateway.StackOptions) *gateway.Opt[bool] { return &s.DF }, encAvail, decAvail, declinedBool, declinedAvail),
	field(StackTFO, func(s *gateway.StackOptions) *gateway.Opt[uint16] { return &s.TFO }, encTFO, decU16, same[uint16], never[uint16]),
	field(StackMPTCP, func(s *gateway.StackOptions) *gateway.Opt[bool] { return &s.MPTCP }, encAvail, decAvail, declinedBool, declinedAvail),
	field(StackBacklog, func(s *gateway.StackOptions) *gateway.Opt[uint16] { return &s.Backlog }, encU16, decU16, declinedBacklog, declinedBacklogEcho),
	field(StackUDPError, func(s *gateway.StackOptions) *gateway.Opt[bool] { return &s.UDPError }, encAvail, decAvail, declinedBool, declinedAvail),
	field(StackPortParity, func(s *gateway.StackOptions) *gateway.Opt[gateway.PortParity] { return &s.PortParity }, encParity, decParity, declinedParity, declinedParityEcho),
}

func fieldFor(k StackKind) *stackField {
	for i := range stackFields {
		if stackFields[i].kind == k {
			return &stackFields[i]
		}
	}
	return nil
}

// expressible reports whether the option can be written in dialect d: -10
// cannot say "no" for Happy Eyeballs, No Fragmentation and UDP Error, nor "no
// preference" for Port Parity.
func expressible(o *StackOption, d Dialect) bool {
	if d != Draft10 {
		return true
	}
	switch {
	case o.Kind.noAvailIn10():
		return o.Avail == AvailYes
	case o.Kind == StackPortParity:
		return o.PortParity.Parity != gateway.ParityNone
	}
	return true
}

// SplitStack splits a Request's stack options per leg into requested
// neutral options. It applies the rules a proxy follows before acting:
//   - the first option for a leg and kind wins (leg 3 counts for both legs);
//   - raw options (unknown, leg 0, invalid payload) are ignored;
//   - options defined for the proxy–remote leg only (Happy Eyeballs, TFO,
//     MPTCP, Listen Backlog, UDP Error, Port Parity) are ignored on any
//     other leg;
//   - Happy Eyeballs is ignored unless the Request is a CONNECT to a domain
//     name (§5.3: ignored silently and not echoed);
//   - Port Parity with an explicit port goes through EffectivePortParity.
func SplitStack(req *Request, d Dialect) Legs {
	var l Legs
	for i := range req.Options.Stack {
		so := req.Options.Stack[i]
		f := fieldFor(so.Kind)
		if so.Raw || f == nil {
			continue
		}
		if so.Kind == StackHappyEyeballs && (req.Command != CmdConnect || !req.Addr.IsName()) {
			continue
		}
		if so.Kind == StackPortParity {
			pp, ok := EffectivePortParity(so.PortParity, req.Addr.Port, d)
			if !ok {
				continue
			}
			so.PortParity = pp
		}
		switch {
		case so.Leg == LegRemote:
			f.want(&l.Remote, &so)
		case !so.Kind.bothLegs():
			// Defined for the proxy–remote leg only.
		case so.Leg == LegClient:
			f.want(&l.Client, &so)
		case so.Leg == LegBoth:
			c := f.want(&l.Client, &so)
			r := f.want(&l.Remote, &so)
			if c && r {
				*l.Both.flag(so.Kind) = true
			}
		}
	}
	return l
}

// Echo returns the Operation Reply's stack options for the outcomes in l
// (§5.4): for every option Applied or Declined, one option with the value in
// effect — Declined is written as Availability 1, Backlog 0 or Reserve 0
// (and a declined TFO, which has no such value, is left out). NotRequested,
// Requested (never handled) and Unsupported options are absent ("missing =
// unsupported"). An option requested on leg 3 is echoed on leg 3 when both
// legs have the same value in effect, and otherwise once per leg with that
// leg's value. Options defined for the proxy–remote leg only are echoed from
// Remote only. In Draft10 an option -10 cannot express (Availability "no",
// Port Parity "no preference") is left out: -10 could not tell declined from
// unsupported.
func (l *Legs) Echo(d Dialect) []StackOption {
	var out []StackOption
	for i := range stackFields {
		f := &stackFields[i]
		echo := func(s *gateway.StackOptions) (StackOption, bool) {
			oc, so, ok := f.form(s)
			if !ok || (oc != gateway.Applied && oc != gateway.Declined) {
				return so, false
			}
			if oc == gateway.Declined && f.kind == StackTFO {
				return so, false
			}
			return so, expressible(&so, d)
		}
		r, rok := echo(&l.Remote)
		if !f.kind.bothLegs() {
			if rok {
				r.Leg = LegRemote
				out = append(out, r)
			}
			continue
		}
		c, cok := echo(&l.Client)
		if both := l.Both.flag(f.kind); *both && cok && rok && c == r {
			c.Leg = LegBoth
			out = append(out, c)
			continue
		}
		if cok {
			c.Leg = LegClient
			out = append(out, c)
		}
		if rok {
			r.Leg = LegRemote
			out = append(out, r)
		}
	}
	return out
}

// RequestOptions returns the stack options a client sends for the options
// Requested in l: one on leg 3 when both legs request the same value of an
// option defined on every leg, otherwise one per leg. Options defined for
// the proxy–remote leg only are taken from Remote only. In Draft10 a request
// -10 cannot express (Availability "no", Port Parity "no preference") is
// left out, which in -10 means the same thing.
func (l *Legs) RequestOptions(d Dialect) []StackOption {
	var out []StackOption
	for i := range stackFields {
		f := &stackFields[i]
		req := func(s *gateway.StackOptions) (StackOption, bool) {
			oc, so, ok := f.form(s)
			return so, ok && oc == gateway.Requested && expressible(&so, d)
		}
		r, rok := req(&l.Remote)
		if !f.kind.bothLegs() {
			if rok {
				r.Leg = LegRemote
				out = append(out, r)
			}
			continue
		}
		c, cok := req(&l.Client)
		if cok && rok && c == r {
			c.Leg = LegBoth
			out = append(out, c)
			continue
		}
		if cok {
			c.Leg = LegClient
			out = append(out, c)
		}
		if rok {
			r.Leg = LegRemote
			out = append(out, r)
		}
	}
	return out
}

// ApplyReply records a proxy's Operation Reply stack options as the outcomes
// of the options Requested in l: an echo on the option's leg (or on leg 3)
// gives Applied with the value in effect, or Declined when that value says
// no (Availability 1 for a "yes" request, Backlog 0 for a non-zero request,
// Reserve 0 for a reserve request, another parity); no echo gives
// Unsupported. Unsolicited options are ignored. The options were decoded
// with the peer's Dialect already, so none is needed here.
func (l *Legs) ApplyReply(stack []StackOption) {
	for i := range stackFields {
		f := &stackFields[i]
		for _, leg := range [...]Leg{LegClient, LegRemote} {
			s := &l.Remote
			if leg == LegClient {
				if !f.kind.bothLegs() {
					continue
				}
				s = &l.Client
			}
			found := false
			for j := range stack {
				so := &stack[j]
				if !so.Raw && so.Kind == f.kind && (so.Leg == leg || so.Leg == LegBoth) {
					f.settle(s, so)
					found = true
					break
				}
			}
			if !found {
				f.unsupport(s)
			}
		}
	}
}

// EffectivePortParity applies the explicit-port rule to a Port Parity
// request for port: with port 0 the request stands; with an explicit port,
// -11 ignores the parity only (the counterpart of the named port may still be
// reserved) and -10 ignores the whole option (ok is false).
func EffectivePortParity(pp gateway.PortParity, port uint16, d Dialect) (gateway.PortParity, bool) {
	if port == 0 {
		return pp, true
	}
	if d == Draft10 {
		return gateway.PortParity{}, false
	}
	pp.Parity = gateway.ParityNone
	return pp, true
}

// MPTCPByDefault reports whether a proxy may use MPTCP for a Request of
// command cmd that carries no MPTCP option: in -11 a missing option means "no
// MPTCP" for CONNECT only, in -10 for every command.
func MPTCPByDefault(cmd Command, d Dialect) bool {
	return d != Draft10 && cmd != CmdConnect
}
