package turn

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/pion/stun"
)

// Native fuzz targets, one per parser. Their seed corpora in
// testdata/fuzz/<FuzzName>/ hold every turn.md §9 vector (regenerate with
// TURN_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus); plain go test runs
// them.

func FuzzParseChannelData(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		cd, err := ParseChannelData(b)
		if err != nil {
			return
		}
		if !ValidChannel(cd.Number) || len(cd.Data) > len(b)-4 {
			t.Fatalf("bad result %+v", cd)
		}
		out, err := AppendChannelData(nil, cd.Number, cd.Data, false)
		if err != nil || !bytes.Equal(out, b[:len(out)]) {
			t.Fatalf("re-encode %x vs %x: %v", out, b, err)
		}
		if k, size, err := FrameSize(b); err != nil || k != KindChannelData || size != ChannelDataSize(len(cd.Data), true) {
			t.Fatalf("FrameSize %v %d %v", k, size, err)
		}
	})
}

// chunkReader returns at most n bytes per Read.
type chunkReader struct {
	b []byte
	n int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func FuzzFramer(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, chunk uint8) {
		// Reference: FrameSize over the whole input.
		var want [][]byte
		rest := b
		var wantErr bool
		for len(rest) > 0 {
			_, size, err := FrameSize(rest)
			if err != nil || size > 4096 {
				wantErr = true
				break
			}
			if size == 0 || size > len(rest) {
				break
			}
			want = append(want, rest[:size])
			rest = rest[size:]
		}
		fr := NewFramer(&chunkReader{b: b, n: int(chunk) + 1}, make([]byte, 4096))
		for i := 0; ; i++ {
			got, err := fr.Next()
			if err != nil {
				if i < len(want) {
					t.Fatalf("frame %d: %v", i, err)
				}
				switch {
				case wantErr:
					if err == io.EOF || err == io.ErrUnexpectedEOF {
						t.Fatalf("framing error reported as %v", err)
					}
				case len(rest) == 0 && err != io.EOF:
					t.Fatalf("clean end reported as %v", err)
				case len(rest) > 0 && err != io.ErrUnexpectedEOF:
					t.Fatalf("cut frame reported as %v", err)
				}
				return
			}
			if i >= len(want) {
				t.Fatalf("extra frame %d", i)
			}
			w := want[i]
			switch got.Kind {
			case KindSTUN:
				if !bytes.Equal(got.Raw, w) {
					t.Fatalf("frame %d differs", i)
				}
				_ = Decode(got.Raw, new(stun.Message))
			case KindChannelData:
				cd, err := ParseChannelData(w)
				if err != nil || cd.Number != got.Channel || !bytes.Equal(cd.Data, got.Data) ||
					!bytes.Equal(got.Raw, w[:4+len(cd.Data)]) {
					t.Fatalf("frame %d: %+v vs %+v (%v)", i, got, cd, err)
				}
			default:
				t.Fatalf("frame kind %v", got.Kind)
			}
		}
	})
}

// getterRoundTrip decodes with g, re-encodes the value in a fresh message
// with the same transaction ID, decodes it again and compares.
func getterRoundTrip(t *testing.T, m *stun.Message, g stun.Getter) {
	if err := g.GetFrom(m); err != nil {
		return
	}
	s, ok := g.(stun.Setter)
	if !ok {
		s = reflect.ValueOf(g).Elem().Interface().(stun.Setter)
	}
	m2 := new(stun.Message)
	m2.TransactionID = m.TransactionID
	m2.WriteHeader()
	if err := s.AddTo(m2); err != nil {
		t.Fatalf("%T: AddTo of a decoded value: %v", g, err)
	}
	g2 := reflect.New(reflect.TypeOf(g).Elem()).Interface().(stun.Getter)
	if err := g2.GetFrom(m2); err != nil {
		t.Fatalf("%T: GetFrom of a re-encoded value: %v", g, err)
	}
	// An empty reason phrase is written as the canonical one.
	switch v := g.(type) {
	case *ErrorCodeAttr:
		if v.Reason == "" {
			v.Reason = ReasonPhrase(v.Code)
		}
	case *AddressErrorCode:
		if v.Reason == "" {
			v.Reason = ReasonPhrase(v.Code)
		}
	}
	if !reflect.DeepEqual(reflect.ValueOf(g).Elem().Interface(), reflect.ValueOf(g2).Elem().Interface()) {
		t.Fatalf("%T: %+v became %+v", g, g, g2)
	}
}

func allGetters() []stun.Getter {
	return []stun.Getter{
		new(ChannelNumber), new(Lifetime), new(EvenPort), new(RequestedTransport),
		new(ReservationToken), new(ConnectionID), new(RequestedAddressFamily),
		new(AdditionalAddressFamily), new(Data), new(ICMP), new(AddressErrorCode),
		new(ErrorCodeAttr), new(UnknownAttributes), new(PeerAddress), new(RelayedAddress),
		new(MappedAddress), new(DontFragment),
	}
}

// FuzzGetters runs every attribute getter on arbitrary messages as pion
// decodes them (without Decode's extra checks) and round-trips each value
// that decodes.
func FuzzGetters(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &stun.Message{Raw: append([]byte(nil), b...)}
		if err := m.Decode(); err != nil {
			return
		}
		readAll(m)
		for _, g := range allGetters() {
			getterRoundTrip(t, m, g)
		}
	})
}

// FuzzAttribute puts one attribute of any type and value in a message and
// runs every getter on it.
func FuzzAttribute(f *testing.F) {
	f.Fuzz(func(t *testing.T, typ uint16, v []byte, id []byte) {
		if len(v) > 0xFFF0 {
			return
		}
		m := new(stun.Message)
		copy(m.TransactionID[:], id)
		m.WriteHeader()
		m.Add(stun.AttrType(typ), v)
		readAll(m)
		for _, g := range allGetters() {
			getterRoundTrip(t, m, g)
		}
		if ap, err := ParseXORAddr(v, m.TransactionID); err == nil {
			out, err := AppendXORAddr(nil, ap, m.TransactionID)
			if err != nil || !bytes.Equal(out[1:], v[1:]) {
				t.Fatalf("xor address %x became %x (%v)", v, out, err)
			}
		}
	})
}

// FuzzDecode decodes a client packet as the server does and reads every
// TURN attribute and request form from it.
func FuzzDecode(f *testing.F) {
	now := time.Unix(1800000000, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		switch Demux(b) {
		case KindChannelData:
			_, _ = ParseChannelData(b)
			return
		case KindSTUN:
		default:
			return
		}
		m := new(stun.Message)
		if err := Decode(b, m); err != nil {
			return
		}
		if len(m.Raw) != HeaderSize+int(m.Length) || int(binary.BigEndian.Uint16(m.Raw[2:4])) != int(m.Length) {
			t.Fatalf("raw %d, length %d", len(m.Raw), m.Length)
		}
		readAll(m)
		_ = Dispatch(m.Type)
		c, err := ParseCredentials(m)
		if err == nil {
			_, _ = AuthenticateREST(m, c.Username, tvRealm, []string{tvSecret}, now)
		}
		_ = VerifyIntegrity(m, tvKey)
		readAll(m)
		if u := UnknownRequired(m, nil); len(u) > 0 {
			if _, err := NewUnknownAttributes(m, u, tvSigned); err != nil {
				t.Fatalf("420: %v", err)
			}
		}
		if m.Type.Class == stun.ClassRequest {
			if _, err := NewError(m, 400, ResponseOptions{Software: "sixgate", Key: tvKey, Fingerprint: true}); err != nil {
				t.Fatalf("400: %v", err)
			}
		}
		if s, err := ParseSend(m); err == nil {
			fast, err := AppendSendIndication(nil, m.TransactionID, s.Peer, s.Data, s.DontFragment)
			if err != nil {
				t.Fatalf("re-encode send: %v", err)
			}
			m2 := new(stun.Message)
			if err := Decode(fast, m2); err != nil {
				t.Fatalf("decode re-encoded send: %v", err)
			}
			s2, err := ParseSend(m2)
			if err != nil || s2.Peer != s.Peer || !bytes.Equal(s2.Data, s.Data) || s2.DontFragment != s.DontFragment {
				t.Fatalf("send round trip %+v vs %+v (%v)", s, s2, err)
			}
		}
		if a, err := ParseAllocate(m, AllocateEnv{TCPRelays: true, StreamClient: true}); err == nil {
			for _, fam := range a.Families() {
				_ = a.AssocRequest(fam)
			}
			_ = a.GrantedLifetime(0)
		}
	})
}

func FuzzRESTUsername(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		exp, user, err := ParseRESTUsername(s)
		if err != nil {
			return
		}
		if exp.Unix() < 0 {
			t.Fatalf("negative expiry %v", exp)
		}
		u := RESTUsername(exp, user)
		exp2, user2, err := ParseRESTUsername(u)
		if err != nil || !exp2.Equal(exp) || user2 != user {
			t.Fatalf("%q -> %q: %v %q %v", s, u, exp2, user2, err)
		}
		_ = CheckRESTExpiry(s, time.Unix(1800000000, 0))
	})
}

func FuzzEmbeddedIPv4(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) != 16 {
			return
		}
		ip := netip.AddrFrom16([16]byte(b))
		if v4, ok := EmbeddedIPv4(ip); ok && !v4.Is4() {
			t.Fatalf("%v -> %v", ip, v4)
		}
	})
}
