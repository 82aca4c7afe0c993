package turn

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/pion/stun"
)

func TestDecodeHazards(t *testing.T) {
	tv3 := vec(t, "TV3")
	m := new(stun.Message)
	// Trailing bytes after 20+Length are ignored and FINGERPRINT still checks.
	if err := Decode(append(append([]byte(nil), tv3...), 1, 2, 3, 4, 5), m); err != nil {
		t.Fatalf("trailing bytes: %v", err)
	}
	if len(m.Raw) != len(tv3) || VerifyIntegrity(m, tvKey) != nil {
		t.Error("raw not cut to its length")
	}
	// ChannelData whose bytes 4..7 are the cookie: not STUN.
	cd, _ := hex.DecodeString("4016000c2112a442736978676174652d74763035")
	if !stun.IsMessage(cd) {
		t.Fatal("premise: pion's IsMessage accepts it")
	}
	if err := Decode(cd, m); !errors.Is(err, ErrNotSTUN) {
		t.Errorf("channeldata with cookie: %v", err)
	}
	if Demux(cd) != KindChannelData {
		t.Errorf("demux %v", Demux(cd))
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"short", tv3[:19], ErrTruncated},
		{"cookie", patch(tv3, 4, 0x21, 0x12, 0xa4, 0x43), ErrBadCookie},
		{"length%4", patch(tv3, 2, 0x00, 0x53), ErrBadLength},
		{"truncated", tv3[:len(tv3)-4], ErrTruncated},
		{"fingerprint", patch(tv3, len(tv3)-1, 0x21), ErrFingerprint},
		{"bad attribute", patch(tv3, 22, 0x00, 0x60), ErrMalformed},
	}
	for _, tc := range tests {
		if err := Decode(tc.b, m); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// FINGERPRINT not last.
	fp, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("30")), stun.Fingerprint,
		RequestedTransport{Protocol: ProtoUDP})
	if err := Decode(fp.Raw, m); !errors.Is(err, ErrFingerprintNotLast) {
		t.Errorf("fingerprint not last: %v", err)
	}
}

func patch(b []byte, off int, v ...byte) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:], v)
	return c
}

func TestIntegrityRules(t *testing.T) {
	// An attribute after MESSAGE-INTEGRITY is not covered: dropped on success.
	req := buildReq(t, TypeAllocateRequest, "31", "", nil, RequestedTransport{Protocol: ProtoUDP},
		stun.NewUsername(tvUser), stun.NewRealm(tvRealm), stun.NewNonce(tvNonce), stun.MessageIntegrity(tvKey),
		Lifetime(1234), stun.Fingerprint)
	m := new(stun.Message)
	if err := Decode(req.Raw, m); err != nil {
		t.Fatal(err)
	}
	if u := UnknownRequired(m, func(t stun.AttrType) bool { return t != stun.AttrLifetime }); len(u) != 0 {
		t.Errorf("attribute after MI counted as unknown: %v", u)
	}
	if err := VerifyIntegrity(m, tvKey); err != nil {
		t.Fatal(err)
	}
	if m.Contains(stun.AttrLifetime) || !m.Contains(stun.AttrFingerprint) {
		t.Error("attributes after MI not trimmed as specified")
	}

	// MI-SHA256 only: unauthenticated.
	sha, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("32")),
		stun.NewUsername(tvUser), stun.NewRealm(tvRealm), stun.NewNonce(tvNonce),
		stun.RawAttribute{Type: stun.AttrMessageIntegritySHA256, Value: make([]byte, 32)})
	if _, err := ParseCredentials(sha); CodeOf(err) != 401 {
		t.Errorf("MI-SHA256 only: %v", err)
	}
	if u := UnknownRequired(sha, nil); len(u) != 0 {
		t.Errorf("MI-SHA256 unknown: %v", u)
	}
	// ACCESS-TOKEN: cannot authenticate.
	tok, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("33")),
		stun.RawAttribute{Type: AttrAccessToken, Value: []byte{1}},
		stun.NewUsername(tvUser), stun.NewRealm(tvRealm), stun.NewNonce(tvNonce), stun.MessageIntegrity(tvKey))
	if _, err := ParseCredentials(tok); CodeOf(err) != 401 {
		t.Errorf("access token: %v", err)
	}
	// USERHASH instead of USERNAME, or no NONCE: 400.
	uh, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("34")),
		stun.RawAttribute{Type: stun.AttrUserhash, Value: make([]byte, 32)},
		stun.NewRealm(tvRealm), stun.NewNonce(tvNonce), stun.MessageIntegrity(tvKey))
	if _, err := ParseCredentials(uh); CodeOf(err) != 400 {
		t.Errorf("userhash: %v", err)
	}
	nn, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("35")),
		stun.NewUsername(tvUser), stun.NewRealm(tvRealm), stun.MessageIntegrity(tvKey))
	if _, err := ParseCredentials(nn); CodeOf(err) != 400 || !errors.Is(err, ErrMissing) {
		t.Errorf("no nonce: %v", err)
	}
	// MI of the wrong length.
	short, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("36")),
		stun.RawAttribute{Type: stun.AttrMessageIntegrity, Value: make([]byte, 4)})
	if err := VerifyIntegrity(short, tvKey); CodeOf(err) != 401 || !errors.Is(err, ErrAttrLength) {
		t.Errorf("short MI: %v", err)
	}
	if err := VerifyIntegrity(decodeVec(t, "TV1"), tvKey); !errors.Is(err, ErrNoIntegrity) {
		t.Errorf("no MI: %v", err)
	}
}

func TestUnknownRequired(t *testing.T) {
	m, _ := stun.Build(TypeAllocateRequest, stun.NewTransactionIDSetter(tid("37")),
		RequestedTransport{Protocol: ProtoUDP},
		stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 0}}, // CHANGE-REQUEST
		stun.RawAttribute{Type: 0x0003, Value: []byte{0, 0, 0, 0}},
		stun.RawAttribute{Type: 0x7777},
		stun.RawAttribute{Type: 0xC001}, // optional: ignored
		stun.RawAttribute{Type: AttrMobilityTicket},
	)
	u := UnknownRequired(m, nil)
	if len(u) != 2 || u[0] != 0x0003 || u[1] != 0x7777 {
		t.Errorf("unknown %v", u)
	}
	resp, err := NewErrorFor(m, &CodeError{Code: 420, Unknown: u}, ResponseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got UnknownAttributes
	if err := got.GetFrom(resp); err != nil || len(got) != 2 {
		t.Errorf("420 body %v %v", got, err)
	}
	if v, _ := resp.Attributes.Get(stun.AttrUnknownAttributes); hex.EncodeToString(v.Value) != "00037777" {
		t.Errorf("2-byte encoding %x", v.Value)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		t    stun.MessageType
		want Action
	}{
		{stun.BindingRequest, ActionBinding},
		{stun.NewType(stun.MethodBinding, stun.ClassIndication), ActionDrop},
		{TypeAllocateRequest, ActionRequest},
		{TypeRefreshRequest, ActionRequest},
		{TypeCreatePermissionRequest, ActionRequest},
		{TypeChannelBindRequest, ActionRequest},
		{TypeConnectRequest, ActionRequest},
		{TypeConnectionBindRequest, ActionRequest},
		{stun.NewType(stun.MethodSend, stun.ClassRequest), ActionBadRequest},
		{stun.NewType(stun.MethodData, stun.ClassRequest), ActionBadRequest},
		{stun.NewType(stun.MethodConnectionAttempt, stun.ClassRequest), ActionBadRequest},
		{stun.NewType(0x0ABC, stun.ClassRequest), ActionBadRequest},
		{TypeSendIndication, ActionSend},
		{TypeDataIndication, ActionDrop},
		{TypeConnectionAttemptIndication, ActionDrop},
		{TypeAllocateSuccess, ActionDrop},
		{TypeAllocateError, ActionDrop},
	}
	for _, tc := range tests {
		if got := Dispatch(tc.t); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.t, got, tc.want)
		}
	}
	// The type words of turn.md §1.3.
	words := map[stun.MessageType]uint16{
		TypeAllocateRequest: 0x0003, TypeAllocateSuccess: 0x0103, TypeAllocateError: 0x0113,
		TypeRefreshRequest: 0x0004, TypeSendIndication: 0x0016, TypeDataIndication: 0x0017,
		TypeCreatePermissionRequest: 0x0008, TypeChannelBindRequest: 0x0009,
		TypeConnectRequest: 0x000a, TypeConnectionBindRequest: 0x000b,
		TypeConnectionAttemptIndication: 0x001c, TypeConnectError: 0x011a,
	}
	for mt, w := range words {
		if mt.Value() != w {
			t.Errorf("%v = %#04x, want %#04x", mt, mt.Value(), w)
		}
	}
}
