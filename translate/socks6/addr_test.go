package socks6

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func name(n int) string {
	s := strings.Repeat("abcdefghi.", 26)[:n]
	if s[n-1] == '.' { // no trailing dot: it would be normalized away
		s = s[:n-1] + "x"
	}
	return s
}

// styleRequest builds a CONNECT to name:80 with the domain field written in
// the given style (A, B or C) and the given options and trailing bytes.
func styleRequest(style byte, nm string, opts, trail []byte) []byte {
	n := len(nm)
	p := namePad(n)
	var l int
	switch style {
	case 'A':
		l = n
	case 'B':
		l = n + p
	case 'C':
		l = 1 + n + p
	}
	b := []byte{Version, byte(CmdConnect), byte(len(opts) >> 8), byte(len(opts)), 0, 80, 0, byte(AddrDomain), byte(l)}
	b = append(b, nm...)
	b = append(b, make([]byte, p)...)
	b = append(b, opts...)
	return append(b, trail...)
}

func TestDomainStyles(t *testing.T) {
	sessionReq := []byte{0, byte(KindSessionRequest), 0, 4}
	for n := 1; n <= 255; n++ {
		nm := name(n)
		want := nameAddr(t, nm, 80)
		for _, opts := range [][]byte{nil, sessionReq} {
			for _, style := range []byte{'A', 'B'} {
				if style == 'B' && n+namePad(n) > 255 {
					continue
				}
				msg := styleRequest(style, nm, opts, nil)
				r, m, err := ParseRequest(msg, Draft11)
				if err != nil || m != len(msg) || r.Addr != want || r.Options.SessionRequest != (opts != nil) {
					t.Fatalf("style %c n=%d opts=%x: %+v n=%d err=%v", style, n, opts, r.Addr, m, err)
				}
				if style == 'A' {
					enc, err := AppendRequest(nil, &r, Draft11)
					if err != nil || !bytes.Equal(enc, msg) {
						t.Fatalf("style A n=%d: encoded %x, %v", n, enc, err)
					}
				}
			}
			if 1+n+namePad(n) > 255 {
				continue
			}
			// Style C is rejected with ErrDomainStyle, except when the name
			// needs no padding and nothing follows: then the field cannot be
			// told from a truncated style-A name one byte longer.
			msg := styleRequest('C', nm, opts, nil)
			_, _, err := ParseRequest(msg, Draft11)
			undetectable := namePad(n) == 0 && opts == nil
			switch {
			case undetectable && !errors.Is(err, ErrShort):
				t.Fatalf("style C n=%d (no padding, nothing after): err = %v, want ErrShort", n, err)
			case !undetectable && !errors.Is(err, ErrDomainStyle):
				t.Fatalf("style C n=%d opts=%x: err = %v, want ErrDomainStyle", n, opts, err)
			}
		}
	}
}

func TestDomainRejects(t *testing.T) {
	tests := []struct {
		name  string
		hex   string
		want  error
		field string
	}{
		{"L = 0", "0601000000500003 00000000", ErrBadLength, "address length"},
		{"only NULs (style B)", "0601000000500003 03000000", gateway.ErrBadName, "address"},
		{"NUL inside the name", "0601000000500003 03610062", gateway.ErrBadName, "address"},
		{"non-NUL padding", "0601000000500003 04612e696f000100", ErrDomainStyle, "address padding"},
		{"style A with a NUL", "0601000000500003 04612e0000000000", ErrDomainStyle, "address length"},
		{"space in the name", "0601000000500003 03612062", gateway.ErrBadName, "address"},
		{"atyp 2", "0601000000500002 00000000", ErrAddrType, "address type"},
		{"atyp 0", "0601000000500000 00000000", ErrAddrType, "address type"},
		{"short ipv6", "0601000000500004 00000000", ErrShort, "address"},
		{"short name", "0601000000500003 0b6578616d", ErrShort, "address"},
		{"short padding", "0601000000500003 04612e696f00", ErrShort, "address padding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ParseRequest(hx(t, tt.hex), Draft11)
			var fe *FieldError
			if !errors.Is(err, tt.want) || !errors.As(err, &fe) || fe.Field != tt.field || fe.Msg != "request" {
				t.Fatalf("err = %v, want %v in field %q", err, tt.want, tt.field)
			}
		})
	}
}

func TestAddrNormalization(t *testing.T) {
	// An IP literal carried as a name becomes an IP; names are lower-cased.
	r, _, err := ParseRequest(styleRequest('A', "192.0.2.7", nil, nil), Draft11)
	if err != nil || r.Addr != ipAddr("192.0.2.7", 80) {
		t.Fatalf("ip literal: %+v %v", r.Addr, err)
	}
	r, _, err = ParseRequest(styleRequest('A', "Example.COM", nil, nil), Draft11)
	if err != nil || r.Addr.Name != "example.com" {
		t.Fatalf("upper case: %+v %v", r.Addr, err)
	}
	// The zero Addr is written as 0.0.0.0:0, IPv4-mapped IPv6 stays IPv6.
	b, err := AppendRequest(nil, &Request{Command: CmdNoop}, Draft11)
	if err != nil || !bytes.Equal(b, hx(t, "060000000000000100000000")) {
		t.Errorf("zero addr: %x %v", b, err)
	}
	b, _ = AppendRequest(nil, &Request{Command: CmdConnect, Addr: ipAddr("::ffff:192.0.2.1", 1)}, Draft11)
	if b[7] != byte(AddrIPv6) || len(b) != 24 {
		t.Errorf("mapped address: %x", b)
	}
}

func TestAddrEncodeErrors(t *testing.T) {
	for _, a := range []gateway.Addr{
		{Name: strings.Repeat("a", 256)},
		{Name: "a\x00b"},
	} {
		buf := []byte("keep")
		got, err := AppendRequest(buf, &Request{Command: CmdConnect, Addr: a}, Draft11)
		if err == nil || string(got) != "keep" {
			t.Errorf("%q: %x %v", a.Name, got, err)
		}
		if _, err := AppendDatagram(nil, testAssoc, a, nil); err == nil {
			t.Errorf("datagram %q: no error", a.Name)
		}
	}
}

func TestDatagramNames(t *testing.T) {
	// Emitted unpadded, L = name length.
	b, err := AppendDatagram(nil, testAssoc, nameAddr(t, "a.io", 53), []byte{0xde, 0xad})
	if err != nil || !bytes.Equal(b, hx(t, "06030017 0102030405060708 03000035 04612e696f dead")) {
		t.Fatalf("datagram name: %x %v", b, err)
	}
	m, _, err := ParseUDPMessage(b)
	if err != nil || m.Addr != nameAddr(t, "a.io", 53) || !bytes.Equal(m.Payload, []byte{0xde, 0xad}) {
		t.Fatalf("parse: %+v %v", m, err)
	}
	// A [-12] sender counts padding in L: trailing NULs are stripped and no
	// padding is skipped.
	m, _, err = ParseUDPMessage(hx(t, "0603001a 0102030405060708 03000035 07612e696f000000 dead"))
	if err != nil || m.Addr.Name != "a.io" || !bytes.Equal(m.Payload, []byte{0xde, 0xad}) {
		t.Fatalf("padded name: %+v %v", m, err)
	}
	// An Error message never carries a name.
	_, _, err = ParseUDPMessage(hx(t, "06040018 0102030405060708 03000035 01610000 01020000 01020304"))
	if !errors.Is(err, ErrAddrType) {
		t.Errorf("error with name: %v", err)
	}
}
