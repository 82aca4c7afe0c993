package socks6

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func TestOptionsLengthRules(t *testing.T) {
	// Options Length not a multiple of 4 or above the cap rejects the
	// message.
	for _, h := range []string{
		"0601000201bb0001c0000201 0000",
		"0601400401bb0001c0000201",
	} {
		_, _, err := ParseRequest(hx(t, h), Draft11)
		var fe *FieldError
		if !errors.Is(err, ErrBadLength) || !errors.As(err, &fe) || fe.Field != "options length" || fe.Offset != 2 {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := ParseOptions(make([]byte, 6), Draft11); !errors.Is(err, ErrBadLength) {
		t.Errorf("ParseOptions(6 bytes): %v", err)
	}
	if _, err := ParseOptions(make([]byte, MaxOptionsLen+4), Draft11); !errors.Is(err, ErrBadLength) {
		t.Errorf("ParseOptions(16388 bytes): %v", err)
	}

	// A malformed option ends option parsing; the options before it are
	// kept and the message stays delimited by Options Length.
	for _, bad := range []string{
		"00050002 00000000", // Length 2
		"00050006 00000000", // Length 6
		"0005000c 00000000", // runs past the end
		"00050000 00000000", // Length 0
	} {
		opts := "00080004" + bad
		msg := hx(t, "0600 000c 0000 0001 00000000"+opts+"ffff")
		r, n, err := ParseRequest(msg, Draft11)
		if err != nil || n != len(msg)-2 {
			t.Fatalf("%s: n=%d err=%v", bad, n, err)
		}
		if !r.Options.SessionOK || r.Options.SessionRequest || !errors.Is(r.Options.Malformed, ErrBadLength) {
			t.Errorf("%s: %+v", bad, r.Options)
		}
		var fe *FieldError
		if !errors.As(r.Options.Malformed, &fe) || fe.Offset != 6 {
			t.Errorf("%s: malformed = %v", bad, r.Options.Malformed)
		}
	}
}

func TestWalkOptions(t *testing.T) {
	b := hx(t, "00050004 00080004 ff000008 01020304")
	var kinds []OptionKind
	if err := WalkOptions(b, func(k OptionKind, d []byte) bool {
		kinds = append(kinds, k)
		return k != KindSessionOK
	}); err != nil || !reflect.DeepEqual(kinds, []OptionKind{KindSessionRequest, KindSessionOK}) {
		t.Errorf("kinds %v err %v", kinds, err)
	}
	kinds = nil
	if err := WalkOptions(b, func(k OptionKind, d []byte) bool {
		kinds = append(kinds, k)
		if k == 0xff00 && !bytes.Equal(d, []byte{1, 2, 3, 4}) {
			t.Errorf("data %x", d)
		}
		return true
	}); err != nil || len(kinds) != 3 {
		t.Errorf("kinds %v err %v", kinds, err)
	}
}

func TestOptionsIgnoredAndUnknown(t *testing.T) {
	b := hx(t, ""+
		"00070004"+ // Session Untrusted: ignored
		"000d0004"+ // Expenditure with Length 4: ignored
		"000b000800000000"+ // Idempotence Request for 0 tokens: ignored
		"000c000c0000000080000000"+ // Window of 2^31: ignored
		"00060004"+ // Session ID without an ID: ignored
		"0010000401020304"[:8]+ // stale kind 16: kept raw
		"fd10000cabcdef0012345678"+ // experimental: kept raw
		"00010004"+ // a stack option without payload: kept raw
		"0001000c8103400000000000"+ // a 12-byte stack option: kept raw
		"00010008 010340 00"+ // leg 0: Raw
		"00010008 8109 1234"+ // unknown IP code: Raw
		"00010008 8102 0300") // Availability 3: Raw
	o, err := ParseOptions(b, Draft11)
	if err != nil || o.Malformed != nil {
		t.Fatalf("%v %v", err, o.Malformed)
	}
	want := Options{
		Stack: []StackOption{
			{Leg: 0, Kind: StackTTL, Value: 0x4000, Raw: true},
			{Leg: LegRemote, Kind: LevelIP<<8 | 9, Value: 0x1234, Raw: true},
			{Leg: LegRemote, Kind: StackHappyEyeballs, Value: 0x0300, Raw: true},
		},
		Other: hx(t, "00100004"+"fd10000cabcdef0012345678"+"00010004"+"0001000c8103400000000000"),
	}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got  %+v\nwant %+v", o, want)
	}
	// Everything kept re-encodes as it was (stack options first, Other
	// last).
	enc, err := AppendOptions(nil, &o, Draft11)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := ParseOptions(enc, Draft11)
	if !reflect.DeepEqual(again, want) {
		t.Errorf("re-encoded options decode as %+v", again)
	}
	legs := SplitStack(&Request{Command: CmdConnect, Addr: nameAddr(t, "a.io", 1), Options: o}, Draft11)
	if !legs.Remote.Empty() || !legs.Client.Empty() {
		t.Errorf("raw stack options must be ignored: %+v", legs)
	}
}

func TestOptionsDuplicates(t *testing.T) {
	b := hx(t, ""+
		"0001000881034000"+ // TTL 64 leg 2
		"0001000881032000"+ // TTL 32 leg 2: duplicate, dropped
		"0001000841032000"+ // TTL 32 leg 1: another leg, kept
		"0004000802010000"+ // auth data method 2
		"0004000802010100"+ // auth data method 2 again: dropped
		"0006000c0102030405060708"+
		"0006000c1111111111111111"+ // second Session ID: dropped
		"000d000800000001"+
		"000d000800000002"+ // second Expenditure: dropped
		"000300080200000000030008ff000000") // two Selections
	o, err := ParseOptions(b, Draft11)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Stack: []StackOption{
			{Leg: LegRemote, Kind: StackTTL, Value: 64},
			{Leg: LegClient, Kind: StackTTL, Value: 32},
		},
		Selection:   ptr(MethodUserPass),
		AuthData:    []AuthData{{Method: MethodUserPass, Data: hx(t, "010000")}},
		SessionID:   hx(t, "0102030405060708"),
		Expenditure: ptr(uint32(1)),
	}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got  %+v\nwant %+v", o, want)
	}

	// The encoder never emits duplicates.
	dupStack := Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackTTL, Value: 1}, {Leg: LegRemote, Kind: StackTTL, Value: 2}}}
	if _, err := AppendOptions(nil, &dupStack, Draft11); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate stack: %v", err)
	}
	dupAuth := Options{AuthData: []AuthData{{Method: 2}, {Method: 2}}}
	if _, err := AppendOptions(nil, &dupAuth, Draft11); !errors.Is(err, ErrDuplicate) {
		t.Errorf("duplicate auth data: %v", err)
	}
}

func TestAdvertisement(t *testing.T) {
	// Three methods: Length 6+3 = 9 → 12; method 0 and padding dropped.
	o := Options{Advertisement: &Advertisement{InitialDataLen: 0, Methods: []Method{MethodNone, 1, 2, 0x80}}}
	b, err := AppendOptions(nil, &o, Draft11)
	if err != nil || !bytes.Equal(b, hx(t, "0002000c 0000 010280 000000")) {
		t.Fatalf("%x %v", b, err)
	}
	got, _ := ParseOptions(b, Draft11)
	if !reflect.DeepEqual(got.Advertisement.Methods, []Method{1, 2, 0x80}) || !got.Advertisement.Has(0x80) || got.Advertisement.Has(3) {
		t.Errorf("%+v", got.Advertisement)
	}
	// Initial Data Length above 2^14: the option is ignored.
	got, _ = ParseOptions(hx(t, "00020008 4001 0200"), Draft11)
	if got.Advertisement != nil {
		t.Errorf("IDL 16385 accepted: %+v", got.Advertisement)
	}
	if _, err := AppendOptions(nil, &Options{Advertisement: &Advertisement{InitialDataLen: MaxInitialData + 1}}, Draft11); !errors.Is(err, ErrValue) {
		t.Errorf("encode IDL 16385: %v", err)
	}
	// Initial data is read for CONNECT only.
	r := Request{Command: CmdBind, Options: Options{Advertisement: &Advertisement{InitialDataLen: 5}}}
	if r.InitialDataLen() != 0 {
		t.Error("BIND has no initial data")
	}
}

func TestOptionsEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		d    Dialect
		want error
	}{
		{"session id of 6", Options{SessionID: make([]byte, 6)}, Draft11, ErrValue},
		{"empty session id", Options{SessionID: []byte{}}, Draft11, ErrValue},
		{"window 0", Options{Window: &Window{Size: 0}}, Draft11, ErrValue},
		{"window request 2^31", Options{WindowRequest: ptr(uint32(1 << 31))}, Draft11, ErrValue},
		{"raw known kind", Options{Other: rawOpt(KindSessionOK, 0)}, Draft11, ErrValue},
		{"raw 8-byte stack", Options{Other: rawOpt(KindStack, 4)}, Draft11, ErrValue},
		{"malformed raw", Options{Other: []byte{0, 16, 0, 3}}, Draft11, ErrBadLength},
		{"too long", Options{Other: rawOpt(0xfc00, MaxOptionsLen)}, Draft11, ErrTooLong},
		{"too long in sum", Options{Stack: make([]StackOption, 0), Other: append(rawOpt(0xfc00, 9000), rawOpt(0xfc01, 9000)...)}, Draft11, ErrTooLong},
		{"too long with the rest", Options{SessionID: make([]byte, 8), Other: rawOpt(0xfc00, MaxOptionsLen-8)}, Draft11, ErrTooLong},
		{"ttl 256", Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackTTL, Value: 256}}}, Draft11, ErrValue},
		{"leg 0", Options{Stack: []StackOption{{Kind: StackTTL, Value: 1}}}, Draft11, ErrValue},
		{"unknown kind not raw", Options{Stack: []StackOption{{Leg: LegRemote, Kind: 0x0109}}}, Draft11, ErrValue},
		{"availability 0", Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackMPTCP}}}, Draft11, ErrValue},
		{"-10 cannot say no", Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackUDPError, Avail: AvailNo}}}, Draft10, ErrValue},
		{"-10 has no parity none", Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackPortParity}}}, Draft10, ErrValue},
		{"parity 3", Options{Stack: []StackOption{{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: 3}}}}, Draft11, ErrValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := AppendOptions([]byte("x"), &tt.o, tt.d)
			if !errors.Is(err, tt.want) || string(b) != "x" {
				t.Errorf("%x %v, want %v", b, err, tt.want)
			}
		})
	}
	// A message whose options are too long is not written either.
	r := Request{Command: CmdConnect, Options: Options{Other: rawOpt(0xfc00, MaxOptionsLen)}}
	if b, err := AppendRequest(nil, &r, Draft11); err == nil || len(b) != 0 {
		t.Errorf("AppendRequest: %d bytes, %v", len(b), err)
	}
	// Exactly the cap is fine.
	r.Options.Other = rawOpt(0xfc00, MaxOptionsLen-4)
	if b, err := AppendRequest(nil, &r, Draft11); err != nil || len(b) != 12+MaxOptionsLen {
		t.Errorf("AppendRequest at the cap: %d bytes, %v", len(b), err)
	}
}

func TestStackDialects(t *testing.T) {
	// -10 treats any payload of the availability-less options as presence;
	// -11 reads the same bytes as invalid (Raw).
	for _, h := range []string{"0001000881020000", "00010008c1040000", "0001000885010000"} {
		o10, err := ParseStackOption(hx(t, h), Draft10)
		if err != nil || o10.Avail != AvailYes || o10.Raw {
			t.Errorf("-10 %s: %+v %v", h, o10, err)
		}
		o11, err := ParseStackOption(hx(t, h), Draft11)
		if !errors.Is(err, ErrValue) || !o11.Raw {
			t.Errorf("-11 %s: %+v %v", h, o11, err)
		}
	}
	// Port Parity: -10 0 = even, 1 = odd; -11 0 = none, 1 = even, 2 = odd.
	cases := []struct {
		hex  string
		d    Dialect
		want gateway.Parity
		ok   bool
	}{
		{"0001000885020000", Draft10, gateway.ParityEven, true},
		{"0001000885020100", Draft10, gateway.ParityOdd, true},
		{"0001000885020200", Draft10, 0, false},
		{"0001000885020000", Draft11, gateway.ParityNone, true},
		{"0001000885020100", Draft11, gateway.ParityEven, true},
		{"0001000885020200", Draft11, gateway.ParityOdd, true},
		{"0001000885020300", Draft11, 0, false},
	}
	for _, c := range cases {
		o, err := ParseStackOption(hx(t, c.hex), c.d)
		if (err == nil) != c.ok || (c.ok && o.PortParity.Parity != c.want) {
			t.Errorf("%s %v: %+v %v", c.hex, c.d, o, err)
		}
		if c.ok {
			if b, err := AppendStackOption(nil, o, c.d); err != nil || !bytes.Equal(b, hx(t, c.hex)) {
				t.Errorf("%s %v re-encoded %x %v", c.hex, c.d, b, err)
			}
		}
	}
	// MPTCP keeps its Availability byte in -10.
	if o, err := ParseStackOption(hx(t, "0001000884020100"), Draft10); err != nil || o.Avail != AvailNo {
		t.Errorf("-10 MPTCP: %+v %v", o, err)
	}
	for _, h := range []string{"00020008 85020101", "00010004 85020101", "000100"} {
		if _, err := ParseStackOption(hx(t, h), Draft11); err == nil {
			t.Errorf("%s accepted", h)
		}
	}
}

func rawOpt(kind OptionKind, n int) []byte { return appendRaw(nil, kind, make([]byte, n)) }
