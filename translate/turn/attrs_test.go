package turn

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun"
)

// msgWith returns a message holding one attribute of type t with value v.
func msgWith(t stun.AttrType, v []byte) *stun.Message {
	m := new(stun.Message)
	m.WriteHeader()
	m.Add(t, v)
	return m
}

func TestFixedLengthGetters(t *testing.T) {
	tests := []struct {
		t    stun.AttrType
		good []byte
		g    stun.Getter
	}{
		{stun.AttrChannelNumber, []byte{0x40, 0, 0, 0}, new(ChannelNumber)},
		{stun.AttrLifetime, []byte{0, 0, 2, 0x58}, new(Lifetime)},
		{stun.AttrEvenPort, []byte{0x80}, new(EvenPort)},
		{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}, new(RequestedTransport)},
		{stun.AttrDontFragment, nil, DontFragment{}},
		{stun.AttrReservationToken, []byte{1, 2, 3, 4, 5, 6, 7, 8}, new(ReservationToken)},
		{stun.AttrConnectionID, []byte{1, 2, 3, 4}, new(ConnectionID)},
		{stun.AttrRequestedAddressFamily, []byte{1, 0, 0, 0}, new(RequestedAddressFamily)},
		{AttrAdditionalAddressFamily, []byte{2, 0, 0, 0}, new(AdditionalAddressFamily)},
		{AttrICMP, []byte{0, 0, 3, 4, 0, 0, 5, 0x78}, new(ICMP)},
	}
	for _, tc := range tests {
		name := AttrName(tc.t)
		if err := tc.g.GetFrom(msgWith(tc.t, tc.good)); err != nil {
			t.Errorf("%s: good value: %v", name, err)
		}
		if err := tc.g.GetFrom(new(stun.Message)); !errors.Is(err, ErrMissing) || !errors.Is(err, stun.ErrAttributeNotFound) {
			t.Errorf("%s: missing: %v", name, err)
		}
		for _, n := range []int{0, len(tc.good) - 1, len(tc.good) + 1, len(tc.good) + 4} {
			if n < 0 || n == len(tc.good) {
				continue
			}
			v := make([]byte, n)
			if n > 0 && len(tc.good) > 0 {
				v[0] = tc.good[0]
			}
			err := tc.g.GetFrom(msgWith(tc.t, v))
			var ae *AttrError
			if !errors.Is(err, ErrAttrLength) || !errors.As(err, &ae) || ae.Type != tc.t {
				t.Errorf("%s: length %d: %v", name, n, err)
			}
		}
		// Round trip: AddTo of the decoded value gives the same bytes.
		s, ok := tc.g.(stun.Setter)
		if !ok {
			s = derefSetter(tc.g)
		}
		m := new(stun.Message)
		m.WriteHeader()
		if err := s.AddTo(m); err != nil {
			t.Fatalf("%s: AddTo: %v", name, err)
		}
		got, _ := m.Attributes.Get(tc.t)
		if string(got.Value) != string(tc.good) {
			t.Errorf("%s: round trip %x, want %x", name, got.Value, tc.good)
		}
	}
}

// derefSetter returns the value behind a pointer getter as a Setter.
func derefSetter(g stun.Getter) stun.Setter {
	switch v := g.(type) {
	case *ChannelNumber:
		return *v
	case *Lifetime:
		return *v
	case *EvenPort:
		return *v
	case *RequestedTransport:
		return *v
	case *ReservationToken:
		return *v
	case *ConnectionID:
		return *v
	case *RequestedAddressFamily:
		return *v
	case *AdditionalAddressFamily:
		return *v
	case *ICMP:
		return *v
	}
	panic("no setter")
}

func TestEvenPortRBit(t *testing.T) {
	for _, tc := range []struct {
		b       byte
		reserve bool
	}{{0x00, false}, {0x80, true}, {0xff, true}, {0x7f, false}} {
		var e EvenPort
		if err := e.GetFrom(msgWith(stun.AttrEvenPort, []byte{tc.b})); err != nil || e.Reserve != tc.reserve {
			t.Errorf("%#x: %+v %v", tc.b, e, err)
		}
	}
}

func TestFamilies(t *testing.T) {
	var f RequestedAddressFamily
	err := f.GetFrom(msgWith(stun.AttrRequestedAddressFamily, []byte{3, 0, 0, 0}))
	if !errors.Is(err, ErrBadFamily) || f != 3 {
		t.Errorf("family 3: %v %v", f, err)
	}
	if err := RequestedAddressFamily(3).AddTo(new(stun.Message)); !errors.Is(err, ErrBadFamily) {
		t.Errorf("AddTo family 3: %v", err)
	}
	if Family(1).String() != "ipv4" || Family(2).String() != "ipv6" || Family(0x33).String() != "0x33" {
		t.Error("Family.String")
	}
}

func TestXORAddr(t *testing.T) {
	var id [12]byte
	copy(id[:], "sixgate-tv99")
	for _, s := range []string{"127.0.0.1:49152", "[2001:db8::1]:443", "[::ffff:127.0.0.1]:80", "0.0.0.0:0"} {
		ap := netip.MustParseAddrPort(s)
		v, err := AppendXORAddr(nil, ap, id)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseXORAddr(v, id)
		if err != nil || got != ap {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	// The IPv4-mapped address stays IPv6 (family byte 02) and mismatches an
	// IPv4 relay: coturn answers 443.
	mapped := netip.MustParseAddrPort("[::ffff:127.0.0.1]:80")
	v, _ := AppendXORAddr(nil, mapped, id)
	if v[1] != 2 || len(v) != 20 {
		t.Errorf("mapped encoded as %x", v)
	}
	if CodeOf(CheckPeerFamily(mapped, FamilyIPv4)) != 443 {
		t.Error("mapped peer accepted on an IPv4 relay")
	}
	if _, err := AppendXORAddr(nil, netip.AddrPort{}, id); !errors.Is(err, ErrBadFamily) {
		t.Errorf("zero addr: %v", err)
	}
	bad := [][]byte{
		nil, {0}, {0, 1, 0}, {0, 1, 0, 0, 1, 2}, // the 6-byte value pion accepts
		{0, 1, 0, 0, 1, 2, 3, 4, 5}, {0, 2, 0, 0, 1, 2, 3, 4},
		{0, 3, 0, 0, 1, 2, 3, 4}, make([]byte, 21),
	}
	for _, b := range bad {
		if _, err := ParseXORAddr(b, id); err == nil {
			t.Errorf("%x accepted", b)
		}
	}
	// An empty XOR-PEER-ADDRESS at the end of a tightly sized buffer makes
	// pion's GetFromAs panic; ours reports it.
	m := new(stun.Message)
	m.WriteHeader()
	m.Add(stun.AttrXORPeerAddress, nil)
	m2 := new(stun.Message)
	if err := Decode(append([]byte(nil), m.Raw...), m2); err != nil {
		t.Fatal(err)
	}
	var pa PeerAddress
	if err := pa.GetFrom(m2); !errors.Is(err, ErrAttrLength) {
		t.Errorf("empty value: %v", err)
	}
	if _, err := PeerAddresses(m2); !errors.Is(err, ErrAttrLength) {
		t.Errorf("PeerAddresses: %v", err)
	}
}

func TestErrorCodeAttr(t *testing.T) {
	var e ErrorCodeAttr
	if err := e.GetFrom(msgWith(stun.AttrErrorCode, []byte("\x00\x00\x04\x26Wrong nonce\x00"))); err != nil ||
		e.Code != 438 || e.Reason != "Wrong nonce" {
		t.Errorf("coturn NUL: %+v %v", e, err)
	}
	for _, v := range [][]byte{{0, 0, 4}, {0, 0, 2, 0}, {0, 0, 7, 0}, {0, 0, 4, 100}} {
		if err := e.GetFrom(msgWith(stun.AttrErrorCode, v)); err == nil {
			t.Errorf("%x accepted", v)
		}
	}
	if err := (ErrorCodeAttr{Code: 200}).AddTo(new(stun.Message)); !errors.Is(err, ErrAttrValue) {
		t.Errorf("code 200: %v", err)
	}
	if err := (ErrorCodeAttr{Code: 400, Reason: strings.Repeat("x", 764)}).AddTo(new(stun.Message)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long reason: %v", err)
	}
	var a AddressErrorCode
	if err := a.GetFrom(msgWith(AttrAddressErrorCode, []byte{3, 0, 4, 40})); !errors.Is(err, ErrBadFamily) {
		t.Errorf("family 3: %v", err)
	}
	if err := (AddressErrorCode{Family: 3, Code: 440}).AddTo(new(stun.Message)); !errors.Is(err, ErrBadFamily) {
		t.Errorf("AddTo family 3: %v", err)
	}
	if ReasonPhrase(599) != "Error" || ReasonPhrase(508) != "Insufficient Capacity" {
		t.Error("ReasonPhrase")
	}
}

func TestUnknownAttributesOdd(t *testing.T) {
	var u UnknownAttributes
	if err := u.GetFrom(msgWith(stun.AttrUnknownAttributes, []byte{0, 0x1a, 0})); !errors.Is(err, ErrAttrLength) {
		t.Errorf("odd length: %v", err)
	}
}

func TestDataLimits(t *testing.T) {
	var d Data
	if err := d.GetFrom(msgWith(stun.AttrData, nil)); err != nil || len(d) != 0 {
		t.Errorf("empty DATA: %v", err)
	}
	m := new(stun.Message)
	m.WriteHeader()
	if err := Data(make([]byte, 0xFFF8)).AddTo(m); err != nil {
		t.Errorf("largest DATA: %v", err)
	}
	if err := Data(make([]byte, 0xFFF9)).AddTo(new(stun.Message)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize DATA: %v", err)
	}
	if _, err := NewDataIndication(tid("01"), tvPeer, make([]byte, 0xFFF0)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize indication: %v", err)
	}
	if _, err := AppendDataIndication(nil, tid("01"), tvPeer, make([]byte, 0xFFF0)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize fast indication: %v", err)
	}
	if _, err := AppendDataIndication(nil, tid("01"), netip.AddrPort{}, nil); !errors.Is(err, ErrBadFamily) {
		t.Errorf("zero peer: %v", err)
	}
}

func TestIndicationsIPv6AndDF(t *testing.T) {
	peer := netip.MustParseAddrPort("[2001:db8::7]:5000")
	slow, err := NewSendIndication(tid("40"), peer, []byte("abc"), true)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := AppendSendIndication(make([]byte, 0, 128), tid("40"), peer, []byte("abc"), true)
	if err != nil || string(fast) != string(slow.Raw) {
		t.Fatalf("fast %x\nslow %x %v", fast, slow.Raw, err)
	}
	m := new(stun.Message)
	if err := Decode(fast, m); err != nil {
		t.Fatal(err)
	}
	s, err := ParseSend(m)
	if err != nil || s.Peer != peer || string(s.Data) != "abc" || !s.DontFragment || !s.SendMeta().DF {
		t.Errorf("ParseSend %+v %v", s, err)
	}
	d, err := NewDataIndication(tid("41"), peer, nil)
	if err != nil {
		t.Fatal(err)
	}
	fd, _ := AppendDataIndication(nil, tid("41"), peer, nil)
	if string(fd) != string(d.Raw) {
		t.Errorf("empty data: %x vs %x", fd, d.Raw)
	}
}
