package socks6

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

// The hex test vectors of the wire digest, §9. Each is decoded and compared
// with the documented fields, and the fields are encoded and compared with
// the exact bytes.

func TestVectorRequests(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		trail   string // bytes after the Request (initial data)
		dialect Dialect
		want    Request
	}{
		{"TV1 connect ipv4", "0601000001bb0001c0000201", "", Draft11,
			Request{Command: CmdConnect, Addr: ipAddr("192.0.2.1", 443)}},
		{"TV2 connect name advert", "06010008005000030b6578616d706c652e636f6d0002000800050200", "68656c6c6f", Draft11,
			Request{Command: CmdConnect, Addr: nameAddr(t, "example.com", 80),
				Options: Options{Advertisement: &Advertisement{InitialDataLen: 5, Methods: []Method{MethodUserPass}}}}},
		{"TV3 0-rtt userpass", "06010010005000030b6578616d706c652e6f726700040010020104757365720470617373", "", Draft11,
			Request{Command: CmdConnect, Addr: nameAddr(t, "example.org", 80),
				Options: Options{AuthData: []AuthData{{Method: MethodUserPass, Data: hx(t, "0104757365720470617373")}}}}},
		{"TV9 udp associate", "06030010000000010000000000010008850102000001000885020101", "", Draft11,
			Request{Command: CmdUDPAssociate, Addr: ipAddr("0.0.0.0", 0), Options: Options{Stack: []StackOption{
				{Leg: LegRemote, Kind: StackUDPError, Avail: AvailYes},
				{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}},
			}}}},
		{"TV9 udp associate -10", "06030010000000010000000000010008850100000001000885020001", "", Draft10,
			Request{Command: CmdUDPAssociate, Addr: ipAddr("0.0.0.0", 0), Options: Options{Stack: []StackOption{
				{Leg: LegRemote, Kind: StackUDPError, Avail: AvailYes},
				{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}},
			}}}},
		{"TV9 without options", "060300000000000100000000", "", Draft11,
			Request{Command: CmdUDPAssociate, Addr: ipAddr("0.0.0.0", 0)}},
		{"TV20 noop session window", "0600000c000000010000000000050004000b000800000010", "", Draft11,
			Request{Command: CmdNoop, Addr: ipAddr("0.0.0.0", 0), Options: Options{SessionRequest: true, WindowRequest: ptr(uint32(16))}}},
		{"TV22 connect in session", "0601001401bb0001c00002010006000c0102030405060708000d000800000010", "", Draft11,
			Request{Command: CmdConnect, Addr: ipAddr("192.0.2.1", 443), Options: Options{
				SessionID: hx(t, "0102030405060708"), Expenditure: ptr(uint32(0x10))}}},
		{"TV22 teardown", "0600001000000001000000000006000c0102030405060708000a0004", "", Draft11,
			Request{Command: CmdNoop, Addr: ipAddr("0.0.0.0", 0), Options: Options{
				SessionID: hx(t, "0102030405060708"), SessionTeardown: true}}},
		{"TV23 stack options", "0601001801bb0001c000020100010008c101100000010008840103e80001000884020200", "", Draft11,
			Request{Command: CmdConnect, Addr: ipAddr("192.0.2.1", 443), Options: Options{Stack: []StackOption{
				{Leg: LegBoth, Kind: StackTOS, Value: 0x10},
				{Leg: LegRemote, Kind: StackTFO, Value: 1000},
				{Leg: LegRemote, Kind: StackMPTCP, Avail: AvailYes},
			}}}},
		{"TV24 bind backlog", "0602000800000001000000000001000884030005", "", Draft11,
			Request{Command: CmdBind, Addr: ipAddr("0.0.0.0", 0), Options: Options{Stack: []StackOption{
				{Leg: LegRemote, Kind: StackBacklog, Value: 5},
			}}}},
		{"TV25 style A", "060100000050000304612e696f000000", "", Draft11,
			Request{Command: CmdConnect, Addr: nameAddr(t, "a.io", 80)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := hx(t, tt.hex)
			in := append(append([]byte(nil), msg...), hx(t, tt.trail)...)
			got, n, err := ParseRequest(in, tt.dialect)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if n != len(msg) {
				t.Errorf("consumed %d bytes, want %d", n, len(msg))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded\n got %+v\nwant %+v", got, tt.want)
			}
			enc, err := AppendRequest(nil, &tt.want, tt.dialect)
			if err != nil {
				t.Fatalf("AppendRequest: %v", err)
			}
			if !bytes.Equal(enc, msg) {
				t.Errorf("encoded\n got %x\nwant %x", enc, msg)
			}
		})
	}
}

func TestVectorRequestDetails(t *testing.T) {
	r, n, err := ParseRequest(hx(t, "06010008005000030b6578616d706c652e636f6d000200080005020068656c6c6f"), Draft11)
	if err != nil || n != 28 || r.InitialDataLen() != 5 {
		t.Fatalf("TV2: n=%d idl=%d err=%v", n, r.InitialDataLen(), err)
	}
	r, _, err = ParseRequest(hx(t, "06010010005000030b6578616d706c652e6f726700040010020104757365720470617373"), Draft11)
	if err != nil {
		t.Fatal(err)
	}
	up, ok, err := r.Options.UserPass()
	if err != nil || !ok || up != (UserPassRequest{Username: "user", Password: "pass"}) {
		t.Fatalf("TV3 user/pass = %+v %v %v", up, ok, err)
	}
	if r.InitialDataLen() != 0 {
		t.Errorf("TV3 has no advertisement, InitialDataLen = %d", r.InitialDataLen())
	}
	ad, err := UserPassAuthData(up)
	if err != nil || !reflect.DeepEqual(ad, r.Options.AuthData[0]) {
		t.Errorf("UserPassAuthData = %+v, %v", ad, err)
	}
}

func TestVectorAuthReplies(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want AuthReply
	}{
		{"TV4 success", "06000000", AuthReply{Type: AuthSuccess}},
		{"TV5 success userpass", "060000080004000802010000", AuthReply{Type: AuthSuccess,
			Options: Options{AuthData: []AuthData{{Method: MethodUserPass, Data: hx(t, "010000")}}}}},
		{"TV5 failure userpass", "060100080004000802010100", AuthReply{Type: AuthFailure,
			Options: Options{AuthData: []AuthData{{Method: MethodUserPass, Data: hx(t, "010100")}}}}},
		{"TV6 continue with method 2", "060100080003000802000000", AuthReply{Type: AuthFailure,
			Options: Options{Selection: ptr(MethodUserPass)}}},
		{"TV21 session and window", "060000180006000c0102030405060708000c000c0000100000000010", AuthReply{Type: AuthSuccess,
			Options: Options{SessionID: hx(t, "0102030405060708"), Window: &Window{Base: 0x1000, Size: 16}}}},
		{"TV22 session ok accepted", "0600000800080004000e0004", AuthReply{Type: AuthSuccess,
			Options: Options{SessionOK: true, IdempotenceAccepted: true}}},
		{"TV22 bad session", "0601000400090004", AuthReply{Type: AuthFailure,
			Options: Options{SessionInvalid: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := hx(t, tt.hex)
			for _, d := range []Dialect{Draft11, Draft10} {
				got, n, err := ParseAuthReply(msg, d)
				if err != nil || n != len(msg) {
					t.Fatalf("ParseAuthReply(%v): n=%d err=%v", d, n, err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("decoded\n got %+v\nwant %+v", got, tt.want)
				}
				enc, err := AppendAuthReply(nil, &tt.want, d)
				if err != nil || !bytes.Equal(enc, msg) {
					t.Errorf("encoded %x, %v; want %x", enc, err, msg)
				}
			}
		})
	}
	// The username/password reply inside TV5, both ways.
	rep, _, _ := ParseAuthReply(hx(t, "060000080004000802010000"), Draft11)
	if st, ok, err := rep.Options.UserPassResult(); err != nil || !ok || !st.OK() {
		t.Errorf("TV5 status = %+v %v %v", st, ok, err)
	}
	built := AuthReply{Type: AuthSuccess, Options: Options{AuthData: []AuthData{UserPassReplyData(UserPassSuccess)}}}
	if b, _ := AppendAuthReply(nil, &built, Draft11); !bytes.Equal(b, hx(t, "060000080004000802010000")) {
		t.Errorf("UserPassReplyData success = %x", b)
	}
	built.Type, built.Options.AuthData[0] = AuthFailure, UserPassReplyData(UserPassFailure)
	if b, _ := AppendAuthReply(nil, &built, Draft11); !bytes.Equal(b, hx(t, "060100080004000802010100")) {
		t.Errorf("UserPassReplyData failure = %x", b)
	}
	rep, _, _ = ParseAuthReply(hx(t, "060100080003000802000000"), Draft11)
	if !rep.Continues() || rep.Reason() != gateway.ReasonAuthFailed {
		t.Errorf("TV6 Continues=%v Reason=%v", rep.Continues(), rep.Reason())
	}
}

func TestVectorOpReplies(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		dialect Dialect
		want    OpReply
	}{
		{"TV7 success ipv6", "06000000c350000420010db8000000000000000000000001", Draft11,
			OpReply{Code: ReplySuccess, Bind: ipAddr("2001:db8::1", 50000)}},
		{"TV8 host unreachable", "060400000000000100000000", Draft11,
			OpReply{Code: ReplyHostUnreachable, Bind: ipAddr("0.0.0.0", 0)}},
		{"TV10 udp associate echo", "060000109c400001c633640100010008850102000001000885020101", Draft11,
			OpReply{Code: ReplySuccess, Bind: ipAddr("198.51.100.1", 40000), Options: Options{Stack: []StackOption{
				{Leg: LegRemote, Kind: StackUDPError, Avail: AvailYes},
				{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}},
			}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := hx(t, tt.hex)
			got, n, err := ParseOpReply(msg, tt.dialect)
			if err != nil || n != len(msg) {
				t.Fatalf("ParseOpReply: n=%d err=%v", n, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded\n got %+v\nwant %+v", got, tt.want)
			}
			enc, err := AppendOpReply(nil, &tt.want, tt.dialect)
			if err != nil || !bytes.Equal(enc, msg) {
				t.Errorf("encoded %x, %v; want %x", enc, err, msg)
			}
		})
	}
}

func TestVectorUDPMessages(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want UDPMessage
	}{
		{"TV11 init", "0601000c0102030405060708", UDPMessage{Type: UDPInit, Assoc: testAssoc}},
		{"TV12 confirm", "0602000c0102030405060708", UDPMessage{Type: UDPConfirm, Assoc: testAssoc}},
		{"TV13 datagram", "06030018010203040506070801000035c6336407deadbeef", UDPMessage{Type: UDPDatagram, Assoc: testAssoc,
			Addr: ipAddr("198.51.100.7", 53), Payload: hx(t, "deadbeef")}},
		{"TV14 receive-first", "0603001401020304050607080100000000000000", UDPMessage{Type: UDPDatagram, Assoc: testAssoc,
			Addr: ipAddr("0.0.0.0", 0), Payload: []byte{}}},
		{"TV15 error host unreachable", "0604001c010203040506070801000035c633640701020000cb007109", UDPMessage{Type: UDPError, Assoc: testAssoc,
			Addr: ipAddr("198.51.100.7", 53), Code: ErrorCodeHostUnreachable, Reporter: ip("203.0.113.9")}},
		{"TV16 error too big", "0604003401020304050607080400003520010db80000000000000000000000530404000020010db8ffff00000000000000000001",
			UDPMessage{Type: UDPError, Assoc: testAssoc, Addr: ipAddr("2001:db8::53", 53), Code: ErrorCodeDatagramTooBig,
				Reporter: ip("2001:db8:ffff::1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := hx(t, tt.hex)
			got, n, err := ParseUDPMessage(msg)
			if err != nil || n != len(msg) {
				t.Fatalf("ParseUDPMessage: n=%d err=%v", n, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded\n got %+v\nwant %+v", got, tt.want)
			}
			enc, err := AppendUDPMessage(nil, &tt.want)
			if err != nil || !bytes.Equal(enc, msg) {
				t.Errorf("encoded %x, %v; want %x", enc, err, msg)
			}
			// Plain UDP: padding after Message Length is ignored.
			padded := append(append([]byte(nil), msg...), 0, 0, 0, 0)
			if got2, n2, err := ParseUDPMessage(padded); err != nil || n2 != len(msg) || !reflect.DeepEqual(got2, tt.want) {
				t.Errorf("with UDP padding: %+v n=%d err=%v", got2, n2, err)
			}
		})
	}
	m, _, _ := ParseUDPMessage(hx(t, "0603001401020304050607080100000000000000"))
	if !m.IsReceiveFirst() {
		t.Error("TV14 is the receive-first datagram")
	}
	if b := AppendAssocInit(nil, testAssoc); !bytes.Equal(b, hx(t, "0601000c0102030405060708")) {
		t.Errorf("AppendAssocInit = %x", b)
	}
	if b := AppendAssocConfirm(nil, testAssoc); !bytes.Equal(b, hx(t, "0602000c0102030405060708")) {
		t.Errorf("AppendAssocConfirm = %x", b)
	}
}

func TestVectorStackOptions(t *testing.T) {
	tests := []struct {
		name    string
		hex     string
		dialect Dialect
		want    StackOption
	}{
		{"TV17 port parity", "0001000885020101", Draft11, StackOption{Leg: LegRemote, Kind: StackPortParity,
			PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}}},
		{"TV17 port parity -10", "0001000885020001", Draft10, StackOption{Leg: LegRemote, Kind: StackPortParity,
			PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}}},
		{"TV18 ttl", "0001000881034000", Draft11, StackOption{Leg: LegRemote, Kind: StackTTL, Value: 64}},
		{"TV18 df both legs", "00010008c1040200", Draft11, StackOption{Leg: LegBoth, Kind: StackNoFragmentation, Avail: AvailYes}},
		{"TV18 df both legs -10", "00010008c1040000", Draft10, StackOption{Leg: LegBoth, Kind: StackNoFragmentation, Avail: AvailYes}},
		{"TV18 happy eyeballs", "0001000881020200", Draft11, StackOption{Leg: LegRemote, Kind: StackHappyEyeballs, Avail: AvailYes}},
		{"TV18 happy eyeballs -10", "0001000881020000", Draft10, StackOption{Leg: LegRemote, Kind: StackHappyEyeballs, Avail: AvailYes}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := hx(t, tt.hex)
			got, err := ParseStackOption(msg, tt.dialect)
			if err != nil || got != tt.want {
				t.Fatalf("ParseStackOption = %+v, %v; want %+v", got, err, tt.want)
			}
			opts, err := ParseOptions(msg, tt.dialect)
			if err != nil || len(opts.Stack) != 1 || opts.Stack[0] != tt.want {
				t.Errorf("ParseOptions = %+v, %v", opts, err)
			}
			enc, err := AppendStackOption(nil, tt.want, tt.dialect)
			if err != nil || !bytes.Equal(enc, msg) {
				t.Errorf("encoded %x, %v; want %x", enc, err, msg)
			}
		})
	}
}

func TestVectorVersionMismatch(t *testing.T) {
	if b := AppendVersionMismatch(nil); !bytes.Equal(b, hx(t, "06")) {
		t.Errorf("TV19 = %x", b)
	}
}

// The decode-only cases: foreign encodings that are accepted (style B) or
// rejected with a typed error, and never produced.
func TestVectorForeignEncodings(t *testing.T) {
	// TV25 style B is accepted and decodes like A; the encoder writes A.
	b, n, err := ParseRequest(hx(t, "060100000050000307612e696f000000"), Draft11)
	if err != nil || n != 16 || b.Addr != nameAddr(t, "a.io", 80) {
		t.Fatalf("style B: %+v n=%d err=%v", b, n, err)
	}
	if enc, _ := AppendRequest(nil, &b, Draft11); !bytes.Equal(enc, hx(t, "060100000050000304612e696f000000")) {
		t.Errorf("style B re-encoded as %x, want style A", enc)
	}

	rejects := []struct {
		name  string
		parse func([]byte) error
		hex   string
		want  error
		field string
	}{
		{"TV25 style C", reqParser, "060100000050000308612e696f000000", ErrDomainStyle, "address length"},
		{"TV2 Go style C", reqParser, "0601000800500003" + "0c6578616d706c652e636f6d0002000800050200", ErrDomainStyle, "address length"},
		{"TV13 Go datagram", udpParser, "06030018010203040506070800350001c6336407deadbeef", ErrAddrOrder, "address type"},
		{"TV15 Go error", udpParser, "0604001c010203040506070800350001c63364070000" + "0201cb007109", ErrAddrOrder, "address type"},
		{"TV15 -09 error", udpParser, "0604001c010203040506070801000035c633640702010000cb007109", ErrAddrType, "reporter address type"},
		{"TV17 Go reserve 2", stackParser, "0001000885020102", ErrValue, "port-parity"},
	}
	for _, tt := range rejects {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(hx(t, tt.hex))
			var fe *FieldError
			if !errors.Is(err, tt.want) || !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want %v in field %q", err, tt.want, tt.field)
			}
		})
	}

	// The encoder never writes the foreign forms: Reserve is 0 or 1, the
	// Error reporter block is R-ATYP then Code, datagrams are in draft order.
	for _, d := range dialects {
		for _, p := range []gateway.Parity{gateway.ParityNone, gateway.ParityEven, gateway.ParityOdd} {
			for _, res := range []bool{false, true} {
				b, err := AppendStackOption(nil, StackOption{Leg: LegRemote, Kind: StackPortParity,
					PortParity: gateway.PortParity{Parity: p, Reserve: res}}, d)
				if err == nil && b[7] > 1 {
					t.Errorf("Reserve written as %d", b[7])
				}
			}
		}
	}
	dg, _ := AppendDatagram(nil, testAssoc, ipAddr("198.51.100.7", 53), hx(t, "deadbeef"))
	if dg[12] != byte(AddrIPv4) || dg[14] != 0 || dg[15] != 53 {
		t.Errorf("datagram address block %x", dg[12:16])
	}

	// Inside a message the Go Port Parity option is kept Raw and ignored.
	opts, err := ParseOptions(hx(t, "0001000885020102"), Draft11)
	if err != nil || len(opts.Stack) != 1 || !opts.Stack[0].Raw {
		t.Fatalf("Go port parity in a message: %+v %v", opts, err)
	}
	legs := SplitStack(&Request{Command: CmdUDPAssociate, Options: opts}, Draft11)
	if legs.Remote.PortParity.Wanted() {
		t.Error("a raw Port Parity option must be ignored")
	}
}

func reqParser(b []byte) error { _, _, err := ParseRequest(b, Draft11); return err }
func udpParser(b []byte) error { _, _, err := ParseUDPMessage(b); return err }
func stackParser(b []byte) error {
	_, err := ParseStackOption(b, Draft11)
	return err
}
