package socks5

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sixgate/sixgate/gateway"
)

// requestGolden are canonical requests: decoding and encoding are inverse.
var requestGolden = []struct {
	name string
	wire string
	q    Request
}{
	{"connect ipv4", "05 01 00 01 c0000201 0050", Request{CmdConnect, ipAddr("192.0.2.1", 80)}},
	{"connect ipv6", "05 01 00 04 20010db8000000000000000000000001 01bb", Request{CmdConnect, ipAddr("2001:db8::1", 443)}},
	{"connect domain", "05 01 00 03 0b 'example.com' 0050", Request{CmdConnect, nameAddr("example.com", 80)}},
	{"connect domain 255", "05 01 00 03 ff '" + name255 + "' ffff", Request{CmdConnect, nameAddr(name255, 65535)}},
	{"bind any", "05 02 00 01 00000000 0000", Request{CmdBind, ipAddr("0.0.0.0", 0)}},
	{"bind peer", "05 02 00 01 c6336407 1f90", Request{CmdBind, ipAddr("198.51.100.7", 8080)}},
	{"udp associate any", "05 03 00 01 00000000 0000", Request{CmdUDPAssociate, ipAddr("0.0.0.0", 0)}},
	{"udp associate ipv6 any", "05 03 00 04 00000000000000000000000000000000 0000", Request{CmdUDPAssociate, ipAddr("::", 0)}},
	{"udp associate source", "05 03 00 01 cb007105 d431", Request{CmdUDPAssociate, ipAddr("203.0.113.5", 54321)}},
}

func TestRequestGolden(t *testing.T) {
	for _, tt := range requestGolden {
		t.Run(tt.name, func(t *testing.T) {
			wire := hx(tt.wire)
			r := bytes.NewReader(append(wire, "GET / HTTP/1.1\r\n"...))
			q, err := ReadRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			if q != tt.q {
				t.Errorf("read %+v, want %+v", q, tt.q)
			}
			if r.Len() != 16 {
				t.Errorf("ReadRequest consumed data after the request: %d bytes left", r.Len())
			}
			enc, err := tt.q.Append(nil)
			if err != nil || !bytes.Equal(enc, wire) {
				t.Errorf("encoded % x, %v; want % x", enc, err, wire)
			}
		})
	}
}

// TestRequestNormalizes covers inputs whose decoded form encodes differently.
func TestRequestNormalizes(t *testing.T) {
	tests := []struct {
		name, wire string
		dest       gateway.Addr
		canonical  string
	}{
		{"upper case, trailing dot", "05 01 00 03 0c 'WWW.Example.' 0050", nameAddr("www.example", 80), "05 01 00 03 0b 'www.example' 0050"},
		{"ipv4 literal as name", "05 01 00 03 09 '192.0.2.1' 0050", ipAddr("192.0.2.1", 80), "05 01 00 01 c0000201 0050"},
		{"ipv4 literal with trailing dot", "05 01 00 03 0a '192.0.2.1.' 0050", ipAddr("192.0.2.1", 80), "05 01 00 01 c0000201 0050"},
		{"ipv6 literal as name", "05 01 00 03 0d '[2001:db8::1]' 0050", ipAddr("2001:db8::1", 80), "05 01 00 04 20010db8000000000000000000000001 0050"},
		{"mapped ipv4 literal as name", "05 01 00 03 10 '::ffff:192.0.2.1' 0050", ipAddr("192.0.2.1", 80), "05 01 00 01 c0000201 0050"},
		{"ipv4-mapped ipv6", "05 01 00 04 00000000000000000000ffff7f000001 0050", ipAddr("127.0.0.1", 80), "05 01 00 01 7f000001 0050"},
		{"rsv ignored", "05 01 ff 01 c0000201 0050", ipAddr("192.0.2.1", 80), "05 01 00 01 c0000201 0050"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ReadRequest(bytes.NewReader(hx(tt.wire)))
			if err != nil {
				t.Fatal(err)
			}
			if q.Dest != tt.dest {
				t.Errorf("dest %#v, want %#v", q.Dest, tt.dest)
			}
			enc, err := q.Append(nil)
			if err != nil || !bytes.Equal(enc, hx(tt.canonical)) {
				t.Errorf("re-encoded % x, %v; want %s", enc, err, tt.canonical)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		field  string
		target error
		// rep/reply: what RequestFailure says.
		rep   ReplyCode
		reply bool
		// consumed: the whole input was read.
		consumed bool
	}{
		{"empty", "", "VER", io.EOF, 0, false, true},
		{"version only", "05", "CMD", io.ErrUnexpectedEOF, 0, false, true},
		{"no rsv", "05 01", "RSV", ErrShort, 0, false, true},
		{"no atyp", "05 01 00", "ATYP", ErrShort, 0, false, true},
		{"socks4", "04 01 0050 c0000201 00", "VER", ErrVersion, 0, false, false},
		{"socks4 one byte", "04", "VER", ErrVersion, 0, false, true},
		{"ipv4 cut", "05 01 00 01 c000", "DST.ADDR", ErrShort, 0, false, true},
		{"ipv4 no port", "05 01 00 01 c0000201", "DST.PORT", io.ErrUnexpectedEOF, 0, false, true},
		{"ipv4 port cut", "05 01 00 01 c0000201 00", "DST.PORT", ErrShort, 0, false, true},
		{"ipv6 cut", "05 01 00 04 20010db8", "DST.ADDR", ErrShort, 0, false, true},
		{"domain no length", "05 01 00 03", "DST.ADDR", ErrShort, 0, false, true},
		{"domain cut", "05 01 00 03 0b 'exam'", "DST.ADDR", ErrShort, 0, false, true},
		{"domain port cut", "05 01 00 03 01 'a' 00", "DST.PORT", ErrShort, 0, false, true},
		{"unknown atyp", "05 01 00 02 c0000201 0050", "ATYP", ErrAddrType, RepAddrTypeNotSupported, true, false},
		{"atyp zero", "05 01 00 00", "ATYP", ErrAddrType, RepAddrTypeNotSupported, true, true},
		{"unknown command", "05 09 00 01 c0000201 0050", "CMD", ErrCommand, RepCommandNotSupported, true, true},
		{"command zero", "05 00 00 03 01 'a' 0050", "CMD", ErrCommand, RepCommandNotSupported, true, true},
		{"unknown command and atyp", "05 09 00 02 c0000201 0050", "CMD", ErrCommand, RepCommandNotSupported, true, false},
		{"unknown command, bad name", "05 04 00 03 00 0050", "CMD", ErrCommand, RepCommandNotSupported, true, true},
		{"empty name", "05 01 00 03 00 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with nul", "05 01 00 03 0f 'example.com' 00 '.io' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with space", "05 01 00 03 03 'a b' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name only a dot", "05 01 00 03 01 '.' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with zone", "05 01 00 03 0c 'fe80::1%eth0' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with empty label", "05 01 00 03 05 'a..bc' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with two trailing dots", "05 01 00 03 04 'ab..' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with leading dot", "05 01 00 03 03 '.ab' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with utf-8", "05 01 00 03 0f 'b' c3bc 'cher.example' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
		{"name with invalid utf-8", "05 01 00 03 03 'a' e4 'b' 0050", "DST.ADDR", gateway.ErrBadName, RepHostUnreachable, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(hx(tt.wire))
			q, err := ReadRequest(r)
			wantFieldErr(t, err, tt.field, tt.target)
			rep, reply := RequestFailure(err)
			if rep != tt.rep || reply != tt.reply {
				t.Errorf("RequestFailure = %v, %v; want %v, %v", rep, reply, tt.rep, tt.reply)
			}
			if consumed := r.Len() == 0; consumed != tt.consumed {
				t.Errorf("%d bytes left unread", r.Len())
			}
			if tt.target != io.EOF && errors.Is(err, io.EOF) {
				t.Errorf("%v matches io.EOF after the first byte", err)
			}
			if errors.Is(err, ErrCommand) {
				if want := Command(hx(tt.wire)[1]); q.Command != want {
					t.Errorf("command %v, want %v", q.Command, want)
				}
			}
		})
	}
	// With an unknown command the destination is still reported.
	q, _ := ReadRequest(bytes.NewReader(hx("05 09 00 01 c0000201 0050")))
	if q.Dest != ipAddr("192.0.2.1", 80) {
		t.Errorf("dest %v", q.Dest)
	}
}

func TestRequestReaderError(t *testing.T) {
	// A deadline in the middle of a request keeps the reader's error.
	r := io.MultiReader(bytes.NewReader(hx("05 01 00 01 c0")), iotest.ErrReader(os.ErrDeadlineExceeded))
	_, err := ReadRequest(r)
	wantFieldErr(t, err, "DST.ADDR", os.ErrDeadlineExceeded)
	if errors.Is(err, ErrShort) {
		t.Errorf("%v matches ErrShort", err)
	}
	if _, ok := RequestFailure(err); ok {
		t.Error("RequestFailure wants a reply to a read error")
	}
	if rep, ok := RequestFailure(nil); ok || rep != RepSucceeded {
		t.Error("RequestFailure(nil)")
	}
}

func TestRequestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		q      Request
		field  string
		target error
	}{
		{"command zero", Request{0, ipAddr("192.0.2.1", 80)}, "CMD", ErrCommand},
		{"command 4", Request{4, ipAddr("192.0.2.1", 80)}, "CMD", ErrCommand},
		{"name too long", Request{CmdConnect, nameAddr(name255+"e", 80)}, "DST.ADDR", gateway.ErrBadName},
		{"name with nul", Request{CmdConnect, nameAddr("evil.com\x00.good.com", 80)}, "DST.ADDR", gateway.ErrBadName},
		{"name with empty label", Request{CmdConnect, nameAddr("a..b", 80)}, "DST.ADDR", gateway.ErrBadName},
		{"name not ascii", Request{CmdConnect, nameAddr("b\u00fccher.example", 80)}, "DST.ADDR", gateway.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte{1, 2}
			out, err := tt.q.Append(b)
			wantFieldErr(t, err, tt.field, tt.target)
			if !bytes.Equal(out, b) {
				t.Errorf("failed Append changed the buffer: % x", out)
			}
		})
	}
	// The zero address goes out as 0.0.0.0:0; a zone is dropped.
	enc, err := Request{CmdUDPAssociate, gateway.Addr{}}.Append(nil)
	if err != nil || !bytes.Equal(enc, hx("05 03 00 01 00000000 0000")) {
		t.Errorf("zero dest: % x, %v", enc, err)
	}
	enc, err = Request{CmdConnect, ipAddr("fe80::1%eth0", 22)}.Append(nil)
	if err != nil || !bytes.Equal(enc, hx("05 01 00 04 fe800000000000000000000000000001 0016")) {
		t.Errorf("zoned dest: % x, %v", enc, err)
	}
}

var replyGolden = []struct {
	name string
	wire string
	p    Reply
}{
	{"connect ok ipv4", "05 00 00 01 c0000201 1f90", Reply{RepSucceeded, ipAddr("192.0.2.1", 8080)}},
	{"connect ok ipv6", "05 00 00 04 20010db8000000000000000000000002 c001", Reply{RepSucceeded, ipAddr("2001:db8::2", 49153)}},
	{"udp relay domain", "05 00 00 03 11 'proxy.example.org' 0438", Reply{RepSucceeded, nameAddr("proxy.example.org", 1080)}},
	{"general failure", "05 01 00 01 00000000 0000", Reply{RepGeneralFailure, ipAddr("0.0.0.0", 0)}},
	{"not allowed", "05 02 00 01 00000000 0000", Reply{RepNotAllowed, ipAddr("0.0.0.0", 0)}},
	{"net unreachable", "05 03 00 01 00000000 0000", Reply{RepNetUnreachable, ipAddr("0.0.0.0", 0)}},
	{"host unreachable", "05 04 00 01 00000000 0000", Reply{RepHostUnreachable, ipAddr("0.0.0.0", 0)}},
	{"refused", "05 05 00 01 00000000 0000", Reply{RepConnRefused, ipAddr("0.0.0.0", 0)}},
	{"ttl expired", "05 06 00 01 00000000 0000", Reply{RepTTLExpired, ipAddr("0.0.0.0", 0)}},
	{"command not supported", "05 07 00 01 00000000 0000", Reply{RepCommandNotSupported, ipAddr("0.0.0.0", 0)}},
	{"address type not supported", "05 08 00 01 00000000 0000", Reply{RepAddrTypeNotSupported, ipAddr("0.0.0.0", 0)}},
	{"tor extended code", "05 f6 00 01 00000000 0000", Reply{0xF6, ipAddr("0.0.0.0", 0)}},
}

func TestReplyGolden(t *testing.T) {
	for _, tt := range replyGolden {
		t.Run(tt.name, func(t *testing.T) {
			wire := hx(tt.wire)
			r := bytes.NewReader(append(wire, "HTTP/1.1 200 OK\r\n"...))
			p, err := ReadReply(r)
			if err != nil {
				t.Fatal(err)
			}
			if p != tt.p {
				t.Errorf("read %+v, want %+v", p, tt.p)
			}
			if r.Len() != 17 {
				t.Errorf("ReadReply consumed data after the reply: %d bytes left", r.Len())
			}
			enc, err := tt.p.Append(nil)
			if err != nil || !bytes.Equal(enc, wire) {
				t.Errorf("encoded % x, %v; want % x", enc, err, wire)
			}
		})
	}
}

func TestReplyEncode(t *testing.T) {
	tests := []struct {
		name string
		p    Reply
		wire string
	}{
		{"zero bound", Reply{RepHostUnreachable, gateway.Addr{}}, "05 04 00 01 00000000 0000"},
		{"mapped bound", Reply{RepSucceeded, ipAddr("::ffff:192.0.2.1", 1080)}, "05 00 00 01 c0000201 0438"},
		{"port only", Reply{RepSucceeded, gateway.Addr{Port: 1080}}, "05 00 00 01 00000000 0438"},
	}
	for _, tt := range tests {
		enc, err := tt.p.Append(nil)
		if err != nil || !bytes.Equal(enc, hx(tt.wire)) {
			t.Errorf("%s: encoded % x, %v; want %s", tt.name, enc, err, tt.wire)
		}
	}
	_, err := Reply{RepSucceeded, nameAddr(strings.Repeat("x", 256), 1)}.Append(nil)
	wantFieldErr(t, err, "BND.ADDR", gateway.ErrBadName)
}

func TestReplyErrors(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		field  string
		target error
		code   ReplyCode
	}{
		{"empty", "", "VER", io.EOF, 0},
		{"version only", "05", "REP", ErrShort, 0},
		{"bad version", "00 5a 0000 00000000", "VER", ErrVersion, 0},
		{"failure cut after rep", "05 04", "RSV", ErrShort, RepHostUnreachable},
		{"failure cut in address", "05 05 00 01 00", "BND.ADDR", ErrShort, RepConnRefused},
		{"no port", "05 00 00 01 c0000201", "BND.PORT", ErrShort, RepSucceeded},
		{"bad atyp", "05 00 00 05 c0000201 0050", "ATYP", ErrAddrType, RepSucceeded},
		{"bad name", "05 00 00 03 02 'a\x00' 0050", "BND.ADDR", gateway.ErrBadName, RepSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ReadReply(bytes.NewReader(hx(tt.wire)))
			wantFieldErr(t, err, tt.field, tt.target)
			if p.Code != tt.code {
				t.Errorf("code %v, want %v", p.Code, tt.code)
			}
		})
	}
}

func TestReplyErr(t *testing.T) {
	if err := (Reply{Code: RepSucceeded}).Err(); err != nil {
		t.Fatalf("success: %v", err)
	}
	err := Reply{Code: RepConnRefused}.Err()
	var ge *gateway.Error
	if !errors.As(err, &ge) || ge.Reason != gateway.ReasonRefused {
		t.Fatalf("err %v, want a *gateway.Error with ReasonRefused", err)
	}
	if got, want := err.Error(), "socks5: reply: connection refused: rep 0x05"; got != want {
		t.Errorf("text %q, want %q", got, want)
	}
	if gateway.ReasonOf(Reply{Code: 0xF0}.Err()) != gateway.ReasonGeneral {
		t.Error("unassigned code is not a general failure")
	}
}
