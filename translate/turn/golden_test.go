package turn

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"

	"github.com/sixgate/sixgate/gateway"
)

func TestVectorsDecodeAndRoundTrip(t *testing.T) {
	for _, v := range vectors {
		b := vec(t, v.name)
		switch Demux(b) {
		case KindChannelData:
			if _, err := ParseChannelData(b); err != nil {
				t.Errorf("%s: %v", v.name, err)
			}
			continue
		case KindSTUN:
		default:
			t.Fatalf("%s: demux %v", v.name, Demux(b))
		}
		m := new(stun.Message)
		if err := Decode(b, m); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		// pion re-encode gives identical bytes.
		m2 := new(stun.Message)
		m2.Type, m2.TransactionID = m.Type, m.TransactionID
		m2.Attributes = m.Attributes
		m2.Encode()
		if !bytes.Equal(m2.Raw, b) {
			t.Errorf("%s: pion re-encode differs", v.name)
		}
		// Every getter survives every vector.
		readAll(m)
	}
}

func TestLongTermKeys(t *testing.T) {
	if got := hex.EncodeToString(tvKey); got != "2a66232175293bcde1bca9411750a88e" {
		t.Errorf("key %s", got)
	}
	if got := RESTPassword(tvSecret, tvREST); got != "7YoOTQIEHEpToIOnfJWTN/yXvkc=" {
		t.Errorf("rest password %s", got)
	}
	if got := hex.EncodeToString(RESTKey(tvREST, tvRealm, tvSecret)); got != "51e7c8c71a7b700c8486f7c0474d2e78" {
		t.Errorf("rest key %s", got)
	}
}

func TestTV1TV2Unauthenticated(t *testing.T) {
	m := decodeVec(t, "TV1")
	checkHeader(t, m, TypeAllocateRequest, "01")
	if Dispatch(m.Type) != ActionRequest {
		t.Errorf("dispatch %v", Dispatch(m.Type))
	}
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || a.Transport != ProtoUDP || a.RelayFamily() != FamilyIPv4 {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	_, err = ParseCredentials(m)
	if CodeOf(err) != stun.CodeUnauthorized || !errors.Is(err, ErrNoIntegrity) {
		t.Fatalf("ParseCredentials: %v", err)
	}
	sameBytes(t, "TV1", buildReq(t, TypeAllocateRequest, "01", "", nil, RequestedTransport{Protocol: ProtoUDP}).Raw)

	resp, err := NewUnauthorized(m, tvRealm, tvNonce, ResponseOptions{Key: tvKey})
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV2", resp.Raw)
	r := decodeVec(t, "TV2")
	checkHeader(t, r, TypeAllocateError, "01")
	var ec ErrorCodeAttr
	if err := ec.GetFrom(r); err != nil || ec.Code != 401 || ec.Reason != "Unauthorized" {
		t.Errorf("error code %+v %v", ec, err)
	}
	var realm stun.Realm
	var nonce stun.Nonce
	if err := r.Parse(&realm, &nonce); err != nil || realm.String() != tvRealm || nonce.String() != tvNonce {
		t.Errorf("realm %q nonce %q %v", realm, nonce, err)
	}
	if ReasonForResponse(r) != gateway.ReasonAuthFailed {
		t.Errorf("reason %v", ReasonForResponse(r))
	}
	if Dispatch(r.Type) != ActionDrop {
		t.Errorf("a response reaching the server must be dropped")
	}
}

func TestTV3TV4Allocate(t *testing.T) {
	m := decodeVec(t, "TV3")
	checkHeader(t, m, TypeAllocateRequest, "02")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV3", tvKey)
	if err := VerifyIntegrity(m, tvKey); err != nil {
		t.Fatal(err)
	}
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || a.Transport != ProtoUDP || a.DontFragment || a.EvenPort != nil || a.HasLifetime {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	if got := a.GrantedLifetime(0); got != 600*time.Second {
		t.Errorf("lifetime %v", got)
	}
	if u := UnknownRequired(m, nil); len(u) != 0 {
		t.Errorf("unknown %v", u)
	}
	sameBytes(t, "TV3", buildReq(t, TypeAllocateRequest, "02", tvUser, tvKey, RequestedTransport{Protocol: ProtoUDP}).Raw)

	resp, err := NewAllocateSuccess(m, AllocateResult{
		Relayed: []netip.AddrPort{tvRelay}, Lifetime: 600, Mapped: tvClient,
	}, ResponseOptions{Key: tvKey, Fingerprint: HasFingerprint(m)})
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV4", resp.Raw)
	checkSigned(t, "TV4", tvKey)
	r := decodeVec(t, "TV4")
	checkHeader(t, r, TypeAllocateSuccess, "02")
	res, err := ParseAllocateResponse(r)
	if err != nil || len(res.Relayed) != 1 || res.Relayed[0] != tvRelay || res.Lifetime != 600 ||
		res.Mapped != tvClient || res.ReservationToken != nil || res.AddressError != nil {
		t.Errorf("ParseAllocateResponse %+v %v", res, err)
	}
	if ErrorFromResponse("op", r) != nil {
		t.Error("success reported as an error")
	}
}

func TestTV5TV6CreatePermission(t *testing.T) {
	m := decodeVec(t, "TV5")
	checkHeader(t, m, TypeCreatePermissionRequest, "03")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV5", tvKey)
	peers, err := ParseCreatePermission(m)
	if err != nil || len(peers) != 2 || peers[0] != tvPeer || peers[1] != tvPeer2 {
		t.Fatalf("peers %v %v", peers, err)
	}
	for _, p := range peers {
		if err := CheckPeerFamily(p, FamilyIPv4); err != nil {
			t.Error(err)
		}
		if CodeOf(CheckPeerFamily(p, FamilyIPv6)) != stun.CodePeerAddrFamilyMismatch {
			t.Error("family mismatch not 443")
		}
	}
	// ForEach reads both too, through the typed getter.
	var got []netip.AddrPort
	err = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		var p PeerAddress
		if err := p.GetFrom(m); err != nil {
			return err
		}
		got = append(got, p.Addr)
		return nil
	})
	if err != nil || len(got) != 2 || got[1] != tvPeer2 {
		t.Errorf("ForEach %v %v", got, err)
	}
	sameBytes(t, "TV5", buildReq(t, TypeCreatePermissionRequest, "03", tvUser, tvKey,
		PeerAddress{Addr: tvPeer}, PeerAddress{Addr: tvPeer2}).Raw)

	resp, err := NewSuccess(m, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV6", resp.Raw)
	checkSigned(t, "TV6", tvKey)
	checkHeader(t, decodeVec(t, "TV6"), TypeCreatePermissionSuccess, "03")
}

func TestTV7TV8ChannelBind(t *testing.T) {
	m := decodeVec(t, "TV7")
	checkHeader(t, m, TypeChannelBindRequest, "04")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV7", tvKey)
	cb, err := ParseChannelBind(m)
	if err != nil || cb.Channel != 0x4000 || cb.Peer != tvPeer {
		t.Fatalf("ParseChannelBind %+v %v", cb, err)
	}
	var cn ChannelNumber
	if err := cn.GetFrom(m); err != nil || cn != 0x4000 {
		t.Errorf("channel %x %v", cn, err)
	}
	sameBytes(t, "TV7", buildReq(t, TypeChannelBindRequest, "04", tvUser, tvKey,
		ChannelNumber(0x4000), PeerAddress{Addr: tvPeer}).Raw)

	resp, err := NewSuccess(m, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV8", resp.Raw)
	checkSigned(t, "TV8", tvKey)
	checkHeader(t, decodeVec(t, "TV8"), TypeChannelBindSuccess, "04")
}

func TestTV9TV10ChannelData(t *testing.T) {
	for _, tc := range []struct {
		name   string
		padded bool
	}{{"TV9", false}, {"TV10", true}} {
		b := vec(t, tc.name)
		if Demux(b) != KindChannelData {
			t.Errorf("%s: demux %v", tc.name, Demux(b))
		}
		cd, err := ParseChannelData(b)
		if err != nil || cd.Number != 0x4000 || string(cd.Data) != "hello" {
			t.Errorf("%s: %+v %v", tc.name, cd, err)
		}
		got, err := AppendChannelData(nil, 0x4000, []byte("hello"), tc.padded)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, tc.name, got)
		_, size, err := FrameSize(b)
		if err != nil || size != 12 {
			t.Errorf("%s: frame size %d %v", tc.name, size, err)
		}
		// Zero-copy framing: payload read into buf[4:], header put after.
		buf := make([]byte, 16)
		copy(buf[4:], "hello")
		n, err := PutChannelDataHeader(buf, 0x4000, 5, tc.padded)
		if err != nil {
			t.Fatal(err)
		}
		sameBytes(t, tc.name, buf[:n])
	}
}

func TestTV11Send(t *testing.T) {
	m := decodeVec(t, "TV11")
	checkHeader(t, m, TypeSendIndication, "05")
	if Dispatch(m.Type) != ActionSend {
		t.Errorf("dispatch %v", Dispatch(m.Type))
	}
	s, err := ParseSend(m)
	if err != nil || s.Peer != tvPeer || string(s.Data) != "hello" || s.DontFragment {
		t.Fatalf("ParseSend %+v %v", s, err)
	}
	if s.SendMeta() != (gateway.DatagramMeta{}) {
		t.Errorf("meta %+v", s.SendMeta())
	}
	ind, err := NewSendIndication(tid("05"), tvPeer, []byte("hello"), false)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV11", ind.Raw)
	fast, err := AppendSendIndication(nil, tid("05"), tvPeer, []byte("hello"), false)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV11", fast)
}

func TestTV12Data(t *testing.T) {
	m := decodeVec(t, "TV12")
	checkHeader(t, m, TypeDataIndication, "06")
	if Dispatch(m.Type) != ActionDrop {
		t.Errorf("a Data indication from a client must be dropped")
	}
	d, err := ParseData(m)
	if err != nil || d.Peer != tvPeer || string(d.Data) != "world" || d.HasICMP {
		t.Fatalf("ParseData %+v %v", d, err)
	}
	ind, err := NewDataIndication(tid("06"), tvPeer, []byte("world"))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV12", ind.Raw)
	fast, err := AppendDataIndication(nil, tid("06"), tvPeer, []byte("world"))
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV12", fast)
}

func TestTV13ICMP(t *testing.T) {
	m := decodeVec(t, "TV13")
	checkHeader(t, m, TypeDataIndication, "07")
	// Attribute level: 8004 0008 0000 0b 00 00000000.
	raw, ok := m.Attributes.Get(AttrICMP)
	if !ok || hex.EncodeToString(raw.Value) != "00000b0000000000" {
		t.Fatalf("ICMP attribute %x", raw.Value)
	}
	var icmp ICMP
	if err := icmp.GetFrom(m); err != nil || icmp != (ICMP{Type: 11}) {
		t.Fatalf("ICMP %+v %v", icmp, err)
	}
	single := new(stun.Message)
	if err := (ICMP{Type: 11}).AddTo(single); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(single.Raw[20:]); got != "8004000800000b0000000000" {
		t.Errorf("ICMP TLV %s", got)
	}
	d, err := ParseData(m)
	if err != nil || !d.HasICMP || d.Peer != tvDNSPeer || d.Data != nil {
		t.Fatalf("ParseData %+v %v", d, err)
	}
	// The neutral error maps onto exactly this attribute and peer.
	ne := gateway.ICMPError{Type: gateway.ICMPv4TimeExceeded, Dest: tvDNSPeer,
		Reporter: netip.MustParseAddr("203.0.113.1")}
	icmp2, peer, ok := ICMPFromError(ne)
	if !ok || icmp2 != icmp || peer != tvDNSPeer {
		t.Fatalf("ICMPFromError %+v %v %v", icmp2, peer, ok)
	}
	ind, err := NewICMPIndication(tid("07"), peer, icmp2)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV13", ind.Raw)
	back := ErrorFromICMP(d.ICMP, d.Peer)
	if back.V6 || back.Type != 11 || back.Code != 0 || back.Dest != tvDNSPeer || back.MTU != 0 {
		t.Errorf("ErrorFromICMP %+v", back)
	}
	// The 7/9 reading's bytes decode under 8/8 as type 22.
	m79 := new(stun.Message)
	m79.Add(AttrICMP, []byte{0, 0, 0x16, 0, 0, 0, 0, 0})
	var i79 ICMP
	if err := i79.GetFrom(m79); err != nil || i79.Type != 22 || i79.Code != 0 {
		t.Errorf("7/9 form %+v %v", i79, err)
	}
	// ICMPv4 3/4 with next-hop MTU 1400: 0000 0304 00000578.
	icmp34, _, ok := ICMPFromError(gateway.ICMPError{Type: 3, Code: 4, MTU: 1400, Dest: tvDNSPeer})
	one := new(stun.Message)
	if err := icmp34.AddTo(one); err != nil || !ok {
		t.Fatal(err, ok)
	}
	if got := hex.EncodeToString(one.Raw[24:]); got != "0000030400000578" {
		t.Errorf("3/4 value %s", got)
	}
}

func TestTV14TV15EvenPort(t *testing.T) {
	m := decodeVec(t, "TV14")
	checkHeader(t, m, TypeAllocateRequest, "08")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV14", tvKey)
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || a.EvenPort == nil || !a.EvenPort.Reserve {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	opts := a.StackOptions()
	if !opts.PortParity.Pending() || opts.PortParity.Value != (gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}) {
		t.Errorf("port parity %+v", opts.PortParity)
	}
	sameBytes(t, "TV14", buildReq(t, TypeAllocateRequest, "08", tvUser, tvKey,
		RequestedTransport{Protocol: ProtoUDP}, EvenPort{Reserve: true}).Raw)

	token := ReservationToken{0x5a, 0x0c, 0x31, 0xd2, 0xe4, 0xf6, 0x7b, 0x98}
	assoc := &fakeAssoc{relay: tvRelay, res: &gateway.Reservation{Token: token}}
	assoc.opts = opts
	assoc.opts.PortParity.Apply(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
	g, err := a.CheckAssociation(FamilyIPv4, assoc)
	if err != nil || g.ReservationToken == nil || *g.ReservationToken != token {
		t.Fatalf("CheckAssociation %+v %v", g, err)
	}
	resp, err := NewAllocateSuccess(m, AllocateResult{
		Relayed: []netip.AddrPort{g.Relay}, Lifetime: LifetimeOf(a.GrantedLifetime(0)),
		ReservationToken: g.ReservationToken, Mapped: tvClient,
	}, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV15", resp.Raw)
	checkSigned(t, "TV15", tvKey)
	res, err := ParseAllocateResponse(decodeVec(t, "TV15"))
	if err != nil || res.ReservationToken == nil || *res.ReservationToken != token {
		t.Fatalf("ParseAllocateResponse %+v %v", res, err)
	}
	r, ok := ReservationFromResult(res, time.Unix(0, 0))
	if !ok || r.Addr.Port() != 49153 || r.Token != token || r.Expires != time.Unix(30, 0) {
		t.Errorf("reservation %+v", r)
	}
}

func TestTV16TV17DontFragment(t *testing.T) {
	m := decodeVec(t, "TV16")
	checkHeader(t, m, TypeAllocateRequest, "09")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV16", tvKey)
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || !a.DontFragment {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	if opts := a.StackOptions(); !opts.DF.Pending() || !opts.DF.Value {
		t.Errorf("DF %+v", opts.DF)
	}
	sameBytes(t, "TV16", buildReq(t, TypeAllocateRequest, "09", tvUser, tvKey,
		RequestedTransport{Protocol: ProtoUDP}, DontFragment{}).Raw)

	// A backend that cannot set DF: the Allocate gets 420 listing 0x001A.
	assoc := &fakeAssoc{relay: tvRelay}
	assoc.opts.DF.Unsupport()
	_, err = a.CheckAssociation(FamilyIPv4, assoc)
	if CodeOf(err) != stun.CodeUnknownAttribute || gateway.ReasonOf(err) != gateway.ReasonDFUnsupported {
		t.Fatalf("CheckAssociation: %v", err)
	}
	resp, err := NewErrorFor(m, err, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV17", resp.Raw)
	// The same from the neutral reason alone.
	resp, err = NewErrorFor(m, CodeErrorFor(stun.MethodAllocate,
		gateway.NewError(gateway.ReasonDFUnsupported, "direct: associate", nil)), tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV17", resp.Raw)
	checkSigned(t, "TV17", tvKey)

	r := decodeVec(t, "TV17")
	var u UnknownAttributes
	if err := u.GetFrom(r); err != nil || len(u) != 1 || u[0] != stun.AttrDontFragment {
		t.Errorf("unknown %v %v", u, err)
	}
	if got := ReasonForResponse(r); got != gateway.ReasonDFUnsupported {
		t.Errorf("reason %v", got)
	}
	if !IsDFRejected(ErrorFromResponse("turn: allocate", r)) {
		t.Error("DF rejection not recognised")
	}
	// pion's 4-byte form reads as intended too.
	p := new(stun.Message)
	if err := (stun.UnknownAttributes{stun.AttrDontFragment}).AddTo(p); err != nil {
		t.Fatal(err)
	}
	if err := u.GetFrom(p); err != nil || len(u) != 1 || u[0] != stun.AttrDontFragment {
		t.Errorf("pion form %v %v", u, err)
	}
}

func TestTV18TV19RefreshStaleNonce(t *testing.T) {
	m := decodeVec(t, "TV18")
	checkHeader(t, m, TypeRefreshRequest, "10")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV18", tvKey)
	r, err := ParseRefresh(m)
	if err != nil || !r.HasLifetime || r.Lifetime != 0 || r.Family != 0 {
		t.Fatalf("ParseRefresh %+v %v", r, err)
	}
	if r.GrantedLifetime(0) != 0 {
		t.Errorf("lifetime %v, want deletion", r.GrantedLifetime(0))
	}
	sameBytes(t, "TV18", buildReq(t, TypeRefreshRequest, "10", tvUser, tvKey, Lifetime(0)).Raw)

	// TV19 carries no FINGERPRINT although TV18 had one.
	resp, err := NewStaleNonce(m, tvRealm, tvNonce2, ResponseOptions{Key: tvKey})
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV19", resp.Raw)
	e := decodeVec(t, "TV19")
	checkHeader(t, e, TypeRefreshError, "10")
	var ec ErrorCodeAttr
	var nonce stun.Nonce
	if err := e.Parse(&ec, &nonce); err != nil || ec.Code != 438 || ec.Reason != "Stale Nonce" || nonce.String() != tvNonce2 {
		t.Errorf("438 %+v %q %v", ec, nonce, err)
	}
}

func TestTV20REST(t *testing.T) {
	m := decodeVec(t, "TV20")
	checkHeader(t, m, TypeAllocateRequest, "11")
	c, err := ParseCredentials(m)
	if err != nil || c.Username != tvREST {
		t.Fatalf("ParseCredentials %+v %v", c, err)
	}
	restKey := RESTKey(tvREST, tvRealm, tvSecret)
	checkSigned(t, "TV20", restKey)
	before := time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)
	// Newest secret first: the old one still verifies.
	key, err := AuthenticateREST(m, c.Username, tvRealm, []string{"rotated-newer", tvSecret}, before)
	if err != nil || !bytes.Equal(key, restKey) {
		t.Fatalf("AuthenticateREST %x %v", key, err)
	}
	m = decodeVec(t, "TV20")
	_, err = AuthenticateREST(m, c.Username, tvRealm, []string{"other"}, before)
	if CodeOf(err) != 401 || !errors.Is(err, ErrIntegrity) {
		t.Errorf("wrong secret: %v", err)
	}
	_, err = AuthenticateREST(m, c.Username, tvRealm, []string{tvSecret}, time.Unix(1893456001, 0))
	if CodeOf(err) != 401 || !errors.Is(err, ErrRESTExpired) {
		t.Errorf("expired: %v", err)
	}
	if _, err := AuthenticateREST(m, c.Username, tvRealm, []string{tvSecret}, time.Unix(1893456000, 0)); err != nil {
		t.Errorf("at the expiry second: %v", err)
	}
	sameBytes(t, "TV20", buildReq(t, TypeAllocateRequest, "11", tvREST, restKey,
		RequestedTransport{Protocol: ProtoUDP}).Raw)
}

func TestTV21AllocationMismatch(t *testing.T) {
	req := buildReq(t, TypeAllocateRequest, "12", tvUser, tvKey, RequestedTransport{Protocol: ProtoUDP})
	resp, err := NewError(req, stun.CodeAllocMismatch, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV21", resp.Raw)
	checkSigned(t, "TV21", tvKey)
	e := decodeVec(t, "TV21")
	checkHeader(t, e, TypeAllocateError, "12")
	var ec ErrorCodeAttr
	if err := ec.GetFrom(e); err != nil || ec.Code != 437 || ec.Reason != "Allocation Mismatch" {
		t.Errorf("437 %+v %v", ec, err)
	}
	if ReasonForResponse(e) != gateway.ReasonGeneral {
		t.Errorf("reason %v", ReasonForResponse(e))
	}
}

func TestTV22toTV26RFC6062(t *testing.T) {
	m := decodeVec(t, "TV22")
	checkHeader(t, m, TypeAllocateRequest, "13")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV22", tvKey)
	a, err := ParseAllocate(m, AllocateEnv{TCPRelays: true, StreamClient: true})
	if err != nil || a.Transport != ProtoTCP {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	if _, err := ParseAllocate(m, AllocateEnv{TCPRelays: true}); CodeOf(err) != 400 {
		t.Errorf("tcp over udp: %v", err)
	}
	if _, err := ParseAllocate(m, AllocateEnv{StreamClient: true}); CodeOf(err) != 442 {
		t.Errorf("tcp disabled: %v", err)
	}
	sameBytes(t, "TV22", buildReq(t, TypeAllocateRequest, "13", tvUser, tvKey,
		RequestedTransport{Protocol: ProtoTCP}).Raw)

	c := decodeVec(t, "TV23")
	checkHeader(t, c, TypeConnectRequest, "14")
	checkCreds(t, c, tvUser)
	checkSigned(t, "TV23", tvKey)
	peer, err := ParseConnect(c)
	if err != nil || peer != tvPeer {
		t.Fatalf("ParseConnect %v %v", peer, err)
	}
	sameBytes(t, "TV23", buildReq(t, TypeConnectRequest, "14", tvUser, tvKey, PeerAddress{Addr: tvPeer}).Raw)
	resp, err := NewConnectSuccess(c, 0x01020304, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV24", resp.Raw)
	checkSigned(t, "TV24", tvKey)
	var id ConnectionID
	if err := id.GetFrom(decodeVec(t, "TV24")); err != nil || id != 0x01020304 {
		t.Errorf("connection id %x %v", id, err)
	}

	b := decodeVec(t, "TV25")
	checkHeader(t, b, TypeConnectionBindRequest, "15")
	checkCreds(t, b, tvUser)
	checkSigned(t, "TV25", tvKey)
	if id, err := ParseConnectionBind(b); err != nil || id != 0x01020304 {
		t.Fatalf("ParseConnectionBind %x %v", id, err)
	}
	sameBytes(t, "TV25", buildReq(t, TypeConnectionBindRequest, "15", tvUser, tvKey, ConnectionID(0x01020304)).Raw)

	ca := decodeVec(t, "TV26")
	checkHeader(t, ca, TypeConnectionAttemptIndication, "16")
	id, peer, err = ParseConnectionAttempt(ca)
	if err != nil || id != 0x05060708 || peer != netip.MustParseAddrPort("127.0.0.1:60001") {
		t.Fatalf("ParseConnectionAttempt %x %v %v", id, peer, err)
	}
	ind, err := NewConnectionAttempt(tid("16"), 0x05060708, peer)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV26", ind.Raw)
}

func TestTV27TV28DualStack(t *testing.T) {
	m := decodeVec(t, "TV27")
	checkHeader(t, m, TypeAllocateRequest, "17")
	checkCreds(t, m, tvUser)
	checkSigned(t, "TV27", tvKey)
	a, err := ParseAllocate(m, AllocateEnv{})
	if err != nil || a.AdditionalFamily != FamilyIPv6 || a.Family != 0 {
		t.Fatalf("ParseAllocate %+v %v", a, err)
	}
	fams := a.Families()
	if len(fams) != 2 || fams[0] != FamilyIPv4 || fams[1] != FamilyIPv6 {
		t.Fatalf("families %v", fams)
	}
	if a.AssocRequest(FamilyIPv6).Family != 6 || a.AssocRequest(FamilyIPv4).Family != 4 {
		t.Error("assoc request families")
	}
	sameBytes(t, "TV27", buildReq(t, TypeAllocateRequest, "17", tvUser, tvKey,
		RequestedTransport{Protocol: ProtoUDP}, AdditionalAddressFamily(FamilyIPv6)).Raw)

	// The IPv6 relay fails with a family error: partial success.
	v6err := gateway.NewError(gateway.ReasonFamilyMismatch, "direct: associate", nil)
	ae := AddressErrorFor(FamilyIPv6, v6err)
	resp, err := NewAllocateSuccess(m, AllocateResult{
		Relayed: []netip.AddrPort{tvRelay}, Lifetime: 600, AddressError: &ae, Mapped: tvClient,
	}, tvSigned)
	if err != nil {
		t.Fatal(err)
	}
	sameBytes(t, "TV28", resp.Raw)
	checkSigned(t, "TV28", tvKey)
	res, err := ParseAllocateResponse(decodeVec(t, "TV28"))
	if err != nil || res.AddressError == nil ||
		*res.AddressError != (AddressErrorCode{Family: FamilyIPv6, Code: 440, Reason: "Address Family not Supported"}) {
		t.Fatalf("ParseAllocateResponse %+v %v", res, err)
	}
	// coturn's draft code points decode the same.
	d := new(stun.Message)
	d.Add(AttrAddressErrorCodeDraft, []byte{2, 0, 4, 40, 'x', 0})
	d.Add(AttrAdditionalAddressFamilyDraft, []byte{2, 0, 0, 0})
	var ae2 AddressErrorCode
	var af AdditionalAddressFamily
	if err := d.Parse(&ae2, &af); err != nil || ae2.Code != 440 || ae2.Reason != "x" || af != AdditionalAddressFamily(FamilyIPv6) {
		t.Errorf("draft code points %+v %v %v", ae2, af, err)
	}
}

// fakeAssoc is a gateway.Association for the outcome checks.
type fakeAssoc struct {
	relay netip.AddrPort
	opts  gateway.StackOptions
	res   *gateway.Reservation
}

func (f *fakeAssoc) RelayAddr() (gateway.Addr, bool) {
	return gateway.AddrFromAddrPort(f.relay), f.relay.IsValid()
}
func (f *fakeAssoc) Options() gateway.StackOptions { return f.opts }
func (f *fakeAssoc) Reservation() (gateway.Reservation, bool) {
	if f.res == nil {
		return gateway.Reservation{}, false
	}
	return *f.res, true
}
func (f *fakeAssoc) WriteTo([]byte, gateway.Addr, gateway.DatagramMeta) error { return nil }
func (f *fakeAssoc) ReadFrom([]byte) (gateway.Packet, error)                  { return gateway.Packet{}, nil }
func (f *fakeAssoc) Close() error                                             { return nil }

var _ gateway.Association = (*fakeAssoc)(nil)
