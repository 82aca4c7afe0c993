package turn

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
)

const (
	tvUser   = "alice"
	tvPass   = "s3cret"
	tvRealm  = "sixgate"
	tvNonce  = "4a9f2c61e0b3d857"
	tvNonce2 = "7c1e5b08a2d4f693"
	tvSecret = "sixgate-shared-secret"
	tvREST   = "1893456000:alice"
)

var (
	tvKey     = LongTermKey(tvUser, tvRealm, tvPass)
	tvClient  = netip.MustParseAddrPort("127.0.0.1:50000")
	tvRelay   = netip.MustParseAddrPort("127.0.0.1:49152")
	tvPeer    = netip.MustParseAddrPort("127.0.0.1:60000")
	tvPeer2   = netip.MustParseAddrPort("198.51.100.7:0")
	tvDNSPeer = netip.MustParseAddrPort("198.51.100.7:53")
	tvZero    = time.Time{}
	tvSigned  = ResponseOptions{Key: tvKey, Fingerprint: true}
)

// vec returns the bytes of vector name.
func vec(t testing.TB, name string) []byte {
	t.Helper()
	for _, v := range vectors {
		if v.name == name {
			b, err := hex.DecodeString(v.hex)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no vector %s", name)
	return nil
}

// tid returns the transaction ID "sixgate-tvNN".
func tid(n string) [stun.TransactionIDSize]byte {
	var id [stun.TransactionIDSize]byte
	copy(id[:], "sixgate-tv"+n)
	return id
}

// decodeVec decodes vector name with Decode.
func decodeVec(t testing.TB, name string) *stun.Message {
	t.Helper()
	m := new(stun.Message)
	if err := Decode(vec(t, name), m); err != nil {
		t.Fatalf("%s: Decode: %v", name, err)
	}
	return m
}

// authTail returns the setters of an authenticated request's tail.
func authTail(user string, key []byte) []stun.Setter {
	return []stun.Setter{
		stun.NewUsername(user), stun.NewRealm(tvRealm), stun.NewNonce(tvNonce),
		stun.MessageIntegrity(key), stun.Fingerprint,
	}
}

// buildReq builds a request of type typ with transaction ID n, attrs and,
// when user is set, the authenticated tail.
func buildReq(t testing.TB, typ stun.MessageType, n string, user string, key []byte, attrs ...stun.Setter) *stun.Message {
	t.Helper()
	s := []stun.Setter{typ, stun.NewTransactionIDSetter(tid(n))}
	s = append(s, attrs...)
	if user != "" {
		s = append(s, authTail(user, key)...)
	}
	m, err := stun.Build(s...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return m
}

// sameBytes fails unless got equals vector name byte for byte.
func sameBytes(t testing.TB, name string, got []byte) {
	t.Helper()
	want := vec(t, name)
	if !bytes.Equal(got, want) {
		t.Errorf("%s mismatch\n got %x\nwant %x", name, got, want)
	}
}

// checkSigned verifies MI with key (and that a wrong key fails) on a copy.
func checkSigned(t testing.TB, name string, key []byte) {
	t.Helper()
	m := decodeVec(t, name)
	if err := VerifyIntegrity(m, key); err != nil {
		t.Errorf("%s: VerifyIntegrity: %v", name, err)
	}
	m = decodeVec(t, name)
	if err := VerifyIntegrity(m, LongTermKey(tvUser, tvRealm, "wrong")); err == nil {
		t.Errorf("%s: VerifyIntegrity with a wrong key passed", name)
	} else if CodeOf(err) != stun.CodeUnauthorized {
		t.Errorf("%s: wrong key code %d, want 401", name, CodeOf(err))
	}
}

func checkHeader(t testing.TB, m *stun.Message, typ stun.MessageType, n string) {
	t.Helper()
	if m.Type != typ {
		t.Errorf("type %v, want %v", m.Type, typ)
	}
	if m.TransactionID != tid(n) {
		t.Errorf("transaction id %q, want sixgate-tv%s", m.TransactionID[:], n)
	}
}

func checkCreds(t testing.TB, m *stun.Message, user string) {
	t.Helper()
	c, err := ParseCredentials(m)
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	if c != (Credentials{Username: user, Realm: tvRealm, Nonce: tvNonce}) {
		t.Errorf("credentials %+v", c)
	}
}
