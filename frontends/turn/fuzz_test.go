package turn

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// fuzzEngine is a frontend built without listeners: packets go straight
// into its handler from a fixed 5-tuple.
type fuzzEngine struct {
	f      *Frontend
	src    *source
	pc     *net.UDPConn
	client *net.UDPConn
	m      *stun.Message
}

func newFuzzEngine(t testing.TB) *fuzzEngine {
	t.Helper()
	reg := gateway.NewRegistry()
	reg.Frontend("turn", Plugin())
	be := &fakeBackend{}
	reg.Backend("fake", gateway.BackendPlugin{
		NewConfig: func() any { return &struct{}{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Backend, error) {
			be.name = name
			return be, nil
		},
	})
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	hcl := serverConfig(int(apOf(pc).Port()), `permission_lifetime = "1s"`, "")
	cfg, diags := gateway.ParseConfig("fuzz.hcl", []byte(hcl), reg)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	rt, err := gateway.Build(cfg, gateway.Deps{Log: slog.New(slog.DiscardHandler), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	f := rt.Frontends[0].(*Frontend)
	e := &fuzzEngine{f: f, pc: pc, client: client, m: new(stun.Message)}
	e.src = &source{ep: newUDPEndpoint(pc), ttl: 64, tos: -1,
		tuple: fiveTuple{tr: transUDP, client: apOf(client), server: apOf(pc)}}
	t.Cleanup(e.close)
	return e
}

func (e *fuzzEngine) close() {
	for len(e.f.sem) > 0 {
		time.Sleep(time.Millisecond)
	}
	for _, a := range e.f.st.snapshot() {
		a.close(nil)
		a.wg.Wait()
	}
	e.f.rt.Retire()
	e.pc.Close()
	e.client.Close()
}

// sign rebuilds a decodable request with valid credentials for the
// engine's 5-tuple, so the fuzzer reaches the method handlers.
func (e *fuzzEngine) sign(b []byte) []byte {
	m := new(stun.Message)
	if tt.Decode(b, m) != nil || m.Type.Class != stun.ClassRequest {
		return b
	}
	setters := []stun.Setter{m.Type, stun.NewTransactionIDSetter(m.TransactionID)}
	for _, a := range m.Attributes {
		switch a.Type {
		case stun.AttrUsername, stun.AttrRealm, stun.AttrNonce, stun.AttrMessageIntegrity, stun.AttrFingerprint:
			continue
		}
		setters = append(setters, raw{a.Type, a.Value})
	}
	nonce := e.f.st.nonce(e.src.tuple, time.Now().Add(time.Hour))
	setters = append(setters, stun.NewUsername("alice"), stun.NewRealm("sixgate"), stun.NewNonce(nonce),
		stun.MessageIntegrity(tt.LongTermKey("alice", "sixgate", "s3cret")))
	out, err := stun.Build(setters...)
	if err != nil {
		return b
	}
	return out.Raw
}

func (e *fuzzEngine) feed(b []byte, sign bool) {
	if sign {
		b = e.sign(b)
	}
	e.f.handlePacket(context.Background(), b, e.src, e.m)
}

// FuzzHandlePacket feeds arbitrary client packets (optionally re-signed
// with valid credentials) into the engine: it must never panic.
func FuzzHandlePacket(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.b, s.sign)
	}
	e := newFuzzEngine(f)
	f.Fuzz(func(t *testing.T, b []byte, sign bool) {
		e.feed(b, sign)
		// The Allocate runs in its own goroutine; let it finish so the
		// next input sees its allocation.
		for len(e.f.sem) > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	})
}

type fuzzSeed struct {
	name string
	b    []byte
	sign bool
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzSeeds are requests of every method (signed by the harness) and a few
// turn.md §9 vectors as they are.
func fuzzSeeds() []fuzzSeed {
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
		if err != nil {
			panic(err)
		}
		return m.Raw
	}
	peer := tt.PeerAddress{Addr: netip.MustParseAddrPort("127.0.0.1:60000")}
	sendInd, _ := tt.AppendSendIndication(nil, [12]byte{1}, netip.MustParseAddrPort("127.0.0.1:60000"), []byte("hello"), true)
	cd, _ := tt.AppendChannelData(nil, 0x4000, []byte("hello"), false)
	return []fuzzSeed{
		{"allocate", build(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: 17}), true},
		{"allocate-even", build(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: 17}, tt.EvenPort{Reserve: true}, tt.DontFragment{}), true},
		{"allocate-dual", build(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: 17}, tt.AdditionalAddressFamily(2), tt.Lifetime(60)), true},
		{"refresh", build(tt.TypeRefreshRequest, tt.Lifetime(1200)), true},
		{"refresh-delete", build(tt.TypeRefreshRequest, tt.Lifetime(0), tt.RequestedAddressFamily(1)), true},
		{"permission", build(tt.TypeCreatePermissionRequest, peer, tt.PeerAddress{Addr: netip.MustParseAddrPort("[::1]:1")}), true},
		{"channelbind", build(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), peer), true},
		{"connect", build(tt.TypeConnectRequest, peer), true},
		{"allocate-tcp", build(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: 6}), true},
		{"connectionbind", build(tt.TypeConnectionBindRequest, tt.ConnectionID(0x01020304)), true},
		{"tv25", mustHex("000b00542112a442736978676174652d74763135002a00040102030400060005616c696365000000001400077369786761746500001500103461396632633631653062336438353700080014" +
			"53afb2d19bda836df25d0f165abe55a9a1f8f35080280004baa33480"), false},
		{"binding", build(stun.BindingRequest, stun.Fingerprint), false},
		{"send", sendInd, false},
		{"channeldata", cd, false},
		{"tv1", mustHex("000300082112a442736978676174652d747630310019000411000000"), false},
		{"tv3", mustHex("000300542112a442736978676174652d74763032001900041100000000060005616c696365000000001400077369786761746500001500103461396632633631653062336438353700080014b83ace9aa719c4c6a9069fdcc73efda67b1da28680280004538ca220"), false},
		{"tv9", mustHex("4000000568656c6c6f"), false},
		{"tv11", mustHex("001600182112a442736978676174652d74763035001200080001cb725e12a4430013000568656c6c6f000000"), false},
	}
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzHandlePacket when
// TURN_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TURN_WRITE_CORPUS") == "" {
		t.Skip("set TURN_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandlePacket")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(%v)\n", s.b, s.sign)
		if err := os.WriteFile(filepath.Join(dir, s.name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
