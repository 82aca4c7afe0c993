package socks6

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// vectorSeeds are every §9 vector and variant the digest quotes; every fuzz
// target's seed corpus holds all of them.
var vectorSeeds = []struct{ name, hex string }{
	{"tv01_connect", "0601000001bb0001c0000201"},
	{"tv02_advert_initial_data", "06010008005000030b6578616d706c652e636f6d000200080005020068656c6c6f"},
	{"tv02_go_style_c", "06010008005000030c6578616d706c652e636f6d000200080005020068656c6c6f"},
	{"tv03_0rtt_userpass", "06010010005000030b6578616d706c652e6f726700040010020104757365720470617373"},
	{"tv04_auth_success", "06000000"},
	{"tv05_auth_userpass_ok", "060000080004000802010000"},
	{"tv05_auth_userpass_fail", "060100080004000802010100"},
	{"tv06_select_method2", "060100080003000802000000"},
	{"tv06_libsocks6msg_kind2", "060100080002000802000000"},
	{"tv07_opreply_ipv6", "06000000c350000420010db8000000000000000000000001"},
	{"tv08_opreply_host_unreachable", "060400000000000100000000"},
	{"tv09_udp_associate", "06030010000000010000000000010008850102000001000885020101"},
	{"tv09_no_options", "060300000000000100000000"},
	{"tv09_draft10", "06030010000000010000000000010008850100000001000885020001"},
	{"tv10_opreply_udp", "060000109c400001c633640100010008850102000001000885020101"},
	{"tv11_assoc_init", "0601000c0102030405060708"},
	{"tv12_assoc_confirm", "0602000c0102030405060708"},
	{"tv13_datagram", "06030018010203040506070801000035c6336407deadbeef"},
	{"tv13_go_order", "06030018010203040506070800350001c6336407deadbeef"},
	{"tv14_receive_first", "0603001401020304050607080100000000000000"},
	{"tv15_error", "0604001c010203040506070801000035c633640701020000cb007109"},
	{"tv15_draft09", "0604001c010203040506070801000035c633640702010000cb007109"},
	{"tv15_go_order", "0604001c010203040506070800350001c633640700000201cb007109"},
	{"tv16_error_too_big", "0604003401020304050607080400003520010db80000000000000000000000530404000020010db8ffff00000000000000000001"},
	{"tv17_port_parity", "0001000885020101"},
	{"tv17_draft10", "0001000885020001"},
	{"tv17_go", "0001000885020102"},
	{"tv18_ttl", "0001000881034000"},
	{"tv18_df", "00010008c1040200"},
	{"tv18_df_draft10", "00010008c1040000"},
	{"tv18_happy_eyeballs", "0001000881020200"},
	{"tv18_happy_eyeballs_draft10", "0001000881020000"},
	{"tv19_version_mismatch", "06"},
	{"tv20_noop_session", "0600000c000000010000000000050004000b000800000010"},
	{"tv21_session_window", "060000180006000c0102030405060708000c000c0000100000000010"},
	{"tv22_connect_in_session", "0601001401bb0001c00002010006000c0102030405060708000d000800000010"},
	{"tv22_session_ok", "0600000800080004000e0004"},
	{"tv22_bad_session", "0601000400090004"},
	{"tv22_teardown", "0600001000000001000000000006000c0102030405060708000a0004"},
	{"tv23_stack_options", "0601001801bb0001c000020100010008c101100000010008840103e80001000884020200"},
	{"tv24_bind_backlog", "0602000800000001000000000001000884030005"},
	{"tv25_style_a", "060100000050000304612e696f000000"},
	{"tv25_style_b", "060100000050000307612e696f000000"},
	{"tv25_style_c", "060100000050000308612e696f000000"},
	{"rfc1929_request", "0104757365720470617373"},
	{"rfc1929_reply", "0100"},
	{"socks5_greeting", "050100"},
}

// fuzzTargets lists every fuzz target, with a generator of extra seeds.
var fuzzTargets = map[string]func(g *gen) []byte{
	"FuzzRequest": func(g *gen) []byte {
		r := g.request(Draft11)
		b, _ := AppendRequest(nil, &r, Draft11)
		return b
	},
	"FuzzAuthReply": func(g *gen) []byte {
		r := g.authReply(Draft11)
		b, _ := AppendAuthReply(nil, &r, Draft11)
		return b
	},
	"FuzzOpReply": func(g *gen) []byte {
		r := g.opReply(Draft11)
		b, _ := AppendOpReply(nil, &r, Draft11)
		return b
	},
	"FuzzOptions": func(g *gen) []byte {
		o := g.options(Draft11, true)
		b, _ := AppendOptions(nil, &o, Draft11)
		return b
	},
	"FuzzStackOption": func(g *gen) []byte {
		b, _ := AppendStackOption(nil, g.stack(Draft11), Draft11)
		return b
	},
	"FuzzUDPMessage":   func(g *gen) []byte { return udpSeed(g, 0) },
	"FuzzDatagram":     func(g *gen) []byte { return udpSeed(g, UDPDatagram) },
	"FuzzErrorMessage": func(g *gen) []byte { return udpSeed(g, UDPError) },
	"FuzzAssocInit":    func(g *gen) []byte { return udpSeed(g, UDPInit) },
	"FuzzAssocConfirm": func(g *gen) []byte { return udpSeed(g, UDPConfirm) },
	"FuzzUserPass": func(g *gen) []byte {
		b, _ := AppendUserPassRequest(nil, UserPassRequest{Username: g.name(), Password: string(g.bytes(g.r.IntN(16)))})
		return b
	},
	"FuzzReadRequest": func(g *gen) []byte {
		r := g.request(Draft11)
		b, _ := AppendRequest(nil, &r, Draft11)
		return append(b, "initial"...)
	},
	"FuzzReadReplies": func(g *gen) []byte {
		a, o := g.authReply(Draft11), g.opReply(Draft11)
		b, _ := AppendAuthReply(nil, &a, Draft11)
		b, _ = AppendOpReply(b, &o, Draft11)
		return b
	},
	"FuzzReadUDP": func(g *gen) []byte {
		var b []byte
		for i := g.r.IntN(4); i >= 0; i-- {
			b = append(b, udpSeed(g, 0)...)
		}
		return b
	},
}

func udpSeed(g *gen, t UDPType) []byte {
	for {
		m := g.udp()
		if t != 0 && m.Type != t || len(m.Payload) > 256 {
			continue
		}
		b, _ := AppendUDPMessage(nil, &m)
		return b
	}
}

// TestWriteSeeds regenerates testdata/fuzz when SOCKS6_WRITE_SEEDS=1. The
// files keep their names, so crashers added by hand are left alone.
func TestWriteSeeds(t *testing.T) {
	if os.Getenv("SOCKS6_WRITE_SEEDS") != "1" {
		t.Skip("set SOCKS6_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	for target, more := range fuzzTargets {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name string, b []byte) {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range vectorSeeds {
			write(v.name, hx(t, v.hex))
		}
		g := newGen(uint64(len(target)) * 977)
		for i := 0; i < 12; i++ {
			write(fmt.Sprintf("generated_%02d", i), more(g))
		}
	}
}

// readCorpus returns every seed of the corpus, by target.
func readCorpus(t testing.TB) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	dirs, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no seed corpus: %v", err)
	}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*"))
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
				!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
				t.Fatalf("%s: not a single-[]byte corpus file", f)
			}
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[filepath.Base(dir)] = append(out[filepath.Base(dir)], []byte(s))
		}
	}
	return out
}

func TestSeedCorpusHasVectors(t *testing.T) {
	corpus := readCorpus(t)
	for target := range fuzzTargets {
		seeds := corpus[target]
		for _, v := range vectorSeeds {
			want := hx(t, v.hex)
			found := false
			for _, s := range seeds {
				if bytes.Equal(s, want) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: seed corpus lacks %s", target, v.name)
			}
		}
	}
}
