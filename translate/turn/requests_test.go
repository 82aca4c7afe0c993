package turn

import (
	"testing"
	"time"

	"github.com/pion/stun"
)

func allocate(t *testing.T, attrs ...stun.Setter) *stun.Message {
	t.Helper()
	return buildReq(t, TypeAllocateRequest, "50", tvUser, tvKey, attrs...)
}

func TestParseAllocateRules(t *testing.T) {
	udp := RequestedTransport{Protocol: ProtoUDP}
	tcp := RequestedTransport{Protocol: ProtoTCP}
	tok := ReservationToken{1}
	raw := func(t stun.AttrType, v ...byte) stun.RawAttribute { return stun.RawAttribute{Type: t, Value: v} }
	stream := AllocateEnv{TCPRelays: true, StreamClient: true}
	tests := []struct {
		name  string
		env   AllocateEnv
		attrs []stun.Setter
		code  stun.ErrorCode
	}{
		{"plain", AllocateEnv{}, []stun.Setter{udp}, 0},
		{"no transport", AllocateEnv{}, nil, 400},
		{"short transport", AllocateEnv{}, []stun.Setter{raw(stun.AttrRequestedTransport, 17)}, 400},
		{"two transports", AllocateEnv{}, []stun.Setter{udp, udp}, 400},
		{"sctp", AllocateEnv{}, []stun.Setter{RequestedTransport{Protocol: 132}}, 442},
		{"tcp disabled", AllocateEnv{StreamClient: true}, []stun.Setter{tcp}, 442},
		{"tcp over udp", AllocateEnv{TCPRelays: true}, []stun.Setter{tcp}, 400},
		{"tcp + df", stream, []stun.Setter{tcp, DontFragment{}}, 400},
		{"tcp + even", stream, []stun.Setter{tcp, EvenPort{}}, 400},
		{"tcp + token", stream, []stun.Setter{tcp, tok}, 400},
		{"df with a value", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrDontFragment, 1)}, 400},
		{"bad lifetime", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrLifetime, 1)}, 400},
		{"bad even-port", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrEvenPort, 0x80, 0)}, 400},
		{"bad token", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrReservationToken, 1)}, 400},
		{"token + even", AllocateEnv{}, []stun.Setter{udp, tok, EvenPort{}}, 400},
		{"token + family", AllocateEnv{}, []stun.Setter{udp, tok, RequestedAddressFamily(FamilyIPv4)}, 400},
		{"token + additional", AllocateEnv{}, []stun.Setter{udp, tok, AdditionalAddressFamily(FamilyIPv6)}, 400},
		{"both families", AllocateEnv{}, []stun.Setter{udp, RequestedAddressFamily(FamilyIPv6), AdditionalAddressFamily(FamilyIPv6)}, 400},
		{"family 3", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrRequestedAddressFamily, 3, 0, 0, 0)}, 440},
		{"short family", AllocateEnv{}, []stun.Setter{udp, raw(stun.AttrRequestedAddressFamily, 2)}, 400},
		{"even R + additional", AllocateEnv{}, []stun.Setter{udp, EvenPort{Reserve: true}, AdditionalAddressFamily(FamilyIPv6)}, 400},
		{"even R=0 + additional", AllocateEnv{}, []stun.Setter{udp, EvenPort{}, AdditionalAddressFamily(FamilyIPv6)}, 0},
		{"additional ipv4", AllocateEnv{}, []stun.Setter{udp, raw(AttrAdditionalAddressFamily, 1, 0, 0, 0)}, 400},
		{"additional 3", AllocateEnv{}, []stun.Setter{udp, raw(AttrAdditionalAddressFamily, 3, 0, 0, 0)}, 400},
		{"draft additional", AllocateEnv{}, []stun.Setter{udp, raw(AttrAdditionalAddressFamilyDraft, 2, 0, 0, 0)}, 0},
		{"ipv6", AllocateEnv{}, []stun.Setter{udp, RequestedAddressFamily(FamilyIPv6), Lifetime(60)}, 0},
		{"tcp", stream, []stun.Setter{tcp}, 0},
	}
	for _, tc := range tests {
		m := allocate(t, tc.attrs...)
		_, err := ParseAllocate(m, tc.env)
		if got := CodeOf(err); got != tc.code {
			t.Errorf("%s: code %d (%v), want %d", tc.name, got, err, tc.code)
		}
	}
	if _, err := ParseAllocate(decodeVec(t, "TV18"), AllocateEnv{}); CodeOf(err) != 400 {
		t.Errorf("a Refresh parsed as Allocate: %v", err)
	}
	a, _ := ParseAllocate(allocate(t, udp, RequestedAddressFamily(FamilyIPv6), Lifetime(60)), AllocateEnv{})
	if a.RelayFamily() != FamilyIPv6 || len(a.Families()) != 1 || a.GrantedLifetime(0) != DefaultLifetime {
		t.Errorf("ipv6 allocate %+v", a)
	}
}

func TestParseOtherRequests(t *testing.T) {
	peer := PeerAddress{Addr: tvPeer}
	bind := func(attrs ...stun.Setter) *stun.Message {
		return buildReq(t, TypeChannelBindRequest, "51", tvUser, tvKey, attrs...)
	}
	for _, tc := range []struct {
		name string
		m    *stun.Message
		code stun.ErrorCode
	}{
		{"ok", bind(ChannelNumber(0x4FFF), peer), 0},
		{"0x3fff", bind(ChannelNumber(0x3FFF), peer), 400},
		{"0x5000", bind(ChannelNumber(0x5000), peer), 400},
		{"no channel", bind(peer), 400},
		{"no peer", bind(ChannelNumber(0x4000)), 400},
		{"two peers", bind(ChannelNumber(0x4000), peer, peer), 400},
		{"two channels", bind(ChannelNumber(0x4000), ChannelNumber(0x4001), peer), 400},
		{"short channel", bind(stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0}}, peer), 400},
	} {
		if _, err := ParseChannelBind(tc.m); CodeOf(err) != tc.code {
			t.Errorf("ChannelBind %s: %v", tc.name, err)
		}
	}
	cp := buildReq(t, TypeCreatePermissionRequest, "52", tvUser, tvKey, peer,
		stun.RawAttribute{Type: stun.AttrXORPeerAddress, Value: []byte{0, 1, 0, 0, 1, 2}})
	if _, err := ParseCreatePermission(cp); CodeOf(err) != 400 {
		t.Errorf("CreatePermission with a malformed peer: %v", err)
	}
	if _, err := ParseCreatePermission(buildReq(t, TypeCreatePermissionRequest, "52", tvUser, tvKey)); CodeOf(err) != 400 {
		t.Errorf("CreatePermission without peers: %v", err)
	}
	for _, attrs := range [][]stun.Setter{
		{peer},
		{Data("a")},
		{peer, Data("a"), Data("b")},
		{peer, peer, Data("a")},
	} {
		m, _ := stun.Build(append([]stun.Setter{TypeSendIndication, stun.NewTransactionIDSetter(tid("53"))}, attrs...)...)
		if _, err := ParseSend(m); err == nil {
			t.Errorf("Send %v accepted", m)
		}
	}
	rf := buildReq(t, TypeRefreshRequest, "54", tvUser, tvKey,
		stun.RawAttribute{Type: stun.AttrRequestedAddressFamily, Value: []byte{3, 0, 0, 0}})
	if _, err := ParseRefresh(rf); CodeOf(err) != 443 {
		t.Errorf("Refresh family 3: %v", err)
	}
	rf = buildReq(t, TypeRefreshRequest, "54", tvUser, tvKey, RequestedAddressFamily(FamilyIPv6), Lifetime(7200))
	r, err := ParseRefresh(rf)
	if err != nil || r.Family != FamilyIPv6 || r.GrantedLifetime(0) != time.Hour {
		t.Errorf("Refresh %+v %v", r, err)
	}
	if _, err := ParseConnect(buildReq(t, TypeConnectRequest, "55", tvUser, tvKey)); CodeOf(err) != 400 {
		t.Errorf("Connect without peer: %v", err)
	}
	if _, err := ParseConnectionBind(buildReq(t, TypeConnectionBindRequest, "56", tvUser, tvKey)); CodeOf(err) != 400 {
		t.Errorf("ConnectionBind without id: %v", err)
	}
}

func TestLifetimes(t *testing.T) {
	tests := []struct {
		req     Lifetime
		present bool
		max     time.Duration
		alloc   time.Duration
		refresh time.Duration
	}{
		{0, false, 0, 600 * time.Second, 600 * time.Second},
		{0, true, 0, 600 * time.Second, 0},
		{60, true, 0, 600 * time.Second, 600 * time.Second},
		{900, true, 0, 900 * time.Second, 900 * time.Second},
		{7200, true, 0, 3600 * time.Second, 3600 * time.Second},
		{7200, true, 1200 * time.Second, 1200 * time.Second, 1200 * time.Second},
		{7200, true, 300 * time.Second, 600 * time.Second, 600 * time.Second},
		{0xFFFFFFFF, true, 2 * time.Hour, time.Hour, time.Hour},
	}
	for _, tc := range tests {
		if got := AllocateLifetime(tc.req, tc.present, tc.max); got != tc.alloc {
			t.Errorf("allocate %d/%v/%v: %v, want %v", tc.req, tc.present, tc.max, got, tc.alloc)
		}
		if got := RefreshLifetime(tc.req, tc.present, tc.max); got != tc.refresh {
			t.Errorf("refresh %d/%v/%v: %v, want %v", tc.req, tc.present, tc.max, got, tc.refresh)
		}
	}
	if LifetimeOf(-time.Second) != 0 || LifetimeOf(90*time.Second) != 90 || LifetimeOf(1<<62) != 0xFFFFFFFF {
		t.Error("LifetimeOf")
	}
}
