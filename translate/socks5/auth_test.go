package socks5

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestGreetingGolden(t *testing.T) {
	tests := []struct {
		name string
		wire string
		g    Greeting
	}{
		{"no auth", "05 01 00", Greeting{Methods: []Method{MethodNoAuth}}},
		{"no auth or user/pass", "05 02 00 02", Greeting{Methods: []Method{MethodNoAuth, MethodUserPass}}},
		{"gssapi first", "05 03 01 02 00", Greeting{Methods: []Method{MethodGSSAPI, MethodUserPass, MethodNoAuth}}},
		{"private method", "05 01 80", Greeting{Methods: []Method{0x80}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := hx(tt.wire)
			r := bytes.NewReader(append(wire, 0xAA)) // a byte after the message stays unread
			g, err := ReadGreeting(r)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.Methods, tt.g.Methods) {
				t.Errorf("methods = %v, want %v", g.Methods, tt.g.Methods)
			}
			if r.Len() != 1 {
				t.Errorf("%d bytes left unread, want 1", r.Len())
			}
			enc, err := tt.g.Append([]byte{0xEE})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc[1:], wire) || enc[0] != 0xEE {
				t.Errorf("encoded % x, want ee % x", enc, wire)
			}
		})
	}
}

func TestGreeting255Methods(t *testing.T) {
	g := Greeting{}
	for i := range 255 {
		g.Methods = append(g.Methods, Method(i))
	}
	enc, err := g.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) != 257 || enc[1] != 255 {
		t.Fatalf("encoded %d bytes, NMETHODS %d", len(enc), enc[1])
	}
	got, err := ReadGreeting(bytes.NewReader(enc))
	if err != nil || !slices.Equal(got.Methods, g.Methods) {
		t.Fatalf("round trip: %v, %v", got.Methods, err)
	}
}

func TestGreetingErrors(t *testing.T) {
	tests := []struct {
		name  string
		wire  string
		field string
		errs  []error
	}{
		{"empty", "", "VER", []error{ErrShort, io.EOF}},
		{"only version", "05", "NMETHODS", []error{ErrShort, io.ErrUnexpectedEOF}},
		{"socks4", "04 01 00 50", "VER", []error{ErrVersion}},
		{"socks4 one byte", "04", "VER", []error{ErrVersion}},
		{"socks6", "06 01 00", "VER", []error{ErrVersion}},
		{"no methods", "05 00", "NMETHODS", []error{ErrLength}},
		{"methods cut", "05 03 00 02", "METHODS", []error{ErrShort, io.ErrUnexpectedEOF}},
		{"methods missing", "05 01", "METHODS", []error{ErrShort, io.ErrUnexpectedEOF}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadGreeting(bytes.NewReader(hx(tt.wire)))
			for _, target := range tt.errs {
				wantFieldErr(t, err, tt.field, target)
			}
			if len(tt.errs) == 1 && tt.errs[0] != io.EOF && errors.Is(err, io.EOF) {
				t.Errorf("%v matches io.EOF", err)
			}
		})
	}
	for _, n := range []int{0, 256} {
		b := []byte{0xEE}
		out, err := Greeting{Methods: make([]Method, n)}.Append(b)
		wantFieldErr(t, err, "NMETHODS", ErrLength)
		if !bytes.Equal(out, b) {
			t.Errorf("%d methods: failed Append changed the buffer: % x", n, out)
		}
	}
}

func TestGreetingChoose(t *testing.T) {
	g := Greeting{Methods: []Method{MethodNoAuth, MethodUserPass}}
	tests := []struct {
		server []Method
		want   Method
	}{
		{[]Method{MethodUserPass}, MethodUserPass},
		{[]Method{MethodUserPass, MethodNoAuth}, MethodUserPass},
		{[]Method{MethodNoAuth, MethodUserPass}, MethodNoAuth},
		{[]Method{MethodGSSAPI}, MethodNoAcceptable},
		{nil, MethodNoAcceptable},
	}
	for _, tt := range tests {
		if got := g.Choose(tt.server...); got != tt.want {
			t.Errorf("Choose(%v) = %v, want %v", tt.server, got, tt.want)
		}
	}
	// A client offering 0xFF never makes the server "choose" it.
	if got := (Greeting{Methods: []Method{MethodNoAcceptable}}).Choose(MethodNoAcceptable); got != MethodNoAcceptable {
		t.Errorf("got %v", got)
	}
	if !g.Offers(MethodUserPass) || g.Offers(MethodGSSAPI) {
		t.Error("Offers is wrong")
	}
}

func TestMethodSelection(t *testing.T) {
	for _, tt := range []struct {
		wire string
		m    Method
	}{
		{"05 00", MethodNoAuth},
		{"05 02", MethodUserPass},
		{"05 ff", MethodNoAcceptable},
	} {
		wire := hx(tt.wire)
		if enc := AppendMethodSelection(nil, tt.m); !bytes.Equal(enc, wire) {
			t.Errorf("%v: encoded % x, want % x", tt.m, enc, wire)
		}
		m, err := ReadMethodSelection(bytes.NewReader(wire))
		if err != nil || m != tt.m {
			t.Errorf("%s: read %v, %v", tt.wire, m, err)
		}
	}
	_, err := ReadMethodSelection(bytes.NewReader(hx("01 00")))
	wantFieldErr(t, err, "VER", ErrVersion)
	_, err = ReadMethodSelection(bytes.NewReader(hx("05")))
	wantFieldErr(t, err, "METHOD", ErrShort)
	_, err = ReadMethodSelection(bytes.NewReader(nil))
	wantFieldErr(t, err, "VER", io.EOF)
}

func TestUserPassRequestGolden(t *testing.T) {
	tests := []struct {
		name string
		wire string
		u    UserPassRequest
	}{
		{"alice", "01 05 'alice' 06 's3cret'", UserPassRequest{"alice", "s3cret"}},
		{"one byte each", "01 01 'a' 01 'b'", UserPassRequest{"a", "b"}},
		{"any bytes", "01 03 00 ff 0a 02 3a 00", UserPassRequest{"\x00\xff\n", ":\x00"}},
		{"255 each", "01 ff '" + strings.Repeat("u", 255) + "' ff '" + strings.Repeat("p", 255) + "'",
			UserPassRequest{strings.Repeat("u", 255), strings.Repeat("p", 255)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := hx(tt.wire)
			r := bytes.NewReader(append(wire, 0x05))
			u, err := ReadUserPassRequest(r)
			if err != nil {
				t.Fatal(err)
			}
			if u != tt.u {
				t.Errorf("read %+v, want %+v", u, tt.u)
			}
			if r.Len() != 1 {
				t.Errorf("%d bytes left unread, want 1", r.Len())
			}
			enc, err := tt.u.Append(nil)
			if err != nil || !bytes.Equal(enc, wire) {
				t.Errorf("encoded % x, %v; want % x", enc, err, wire)
			}
		})
	}
}

func TestUserPassRequestErrors(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		field  string
		target error
		unread int
	}{
		{"empty", "", "VER", io.EOF, 0},
		{"socks5 version", "05 05 'alice' 06 's3cret'", "VER", ErrVersion, 13},
		{"only version", "01", "ULEN", io.ErrUnexpectedEOF, 0},
		{"uname cut", "01 05 'ali'", "UNAME", ErrShort, 0},
		{"plen missing", "01 05 'alice'", "PLEN", ErrShort, 0},
		{"passwd cut", "01 05 'alice' 06 's3'", "PASSWD", ErrShort, 0},
		{"passwd missing", "01 05 'alice' 06", "PASSWD", ErrShort, 0},
		// Empty fields are read to the end of the message before failing.
		{"empty username", "01 00 06 's3cret'", "ULEN", ErrLength, 0},
		{"empty password", "01 05 'alice' 00", "PLEN", ErrLength, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(hx(tt.wire))
			_, err := ReadUserPassRequest(r)
			wantFieldErr(t, err, tt.field, tt.target)
			if tt.unread == 0 && r.Len() != 0 {
				t.Errorf("%d bytes left unread", r.Len())
			}
		})
	}
	for _, tt := range []struct {
		u     UserPassRequest
		field string
	}{
		{UserPassRequest{"", "p"}, "ULEN"},
		{UserPassRequest{"u", ""}, "PLEN"},
		{UserPassRequest{strings.Repeat("u", 256), "p"}, "ULEN"},
		{UserPassRequest{"u", strings.Repeat("p", 256)}, "PLEN"},
	} {
		out, err := tt.u.Append(nil)
		wantFieldErr(t, err, tt.field, ErrLength)
		if len(out) != 0 {
			t.Errorf("failed Append wrote % x", out)
		}
	}
}

func TestUserPassReply(t *testing.T) {
	for _, tt := range []struct {
		wire   string
		status byte
	}{
		{"01 00", UserPassSuccess},
		{"01 01", UserPassFailure},
		{"01 7f", 0x7f},
	} {
		wire := hx(tt.wire)
		if enc := AppendUserPassReply(nil, tt.status); !bytes.Equal(enc, wire) {
			t.Errorf("encoded % x, want % x", enc, wire)
		}
		st, err := ReadUserPassReply(bytes.NewReader(wire))
		if err != nil || st != tt.status {
			t.Errorf("%s: read %d, %v", tt.wire, st, err)
		}
	}
	_, err := ReadUserPassReply(bytes.NewReader(hx("05 00")))
	wantFieldErr(t, err, "VER", ErrVersion)
	_, err = ReadUserPassReply(bytes.NewReader(hx("01")))
	wantFieldErr(t, err, "STATUS", ErrShort)
}

// TestOneByteReads checks that the readers cope with a reader returning one
// byte per call, as a slow connection may.
func TestOneByteReads(t *testing.T) {
	g, err := ReadGreeting(iotest.OneByteReader(bytes.NewReader(hx("05 02 00 02"))))
	if err != nil || len(g.Methods) != 2 {
		t.Errorf("greeting: %v, %v", g, err)
	}
	u, err := ReadUserPassRequest(iotest.OneByteReader(bytes.NewReader(hx("01 01 'a' 02 'bc'"))))
	if err != nil || u != (UserPassRequest{"a", "bc"}) {
		t.Errorf("user/pass: %v, %v", u, err)
	}
	q, err := ReadRequest(iotest.OneByteReader(bytes.NewReader(hx("05 01 00 03 0b 'example.com' 0050"))))
	if err != nil || q.Dest != nameAddr("example.com", 80) {
		t.Errorf("request: %v, %v", q, err)
	}
	p, err := ReadReply(iotest.DataErrReader(bytes.NewReader(hx("05 00 00 01 c0000201 0050"))))
	if err != nil || p.Bound != ipAddr("192.0.2.1", 80) {
		t.Errorf("reply: %v, %v", p, err)
	}
}
