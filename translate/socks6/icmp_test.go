package socks6

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func TestErrorCodeForICMP(t *testing.T) {
	tests := []struct {
		v6         bool
		typ, code  uint8
		want       ErrorCode
		reported   bool
		descriptor string
	}{
		// The digest's table.
		{false, 3, 0, ErrorCodeNetUnreachable, true, "v4 net unreachable"},
		{true, 1, 0, ErrorCodeNetUnreachable, true, "v6 no route"},
		{false, 3, 1, ErrorCodeHostUnreachable, true, "v4 host unreachable"},
		{true, 1, 3, ErrorCodeHostUnreachable, true, "v6 address unreachable"},
		{false, 11, 0, ErrorCodeTTLExpired, true, "v4 ttl exceeded in transit"},
		{true, 3, 0, ErrorCodeTTLExpired, true, "v6 hop limit exceeded"},
		{true, 2, 0, ErrorCodeDatagramTooBig, true, "v6 packet too big"},
		// Not reported.
		{false, 3, 3, 0, false, "v4 port unreachable"},
		{true, 1, 4, 0, false, "v6 port unreachable"},
		{false, 3, 4, 0, false, "v4 fragmentation needed"},
		{false, 3, 2, 0, false, "v4 protocol unreachable"},
		{false, 3, 5, 0, false, "v4 source route failed"},
		{false, 3, 8, 0, false, "v4 source host isolated"},
		{false, 11, 1, 0, false, "v4 reassembly time exceeded"},
		{true, 3, 1, 0, false, "v6 reassembly time exceeded"},
		{false, 12, 0, 0, false, "v4 parameter problem"},
		{true, 4, 0, 0, false, "v6 parameter problem"},
		{false, 2, 0, 0, false, "v4 type 2 is not packet too big"},
		{false, 0, 0, 0, false, "v4 echo reply"},
		{true, 128, 0, 0, false, "v6 echo request"},
		{false, 3, 16, 0, false, "v4 unknown unreachable code"},
		{true, 1, 7, 0, false, "v6 unknown unreachable code"},
		// Decided here: unknown net/host, prohibited, TOS, precedence.
		{false, 3, 6, ErrorCodeNetUnreachable, true, "v4 net unknown"},
		{false, 3, 7, ErrorCodeHostUnreachable, true, "v4 host unknown"},
		{false, 3, 9, ErrorCodeNetUnreachable, true, "v4 net prohibited"},
		{false, 3, 10, ErrorCodeHostUnreachable, true, "v4 host prohibited"},
		{false, 3, 11, ErrorCodeNetUnreachable, true, "v4 net unreachable for tos"},
		{false, 3, 12, ErrorCodeHostUnreachable, true, "v4 host unreachable for tos"},
		{false, 3, 13, ErrorCodeHostUnreachable, true, "v4 communication prohibited"},
		{false, 3, 14, ErrorCodeHostUnreachable, true, "v4 host precedence violation"},
		{false, 3, 15, ErrorCodeHostUnreachable, true, "v4 precedence cutoff"},
		{true, 1, 1, ErrorCodeHostUnreachable, true, "v6 administratively prohibited"},
		{true, 1, 2, ErrorCodeHostUnreachable, true, "v6 beyond scope"},
		{true, 1, 5, ErrorCodeHostUnreachable, true, "v6 policy failure"},
		{true, 1, 6, ErrorCodeHostUnreachable, true, "v6 reject route"},
	}
	for _, tt := range tests {
		got, ok := ErrorCodeForICMP(gateway.ICMPError{V6: tt.v6, Type: tt.typ, Code: tt.code})
		if got != tt.want || ok != tt.reported {
			t.Errorf("%s (%d/%d): %v %v, want %v %v", tt.descriptor, tt.typ, tt.code, got, ok, tt.want, tt.reported)
		}
	}
}

func TestErrorMessageFor(t *testing.T) {
	// TV15 from the neutral error.
	e := gateway.ICMPError{Type: 3, Code: 1, Dest: netip.MustParseAddrPort("198.51.100.7:53"), Reporter: ip("203.0.113.9")}
	m, ok := ErrorMessageFor(testAssoc, e)
	b, err := AppendUDPMessage(nil, &m)
	if !ok || err != nil || !bytes.Equal(b, hx(t, "0604001c010203040506070801000035c633640701020000cb007109")) {
		t.Fatalf("TV15: %x %v %v", b, ok, err)
	}
	// TV16.
	e = gateway.ICMPError{V6: true, Type: 2, MTU: 1280, Dest: netip.MustParseAddrPort("[2001:db8::53]:53"), Reporter: ip("2001:db8:ffff::1")}
	m, ok = ErrorMessageFor(testAssoc, e)
	b, _ = AppendUDPMessage(nil, &m)
	if !ok || !bytes.Equal(b, hx(t, "0604003401020304050607080400003520010db80000000000000000000000530404000020010db8ffff00000000000000000001")) {
		t.Fatalf("TV16: %x %v", b, ok)
	}
	// Mapped addresses are unmapped; a missing reporter is unspecified.
	e = gateway.ICMPError{Type: 11, Dest: netip.MustParseAddrPort("[::ffff:192.0.2.1]:7")}
	m, ok = ErrorMessageFor(testAssoc, e)
	b, _ = AppendUDPMessage(nil, &m)
	if !ok || !bytes.Equal(b, hx(t, "0604001c 0102030405060708 01000007 c0000201 01030000 00000000")) {
		t.Errorf("mapped: %x %v", b, ok)
	}
	if _, ok := ErrorMessageFor(testAssoc, gateway.ICMPError{Type: 3, Code: 3, Dest: e.Dest}); ok {
		t.Error("port unreachable must not be reported")
	}
	if _, ok := ErrorMessageFor(testAssoc, gateway.ICMPError{Type: 3}); ok {
		t.Error("an error without destination must not be reported")
	}
}

func TestICMPFor(t *testing.T) {
	v4, v6 := ipAddr("198.51.100.7", 53), ipAddr("2001:db8::53", 53)
	tests := []struct {
		code      ErrorCode
		dst       gateway.Addr
		v6        bool
		typ, icmp uint8
		ok        bool
	}{
		{ErrorCodeNetUnreachable, v4, false, 3, 0, true},
		{ErrorCodeNetUnreachable, v6, true, 1, 0, true},
		{ErrorCodeHostUnreachable, v4, false, 3, 1, true},
		{ErrorCodeHostUnreachable, v6, true, 1, 3, true},
		{ErrorCodeTTLExpired, v4, false, 11, 0, true},
		{ErrorCodeTTLExpired, v6, true, 3, 0, true},
		{ErrorCodeDatagramTooBig, v6, true, 2, 0, true},
		{ErrorCodeDatagramTooBig, v4, false, 3, 4, true},
		{5, v4, false, 0, 0, false},
		{0, v6, false, 0, 0, false},
	}
	for _, tt := range tests {
		m := UDPMessage{Type: UDPError, Assoc: testAssoc, Addr: tt.dst, Code: tt.code, Reporter: ip("192.0.2.99")}
		e, ok := ICMPFor(&m)
		if ok != tt.ok || (ok && (e.V6 != tt.v6 || e.Type != tt.typ || e.Code != tt.icmp ||
			e.Dest != tt.dst.AddrPort() || e.Reporter != m.Reporter)) {
			t.Errorf("code %d to %v: %+v %v", tt.code, tt.dst, e, ok)
		}
		// The canonical ICMP error maps back to the same code.
		if ok && (tt.v6 || tt.code != ErrorCodeDatagramTooBig) {
			if c, ok := ErrorCodeForICMP(e); !ok || c != tt.code {
				t.Errorf("code %d does not round-trip: %v %v", tt.code, c, ok)
			}
		}
	}
	if _, ok := ICMPFor(&UDPMessage{Type: UDPDatagram}); ok {
		t.Error("a datagram is not an ICMP error")
	}
}
