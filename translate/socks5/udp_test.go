package socks5

import (
	"bytes"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

var udpGolden = []struct {
	name    string
	wire    string
	h       UDPHeader
	payload string
}{
	{"ipv4 dns query", "0000 00 01 08080808 0035 'query'", UDPHeader{0, ipAddr("8.8.8.8", 53)}, "query"},
	{"ipv6", "0000 00 04 20014860486000000000000000008888 0035 'q'", UDPHeader{0, ipAddr("2001:4860:4860::8888", 53)}, "q"},
	{"domain", "0000 00 03 0b 'example.com' 0050 'data'", UDPHeader{0, nameAddr("example.com", 80)}, "data"},
	{"empty payload", "0000 00 01 c0000201 1234", UDPHeader{0, ipAddr("192.0.2.1", 0x1234)}, ""},
	{"fragment", "0000 02 01 c0000201 1234 'frag'", UDPHeader{2, ipAddr("192.0.2.1", 0x1234)}, "frag"},
	{"last fragment", "0000 81 01 c0000201 1234 'end'", UDPHeader{0x81, ipAddr("192.0.2.1", 0x1234)}, "end"},
}

func TestUDPHeaderGolden(t *testing.T) {
	for _, tt := range udpGolden {
		t.Run(tt.name, func(t *testing.T) {
			wire := hx(tt.wire)
			h, payload, err := ParseUDPHeader(wire)
			if err != nil {
				t.Fatal(err)
			}
			if h != tt.h || string(payload) != tt.payload {
				t.Errorf("parsed %+v %q, want %+v %q", h, payload, tt.h, tt.payload)
			}
			if len(payload) > 0 && &payload[0] != &wire[len(wire)-len(payload)] {
				t.Error("payload is not a sub-slice of the datagram")
			}
			enc, err := tt.h.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != tt.h.Len() {
				t.Errorf("Len() = %d, encoded %d bytes", tt.h.Len(), len(enc))
			}
			if enc = append(enc, tt.payload...); !bytes.Equal(enc, wire) {
				t.Errorf("encoded % x, want % x", enc, wire)
			}
		})
	}
}

func TestUDPHeaderNormalizes(t *testing.T) {
	// RSV is ignored; a mapped address and an IP literal name become IPs.
	for _, tt := range []struct {
		wire string
		addr gateway.Addr
	}{
		{"ffff 00 01 c0000201 0050", ipAddr("192.0.2.1", 80)},
		{"0000 00 04 00000000000000000000ffffc0000201 0050", ipAddr("192.0.2.1", 80)},
		{"0000 00 03 09 '192.0.2.1' 0050", ipAddr("192.0.2.1", 80)},
		{"0000 00 03 0c 'Example.COM.' 0050", nameAddr("example.com", 80)},
	} {
		h, _, err := ParseUDPHeader(hx(tt.wire))
		if err != nil || h.Addr != tt.addr {
			t.Errorf("%s: %v, %v; want %v", tt.wire, h.Addr, err, tt.addr)
		}
	}
}

func TestUDPHeaderErrors(t *testing.T) {
	tests := []struct {
		name   string
		wire   string
		field  string
		target error
	}{
		{"empty", "", "RSV", ErrShort},
		{"one byte", "00", "RSV", ErrShort},
		{"no frag", "0000", "FRAG", ErrShort},
		{"no atyp", "0000 00", "ATYP", ErrShort},
		{"bad atyp", "0000 00 02 c0000201 0050", "ATYP", ErrAddrType},
		{"atyp zero", "0000 00 00", "ATYP", ErrAddrType},
		{"ipv4 cut", "0000 00 01 c00002", "DST.ADDR", ErrShort},
		{"ipv4 no port", "0000 00 01 c0000201", "DST.PORT", ErrShort},
		{"ipv4 port cut", "0000 00 01 c0000201 00", "DST.PORT", ErrShort},
		{"ipv6 cut", "0000 00 04 2001", "DST.ADDR", ErrShort},
		{"domain no length", "0000 00 03", "DST.ADDR", ErrShort},
		{"domain cut", "0000 00 03 05 'abc'", "DST.ADDR", ErrShort},
		{"domain no port", "0000 00 03 03 'abc' 00", "DST.PORT", ErrShort},
		{"empty name", "0000 00 03 00 0050 'x'", "DST.ADDR", gateway.ErrBadName},
		{"name with nul", "0000 00 03 03 'a' 00 'b' 0050", "DST.ADDR", gateway.ErrBadName},
		{"name not ascii", "0000 00 03 03 'a' a9 'b' 0050", "DST.ADDR", gateway.ErrBadName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, payload, err := ParseUDPHeader(hx(tt.wire))
			wantFieldErr(t, err, tt.field, tt.target)
			if h != (UDPHeader{}) || payload != nil {
				t.Errorf("error with header %+v, payload %q", h, payload)
			}
		})
	}
	b := []byte{9}
	out, err := UDPHeader{Addr: nameAddr("a\x00b", 1)}.Append(b)
	wantFieldErr(t, err, "DST.ADDR", gateway.ErrBadName)
	if !bytes.Equal(out, b) {
		t.Errorf("failed Append changed the buffer: % x", out)
	}
}

func TestUDPHeaderPrepend(t *testing.T) {
	// The documented idiom: payload read behind MaxUDPHeaderLen bytes of
	// headroom, header appended in place in front of it.
	buf := make([]byte, MaxUDPHeaderLen+64)
	n := copy(buf[MaxUDPHeaderLen:], "payload")
	for _, h := range []UDPHeader{
		{Addr: ipAddr("192.0.2.1", 53)},
		{Addr: ipAddr("2001:db8::1", 53)},
		{Addr: nameAddr(name255, 53)},
	} {
		start := MaxUDPHeaderLen - h.Len()
		if _, err := h.Append(buf[start:start]); err != nil {
			t.Fatal(err)
		}
		got, payload, err := ParseUDPHeader(buf[start : MaxUDPHeaderLen+n])
		if err != nil || got != h || string(payload) != "payload" {
			t.Errorf("%v: %+v %q %v", h.Addr, got, payload, err)
		}
	}
	if got := (UDPHeader{Addr: nameAddr(name255, 0)}).Len(); got != MaxUDPHeaderLen {
		t.Errorf("longest header %d, MaxUDPHeaderLen %d", got, MaxUDPHeaderLen)
	}
}

func TestUDPHeaderZeroAlloc(t *testing.T) {
	v4 := hx("0000 00 01 c0000201 0035 'payload'")
	v6 := hx("0000 00 04 20010db8000000000000000000000001 0035 'payload'")
	mapped := hx("0000 00 04 00000000000000000000ffffc0000201 0035 'payload'")
	for name, dgram := range map[string][]byte{"ipv4": v4, "ipv6": v6, "ipv4-mapped": mapped} {
		allocs := testing.AllocsPerRun(1000, func() {
			h, p, err := ParseUDPHeader(dgram)
			if err != nil || h.Frag != 0 || len(p) != 7 {
				t.Fatal("parse failed")
			}
		})
		if allocs != 0 {
			t.Errorf("ParseUDPHeader %s: %v allocations, want 0", name, allocs)
		}
	}
	for name, bad := range map[string][]byte{"short": v4[:3], "bad atyp": hx("0000 00 07 00"), "short addr": v6[:10]} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, _, err := ParseUDPHeader(bad); err == nil {
				t.Fatal("no error")
			}
		})
		if allocs != 0 {
			t.Errorf("ParseUDPHeader error %s: %v allocations, want 0", name, allocs)
		}
	}
	buf := make([]byte, 0, MaxUDPHeaderLen)
	for _, h := range []UDPHeader{{Addr: ipAddr("192.0.2.1", 53)}, {Addr: ipAddr("2001:db8::1", 53)}, {Addr: nameAddr("example.com", 53)}} {
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := h.Append(buf[:0]); err != nil {
				t.Fatal(err)
			}
			_ = h.Len()
		})
		if allocs != 0 {
			t.Errorf("Append %v: %v allocations, want 0", h.Addr, allocs)
		}
	}
}

func BenchmarkParseUDPHeader(b *testing.B) {
	for _, bm := range []struct{ name, wire string }{
		{"ipv4", "0000 00 01 c0000201 0035"},
		{"ipv6", "0000 00 04 20010db8000000000000000000000001 0035"},
		{"domain", "0000 00 03 0b 'example.com' 0050"},
	} {
		dgram := append(hx(bm.wire), make([]byte, 512)...)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(dgram)))
			for b.Loop() {
				if _, _, err := ParseUDPHeader(dgram); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendUDPHeader(b *testing.B) {
	buf := make([]byte, 0, MaxUDPHeaderLen)
	for _, bm := range []struct {
		name string
		h    UDPHeader
	}{
		{"ipv4", UDPHeader{Addr: ipAddr("192.0.2.1", 53)}},
		{"ipv6", UDPHeader{Addr: ipAddr("2001:db8::1", 53)}},
		{"domain", UDPHeader{Addr: nameAddr("example.com", 80)}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.h.Append(buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadRequest(b *testing.B) {
	for _, bm := range []struct{ name, wire string }{
		{"ipv4", "05 01 00 01 c0000201 0050"},
		{"domain", "05 01 00 03 0b 'example.com' 0050"},
	} {
		wire := hx(bm.wire)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(wire)
			for b.Loop() {
				r.Reset(wire)
				if _, err := ReadRequest(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReplyAppend(b *testing.B) {
	buf := make([]byte, 0, 64)
	p := Reply{Code: RepSucceeded, Bound: ipAddr("192.0.2.1", 1080)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Append(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadGreeting(b *testing.B) {
	wire := hx("05 02 00 02")
	r := bytes.NewReader(wire)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(wire)
		if _, err := ReadGreeting(r); err != nil {
			b.Fatal(err)
		}
	}
}
