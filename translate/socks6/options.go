package socks6

import (
	"encoding/binary"
	"fmt"
)

// OptionKind is the 16-bit Kind of an option.
type OptionKind uint16

// The option kinds of -11 (kinds 16–18 are stale IANA entries; 0xFC00–0xFFFF
// are experimental).
const (
	KindStack                  OptionKind = 1
	KindAuthAdvertisement      OptionKind = 2
	KindAuthSelection          OptionKind = 3
	KindAuthData               OptionKind = 4
	KindSessionRequest         OptionKind = 5
	KindSessionID              OptionKind = 6
	KindSessionUntrusted       OptionKind = 7 // -09 and older; never sent, ignored
	KindSessionOK              OptionKind = 8
	KindSessionInvalid         OptionKind = 9
	KindSessionTeardown        OptionKind = 10
	KindIdempotenceRequest     OptionKind = 11
	KindIdempotenceWindow      OptionKind = 12
	KindIdempotenceExpenditure OptionKind = 13
	KindIdempotenceAccepted    OptionKind = 14
	KindIdempotenceRejected    OptionKind = 15
)

// MaxOptionsLen is the largest Options Length of a message (16 KiB in -10 and
// -11).
const MaxOptionsLen = 16384

// MaxWindowSize is the largest idempotence window size the protocol allows
// (2^31 − 1).
const MaxWindowSize = 1<<31 - 1

// Window is an idempotence window [Base, Base+Size) (kind 12).
type Window struct {
	Base uint32
	Size uint32
}

// Options are the options of a Request, Authentication Reply or Operation
// Reply, by kind.
//
// Duplicates: the decoder keeps the first of any option that may appear once
// (every kind but 1 and 4), the first Authentication Data option per method,
// and the first interpreted stack option per leg and kind; later duplicates are
// dropped. The encoder writes each field once (ErrDuplicate for a repeated
// stack option or method), so it never emits duplicates.
//
// Options of a known kind with a Length or payload the codec does not accept
// (for example a 4-byte Expenditure, or a window size of 0) are ignored and
// dropped, as are Session Untrusted options (kind 7).
//
// The encoder writes the options in ascending kind order, stack options first
// in slice order, and Other last.
//
// Decoding allocates in proportion to the options' size: at most one copy of
// the options region plus 10 bytes per stack option and the fixed-size
// fields.
type Options struct {
	// Stack are the stack options (kind 1).
	Stack []StackOption
	// Advertisement is the Authentication Method Advertisement (kind 2).
	Advertisement *Advertisement
	// Selection is the Authentication Method Selection (kind 3).
	Selection *Method
	// AuthData are the Authentication Data options (kind 4), one per method.
	AuthData []AuthData
	// SessionRequest is kind 5.
	SessionRequest bool
	// SessionID is kind 6; nil if absent. It is at least 4 bytes and a
	// multiple of 4.
	SessionID []byte
	// SessionOK is kind 8.
	SessionOK bool
	// SessionInvalid is kind 9.
	SessionInvalid bool
	// SessionTeardown is kind 10.
	SessionTeardown bool
	// WindowRequest is the Idempotence Request (kind 11): the window size
	// asked for, 1..MaxWindowSize.
	WindowRequest *uint32
	// Window is the Idempotence Window (kind 12).
	Window *Window
	// Expenditure is the token spent by an Idempotence Expenditure (kind 13,
	// Length 8).
	Expenditure *uint32
	// IdempotenceAccepted is kind 14.
	IdempotenceAccepted bool
	// IdempotenceRejected is kind 15.
	IdempotenceRejected bool
	// Other holds, back to back and as they were (header included), the
	// options the codec does not interpret: unknown and experimental kinds,
	// the stale kinds 16–18, and stack options whose Length is not 8. Walk
	// them with WalkOptions. The encoder writes them last; they must be
	// well formed and of none of the kinds above.
	Other []byte
	// Malformed is set by the decoder when an option with a bad Length ended
	// option parsing early (a *FieldError whose Offset is relative to the
	// start of the options); the options before it were kept and the
	// message, delimited by its Options Length, is still valid. The encoder
	// ignores it.
	Malformed error
}

const msgOptions = "options"

// WalkOptions calls fn for each option in b — the options of one message —
// with its kind and data (the bytes after the 4-byte header, a sub-slice of
// b), in order, until fn returns false. An option whose Length is below 4,
// not a multiple of 4, or runs past the end of b ends the walk with a
// *FieldError wrapping ErrBadLength (Offset relative to b); the options
// before it have been delivered.
func WalkOptions(b []byte, fn func(kind OptionKind, data []byte) bool) error {
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return fieldErr(msgOptions, "option header", off, ErrBadLength)
		}
		kind := OptionKind(binary.BigEndian.Uint16(b[off:]))
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 || l%4 != 0 || l > len(b)-off {
			return fieldErr(msgOptions, "option length", off+2, ErrBadLength)
		}
		if !fn(kind, b[off+4:off+l]) {
			return nil
		}
		off += l
	}
	return nil
}

// ParseOptions decodes the options region b of a message (exactly Options
// Length bytes). It fails only if len(b) is not a multiple of 4 or exceeds
// MaxOptionsLen (the message must then be rejected); a malformed option ends
// parsing and is reported in Options.Malformed instead.
func ParseOptions(b []byte, d Dialect) (Options, error) {
	var o Options
	if err := checkOptionsLen(len(b)); err != nil {
		return o, fieldErr(msgOptions, "options length", 0, err)
	}
	o.parse(b, d)
	return o, nil
}

func checkOptionsLen(n int) error {
	if n%4 != 0 {
		return fmt.Errorf("%w: %d is not a multiple of 4", ErrBadLength, n)
	}
	if n > MaxOptionsLen {
		return fmt.Errorf("%w: %d is above %d", ErrBadLength, n, MaxOptionsLen)
	}
	return nil
}

func (o *Options) parse(b []byte, d Dialect) {
	if len(b) == 0 {
		return
	}
	// Size the slices exactly first, so that decoding allocates in
	// proportion to the message.
	var nStack, nAuth, nOther int
	_ = WalkOptions(b, func(kind OptionKind, data []byte) bool {
		switch {
		case kind == KindStack && len(data) == 4:
			nStack++
		case kind == KindAuthData:
			nAuth++
		case isOther(kind, data):
			nOther += 4 + len(data)
		}
		return true
	})
	if nStack > 0 {
		o.Stack = make([]StackOption, 0, nStack)
	}
	if nAuth > 0 {
		o.AuthData = make([]AuthData, 0, min(nAuth, 256)) // one per method
	}
	if nOther > 0 {
		o.Other = make([]byte, 0, nOther)
	}
	var seenStack uint64
	o.Malformed = WalkOptions(b, func(kind OptionKind, data []byte) bool {
		o.parseOne(kind, data, d, &seenStack)
		return true
	})
	if len(o.AuthData) == 0 {
		o.AuthData = nil // every one was ignored
	}
}

func (o *Options) parseOne(kind OptionKind, data []byte, d Dialect, seenStack *uint64) {
	u32 := func() uint32 { return binary.BigEndian.Uint32(data) }
	switch kind {
	case KindStack:
		if len(data) != 4 {
			o.Other = appendRaw(o.Other, kind, data)
			return
		}
		so := parseStack(data, d)
		if k, ok := so.dupKey(); ok {
			if *seenStack&(1<<k) != 0 {
				return
			}
			*seenStack |= 1 << k
		}
		o.Stack = append(o.Stack, so)
	case KindAuthAdvertisement:
		if o.Advertisement != nil || len(data) < 4 {
			return
		}
		idl := binary.BigEndian.Uint16(data)
		if idl > MaxInitialData {
			return
		}
		a := &Advertisement{InitialDataLen: idl}
		n := 0
		for _, m := range data[2:] {
			if m != 0 {
				n++
			}
		}
		if n > 0 {
			a.Methods = make([]Method, 0, n)
			for _, m := range data[2:] {
				if m != 0 {
					a.Methods = append(a.Methods, Method(m))
				}
			}
		}
		o.Advertisement = a
	case KindAuthSelection:
		if o.Selection != nil || len(data) != 4 {
			return
		}
		m := Method(data[0])
		o.Selection = &m
	case KindAuthData:
		if len(data) < 4 {
			return
		}
		if _, dup := o.AuthDataFor(Method(data[0])); dup {
			return
		}
		o.AuthData = append(o.AuthData, AuthData{Method: Method(data[0]), Data: clone(data[1:])})
	case KindSessionRequest:
		if len(data) == 0 {
			o.SessionRequest = true
		}
	case KindSessionID:
		if o.SessionID == nil && len(data) >= 4 {
			o.SessionID = clone(data)
		}
	case KindSessionUntrusted:
		// Removed in -10: ignored.
	case KindSessionOK:
		if len(data) == 0 {
			o.SessionOK = true
		}
	case KindSessionInvalid:
		if len(data) == 0 {
			o.SessionInvalid = true
		}
	case KindSessionTeardown:
		if len(data) == 0 {
			o.SessionTeardown = true
		}
	case KindIdempotenceRequest:
		if o.WindowRequest == nil && len(data) == 4 {
			if s := u32(); s >= 1 && s <= MaxWindowSize {
				o.WindowRequest = &s
			}
		}
	case KindIdempotenceWindow:
		if o.Window == nil && len(data) == 8 {
			w := Window{Base: u32(), Size: binary.BigEndian.Uint32(data[4:])}
			if w.Size >= 1 && w.Size <= MaxWindowSize {
				o.Window = &w
			}
		}
	case KindIdempotenceExpenditure:
		if o.Expenditure == nil && len(data) == 4 {
			t := u32()
			o.Expenditure = &t
		}
	case KindIdempotenceAccepted:
		if len(data) == 0 {
			o.IdempotenceAccepted = true
		}
	case KindIdempotenceRejected:
		if len(data) == 0 {
			o.IdempotenceRejected = true
		}
	default:
		o.Other = appendRaw(o.Other, kind, data)
	}
}

// isOther reports whether an option goes to Options.Other.
func isOther(kind OptionKind, data []byte) bool {
	return kind == 0 || kind > KindIdempotenceRejected || (kind == KindStack && len(data) != 4)
}

func appendRaw(b []byte, kind OptionKind, data []byte) []byte {
	return append(appendHeader(b, kind, 4+len(data)), data...)
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// AppendOptions appends the encoded options to b. It fails with ErrTooLong if
// they exceed MaxOptionsLen, ErrDuplicate for a repeated stack option (same
// leg and kind) or Authentication Data method, and ErrValue for a value the
// Dialect cannot express or out of range; b is then returned unchanged.
func AppendOptions(b []byte, o *Options, d Dialect) ([]byte, error) {
	start := len(b)
	b, err := o.append(b, d)
	if err != nil {
		return b[:start], err
	}
	if len(b)-start > MaxOptionsLen {
		return b[:start], encodeErr(msgOptions, "options length", ErrTooLong)
	}
	return b, nil
}

func appendHeader(b []byte, kind OptionKind, length int) []byte {
	return append(b, byte(kind>>8), byte(kind), byte(length>>8), byte(length))
}

func appendU32(b []byte, v uint32) []byte {
	return binary.BigEndian.AppendUint32(b, v)
}

// appendPadded appends an option whose header plus data is 4+len(data)
// (with hdr extra bytes before data), padding to a multiple of 4.
func appendPadded(b []byte, kind OptionKind, pre []byte, data []byte) ([]byte, error) {
	l := 4 + len(pre) + len(data)
	pad := (4 - l%4) % 4
	if l+pad > MaxOptionsLen {
		return b, ErrTooLong
	}
	b = appendHeader(b, kind, l+pad)
	b = append(b, pre...)
	b = append(b, data...)
	for ; pad > 0; pad-- {
		b = append(b, 0)
	}
	return b, nil
}

func (o *Options) append(b []byte, d Dialect) ([]byte, error) {
	var seen uint64
	var err error
	for i := range o.Stack {
		so := &o.Stack[i]
		if k, ok := so.dupKey(); ok {
			if seen&(1<<k) != 0 {
				return b, encodeErr(msgOptions, "stack option "+so.Kind.String(), ErrDuplicate)
			}
			seen |= 1 << k
		}
		n := len(b)
		b = append(b, make([]byte, 8)...)
		if err := putStack(b[n:], so, d); err != nil {
			return b, encodeErr(msgOptions, "stack option "+so.Kind.String(), err)
		}
	}
	if a := o.Advertisement; a != nil {
		if a.InitialDataLen > MaxInitialData {
			return b, encodeErr(msgOptions, "initial data length", ErrValue)
		}
		n := len(b)
		b = appendHeader(b, KindAuthAdvertisement, 0)
		b = binary.BigEndian.AppendUint16(b, a.InitialDataLen)
		for _, m := range a.Methods {
			if m != MethodNone {
				b = append(b, byte(m))
			}
		}
		for (len(b)-n)%4 != 0 {
			b = append(b, 0)
		}
		if len(b)-n > MaxOptionsLen {
			return b, encodeErr(msgOptions, "advertisement", ErrTooLong)
		}
		binary.BigEndian.PutUint16(b[n+2:], uint16(len(b)-n))
	}
	if o.Selection != nil {
		b = appendHeader(b, KindAuthSelection, 8)
		b = append(b, byte(*o.Selection), 0, 0, 0)
	}
	for i, ad := range o.AuthData {
		for _, prev := range o.AuthData[:i] {
			if prev.Method == ad.Method {
				return b, encodeErr(msgOptions, "authentication data", ErrDuplicate)
			}
		}
		if b, err = appendPadded(b, KindAuthData, []byte{byte(ad.Method)}, ad.Data); err != nil {
			return b, encodeErr(msgOptions, "authentication data", err)
		}
	}
	if o.SessionRequest {
		b = appendHeader(b, KindSessionRequest, 4)
	}
	if o.SessionID != nil {
		if len(o.SessionID) < 4 || len(o.SessionID)%4 != 0 {
			return b, encodeErr(msgOptions, "session id", ErrValue)
		}
		if b, err = appendPadded(b, KindSessionID, nil, o.SessionID); err != nil {
			return b, encodeErr(msgOptions, "session id", err)
		}
	}
	if o.SessionOK {
		b = appendHeader(b, KindSessionOK, 4)
	}
	if o.SessionInvalid {
		b = appendHeader(b, KindSessionInvalid, 4)
	}
	if o.SessionTeardown {
		b = appendHeader(b, KindSessionTeardown, 4)
	}
	if o.WindowRequest != nil {
		if s := *o.WindowRequest; s < 1 || s > MaxWindowSize {
			return b, encodeErr(msgOptions, "idempotence request", ErrValue)
		}
		b = appendU32(appendHeader(b, KindIdempotenceRequest, 8), *o.WindowRequest)
	}
	if w := o.Window; w != nil {
		if w.Size < 1 || w.Size > MaxWindowSize {
			return b, encodeErr(msgOptions, "idempotence window", ErrValue)
		}
		b = appendU32(appendU32(appendHeader(b, KindIdempotenceWindow, 12), w.Base), w.Size)
	}
	if o.Expenditure != nil {
		b = appendU32(appendHeader(b, KindIdempotenceExpenditure, 8), *o.Expenditure)
	}
	if o.IdempotenceAccepted {
		b = appendHeader(b, KindIdempotenceAccepted, 4)
	}
	if o.IdempotenceRejected {
		b = appendHeader(b, KindIdempotenceRejected, 4)
	}
	var bad error
	if err := WalkOptions(o.Other, func(kind OptionKind, data []byte) bool {
		if !isOther(kind, data) {
			bad = fmt.Errorf("%w: kind %d belongs in its own field", ErrValue, kind)
			return false
		}
		return true
	}); err != nil {
		return b, encodeErr(msgOptions, "other options", err)
	}
	if bad != nil {
		return b, encodeErr(msgOptions, "other options", bad)
	}
	if len(o.Other) > MaxOptionsLen {
		return b, encodeErr(msgOptions, "other options", ErrTooLong)
	}
	return append(b, o.Other...), nil
}
