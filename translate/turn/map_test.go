package turn

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/pion/stun"

	"github.com/sixgate/sixgate/gateway"
)

func TestCodeForReason(t *testing.T) {
	A, C, P := stun.MethodAllocate, stun.MethodConnect, stun.MethodCreatePermission
	tests := []struct {
		m    stun.Method
		r    gateway.Reason
		code stun.ErrorCode
	}{
		{A, gateway.ReasonNone, 0},
		{A, gateway.ReasonGeneral, 500},
		{C, gateway.ReasonGeneral, 447},
		{A, gateway.ReasonNotAllowed, 403},
		{P, gateway.ReasonNotAllowed, 403},
		{A, gateway.ReasonAuthFailed, 401},
		{C, gateway.ReasonRefused, 447},
		{C, gateway.ReasonTimeout, 447},
		{C, gateway.ReasonHostUnreachable, 447},
		{C, gateway.ReasonNetUnreachable, 447},
		{C, gateway.ReasonTTLExpired, 447},
		{A, gateway.ReasonTimeout, 500},
		{A, gateway.ReasonCommandNotSupported, 442},
		{C, gateway.ReasonCommandNotSupported, 447},
		{P, gateway.ReasonCommandNotSupported, 500},
		{A, gateway.ReasonFamilyMismatch, 440},
		{A, gateway.ReasonAddrTypeNotSupported, 440},
		{P, gateway.ReasonFamilyMismatch, 443},
		{C, gateway.ReasonAddrTypeNotSupported, 443},
		{A, gateway.ReasonDFUnsupported, 420},
		{A, gateway.ReasonQuotaExceeded, 486},
		{A, gateway.ReasonCapacityExhausted, 508},
		{P, gateway.ReasonCapacityExhausted, 508},
		{A, gateway.Reason(200), 500},
	}
	for _, tc := range tests {
		if got := CodeForReason(tc.m, tc.r); got != tc.code {
			t.Errorf("%v/%v: %d, want %d", tc.m, tc.r, got, tc.code)
		}
	}
	if CodeErrorFor(A, nil) != nil {
		t.Error("nil error")
	}
	ce := CodeErrorFor(A, errors.New("boom"))
	if ce.Code != 500 || !errors.Is(ce, ce.Err) {
		t.Errorf("plain error: %+v", ce)
	}
}

func TestReasonForCode(t *testing.T) {
	tests := map[stun.ErrorCode]gateway.Reason{
		0: gateway.ReasonNone, 300: gateway.ReasonGeneral, 400: gateway.ReasonGeneral,
		401: gateway.ReasonAuthFailed, 403: gateway.ReasonNotAllowed, 405: gateway.ReasonNotAllowed,
		420: gateway.ReasonGeneral, 437: gateway.ReasonGeneral, 438: gateway.ReasonAuthFailed,
		440: gateway.ReasonFamilyMismatch, 441: gateway.ReasonAuthFailed,
		442: gateway.ReasonCommandNotSupported, 443: gateway.ReasonFamilyMismatch,
		446: gateway.ReasonGeneral, 447: gateway.ReasonTimeout, 486: gateway.ReasonQuotaExceeded,
		500: gateway.ReasonGeneral, 508: gateway.ReasonCapacityExhausted,
	}
	for code, want := range tests {
		if got := ReasonForCode(code); got != want {
			t.Errorf("%d: %v, want %v", code, got, want)
		}
	}
	// Round trip through a response.
	req := buildReq(t, TypeAllocateRequest, "70", "", nil, RequestedTransport{Protocol: ProtoUDP})
	resp, _ := NewError(req, 486, ResponseOptions{Software: "sixgate"})
	err := ErrorFromResponse("turn: allocate", resp)
	var re *ResponseError
	if gateway.ReasonOf(err) != gateway.ReasonQuotaExceeded || !errors.As(err, &re) || re.Code != 486 {
		t.Errorf("ErrorFromResponse: %v", err)
	}
	if err.Error() != "turn: allocate: quota exceeded: turn: server answered 486 allocation quota reached" {
		t.Errorf("message %q", err.Error())
	}
	bare, _ := stun.Build(TypeAllocateError, stun.NewTransactionIDSetter(tid("71")))
	if ReasonForResponse(bare) != gateway.ReasonGeneral {
		t.Error("error response without ERROR-CODE")
	}
	if ReasonForResponse(decodeVec(t, "TV11")) != gateway.ReasonGeneral {
		t.Error("an indication is not a response")
	}
	if _, err := NewErrorFor(req, nil, ResponseOptions{}); err == nil {
		t.Error("nil error answered")
	}
	if _, err := NewErrorFor(req, &CodeError{Code: 401}, ResponseOptions{}); err == nil {
		t.Error("401 without realm answered")
	}
	if _, err := NewUnauthorized(req, "", tvNonce, ResponseOptions{}); err == nil {
		t.Error("empty realm")
	}
}

func TestCheckAssociation(t *testing.T) {
	a := AllocateRequest{Transport: ProtoUDP, EvenPort: &EvenPort{Reserve: true}, DontFragment: true}
	ok := func() *fakeAssoc {
		f := &fakeAssoc{relay: tvRelay, res: &gateway.Reservation{Token: [8]byte{9}}}
		f.opts.DF.Apply(true)
		f.opts.PortParity.Apply(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
		return f
	}
	g, err := a.CheckAssociation(FamilyIPv4, ok())
	if err != nil || !g.DontFragment || g.ReservationToken == nil || g.ReservationToken[0] != 9 {
		t.Fatalf("grant %+v %v", g, err)
	}
	mapped := ok()
	mapped.relay = netip.MustParseAddrPort("[::ffff:127.0.0.1]:49152")
	if g, err := a.CheckAssociation(FamilyIPv4, mapped); err != nil || g.Relay != tvRelay {
		t.Errorf("mapped relay %+v %v", g, err)
	}
	tests := []struct {
		name string
		f    Family
		mod  func(*fakeAssoc)
		code stun.ErrorCode
	}{
		{"no relay", FamilyIPv4, func(f *fakeAssoc) { f.relay = netip.AddrPort{} }, 500},
		{"wrong family", FamilyIPv6, func(*fakeAssoc) {}, 440},
		{"df declined", FamilyIPv4, func(f *fakeAssoc) { f.opts.DF.Decline(false) }, 420},
		{"odd port", FamilyIPv4, func(f *fakeAssoc) { f.relay = netip.MustParseAddrPort("127.0.0.1:49153") }, 508},
		{"no reservation", FamilyIPv4, func(f *fakeAssoc) { f.res = nil }, 508},
		{"reserve declined", FamilyIPv4, func(f *fakeAssoc) { f.opts.PortParity.Decline(gateway.PortParity{Parity: gateway.ParityEven}) }, 508},
	}
	for _, tc := range tests {
		f := ok()
		tc.mod(f)
		if _, err := a.CheckAssociation(tc.f, f); CodeOf(err) != tc.code {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if got := AddressErrorFor(FamilyIPv6, gateway.NewError(gateway.ReasonCapacityExhausted, "x", nil)); got.Code != 508 {
		t.Errorf("capacity: %+v", got)
	}
	if got := AddressErrorFor(FamilyIPv6, &CodeError{Code: 440}); got.Code != 440 {
		t.Errorf("code error: %+v", got)
	}
	req := a.AssocRequest(FamilyIPv4)
	if req.Family != 4 || !req.Options.DF.Pending() || !req.Options.UDPError.Pending() || req.ReservationToken != nil {
		t.Errorf("assoc request %+v", req)
	}
	tok := ReservationToken{1, 2}
	b := AllocateRequest{Transport: ProtoUDP, ReservationToken: &tok}
	if r := b.AssocRequest(FamilyIPv4); r.ReservationToken == nil || r.ReservationToken[1] != 2 || r.Options.PortParity.Wanted() {
		t.Errorf("token request %+v", r)
	}
	if !ChannelMeta(true).DF || ChannelMeta(false).DF {
		t.Error("ChannelMeta")
	}
}

func TestAllocateAttributesClientSide(t *testing.T) {
	req := gateway.AssocRequest{Family: 6}
	req.Options.DF = gateway.Want(true)
	req.Options.PortParity = gateway.Want(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
	req.Options.TTL = gateway.Want[uint8](9)
	req.Options.UDPError = gateway.Want(true)
	setters, opts := AllocateAttributes(&req)
	m, err := stun.Build(append([]stun.Setter{TypeAllocateRequest, stun.NewTransactionIDSetter(tid("80"))}, setters...)...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || a.Family != FamilyIPv6 || !a.DontFragment || a.EvenPort == nil || !a.EvenPort.Reserve {
		t.Fatalf("round trip %+v %v", a, err)
	}
	if opts.TTL.Outcome != gateway.Unsupported || !opts.DF.Pending() {
		t.Errorf("opts %+v", opts)
	}
	tok := ReservationToken{1}
	ApplyAllocateResult(&opts, AllocateResult{Relayed: []netip.AddrPort{tvRelay}, ReservationToken: &tok})
	if opts.DF.Outcome != gateway.Applied || opts.PortParity.Outcome != gateway.Applied ||
		!opts.PortParity.Value.Reserve || opts.UDPError.Outcome != gateway.Applied {
		t.Errorf("outcomes %+v", opts)
	}

	// Odd parity cannot be asked; an odd relay port satisfies it anyway.
	odd := gateway.AssocRequest{ReservationToken: &[8]byte{7}}
	odd.Options.PortParity = gateway.Want(gateway.PortParity{Parity: gateway.ParityOdd})
	odd.Options.DF = gateway.Want(false)
	setters, opts = AllocateAttributes(&odd)
	m, _ = stun.Build(append([]stun.Setter{TypeAllocateRequest, stun.NewTransactionIDSetter(tid("81"))}, setters...)...)
	a, err = ParseAllocate(m, AllocateEnv{})
	if err != nil || a.ReservationToken == nil || a.EvenPort != nil || a.DontFragment || opts.DF.Outcome != gateway.Applied {
		t.Fatalf("token request %+v %v %+v", a, err, opts.DF)
	}
	ApplyAllocateResult(&opts, AllocateResult{Relayed: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:49153")}})
	if opts.PortParity.Outcome != gateway.Applied || opts.PortParity.Value.Parity != gateway.ParityOdd {
		t.Errorf("odd %+v", opts.PortParity)
	}
	var even gateway.StackOptions
	even.PortParity = gateway.Want(gateway.PortParity{Parity: gateway.ParityOdd})
	ApplyAllocateResult(&even, AllocateResult{Relayed: []netip.AddrPort{tvRelay}})
	if even.PortParity.Outcome != gateway.Declined {
		t.Errorf("odd wanted, even got: %+v", even.PortParity)
	}
	if _, ok := ReservationFromResult(AllocateResult{Relayed: []netip.AddrPort{tvRelay}}, tvZero); ok {
		t.Error("reservation without token")
	}
}

func TestICMPMapping(t *testing.T) {
	v4 := netip.MustParseAddrPort("198.51.100.7:53")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:53")
	tests := []struct {
		name string
		e    gateway.ICMPError
		ok   bool
		want ICMP
	}{
		{"v4 net unreachable", gateway.ICMPError{Type: 3, Code: 0, Dest: v4}, true, ICMP{Type: 3}},
		{"v4 port unreachable", gateway.ICMPError{Type: 3, Code: 3, Dest: v4}, true, ICMP{Type: 3, Code: 3}},
		{"v4 frag needed", gateway.ICMPError{Type: 3, Code: 4, MTU: 1400, Dest: v4}, true, ICMP{Type: 3, Code: 4, ErrorData: 1400}},
		{"v4 host unreachable keeps no mtu", gateway.ICMPError{Type: 3, Code: 1, MTU: 9, Dest: v4}, true, ICMP{Type: 3, Code: 1}},
		{"v4 ttl", gateway.ICMPError{Type: 11, Code: 1, Dest: v4}, true, ICMP{Type: 11, Code: 1}},
		{"v4 mapped dest", gateway.ICMPError{Type: 11, Dest: netip.MustParseAddrPort("[::ffff:198.51.100.7]:53")}, true, ICMP{Type: 11}},
		{"v4 echo reply", gateway.ICMPError{Type: 0, Dest: v4}, false, ICMP{}},
		{"v4 redirect", gateway.ICMPError{Type: 5, Dest: v4}, false, ICMP{}},
		{"v4 source quench", gateway.ICMPError{Type: 4, Dest: v4}, false, ICMP{}},
		{"v6 no route", gateway.ICMPError{V6: true, Type: 1, Dest: v6}, true, ICMP{Type: 1}},
		{"v6 ptb", gateway.ICMPError{V6: true, Type: 2, MTU: 1280, Dest: v6}, true, ICMP{Type: 2, ErrorData: 1280}},
		{"v6 hop limit", gateway.ICMPError{V6: true, Type: 3, Dest: v6}, true, ICMP{Type: 3}},
		{"v6 param problem", gateway.ICMPError{V6: true, Type: 4, Dest: v6}, false, ICMP{}},
		{"v6 type on v4 dest", gateway.ICMPError{V6: true, Type: 1, Dest: v4}, false, ICMP{}},
		{"no dest", gateway.ICMPError{Type: 3}, false, ICMP{}},
		{"local", gateway.ICMPError{Type: 3, Code: 4, MTU: 1500, Local: true, Dest: v4}, true, ICMP{Type: 3, Code: 4, ErrorData: 1500}},
	}
	for _, tc := range tests {
		icmp, peer, ok := ICMPFromError(tc.e)
		if ok != tc.ok || icmp != tc.want {
			t.Errorf("%s: %+v %v", tc.name, icmp, ok)
			continue
		}
		if !ok {
			continue
		}
		back := ErrorFromICMP(icmp, peer)
		if back.V6 != tc.e.V6 || back.Type != tc.e.Type || back.Code != tc.e.Code || back.MTU != icmp.ErrorData ||
			back.Dest != peer || back.Reporter.IsValid() {
			t.Errorf("%s: back %+v", tc.name, back)
		}
	}
}

func TestEmbeddedIPv4(t *testing.T) {
	tests := map[string]string{
		"::ffff:127.0.0.1":      "127.0.0.1",
		"::127.0.0.1":           "127.0.0.1",
		"64:ff9b::a9fe:a9fe":    "169.254.169.254",
		"2002:7f00:1::1":        "127.0.0.1",
		"::":                    "",
		"::1":                   "",
		"2001:db8::1":           "",
		"127.0.0.1":             "",
		"fe80::1":               "",
		"64:ff9b:1::a9fe:a9fe":  "",
		"::ffff:0:0":            "0.0.0.0",
		"2002:a9fe:a9fe:1:2::3": "169.254.169.254",
	}
	for in, want := range tests {
		got, ok := EmbeddedIPv4(netip.MustParseAddr(in))
		if ok != (want != "") || (ok && got.String() != want) {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
}
