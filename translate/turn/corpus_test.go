package turn

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pion/stun"
)

// TestWriteFuzzCorpus regenerates the seed corpora in testdata/fuzz from the
// §9 vectors. It runs only with TURN_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TURN_WRITE_CORPUS") != "1" {
		t.Skip("set TURN_WRITE_CORPUS=1 to regenerate testdata/fuzz")
	}
	write := func(target, name string, args ...string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "go test fuzz v1\n" + strings.Join(args, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bytesLit := func(b []byte) string { return "[]byte(" + strconv.Quote(string(b)) + ")" }
	for _, v := range vectors {
		b := vec(t, v.name)
		name := v.name
		for _, target := range []string{"FuzzParseChannelData", "FuzzGetters", "FuzzDecode"} {
			write(target, name, bytesLit(b))
		}
		write("FuzzFramer", name+"-whole", bytesLit(b), "byte('\\xff')")
		write("FuzzFramer", name+"-bytes", bytesLit(b), "byte('\\x00')")
		if Demux(b) == KindSTUN {
			m := new(stun.Message)
			if err := Decode(b, m); err != nil {
				t.Fatal(err)
			}
			for i, a := range m.Attributes {
				write("FuzzAttribute", fmt.Sprintf("%s-%02d-%04x", v.name, i, uint16(a.Type)),
					fmt.Sprintf("uint16(%d)", uint16(a.Type)), bytesLit(a.Value), bytesLit(m.TransactionID[:]))
			}
		}
	}
	s, _ := stream(t)
	write("FuzzFramer", "stream-segments", bytesLit(s), "byte('\\x05')")
	write("FuzzFramer", "tv10-then-tv1", bytesLit(append(vec(t, "TV10"), vec(t, "TV1")...)), "byte('\\xff')")
	for i, u := range []string{tvREST, "1893456000", "alice:1893456000", "a:b:1893456000", "alice", "", ":"} {
		write("FuzzRESTUsername", fmt.Sprintf("user-%d", i), "string("+strconv.Quote(u)+")")
	}
	for i, a := range []string{"::ffff:127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1", "2001:db8::1"} {
		b := netip.MustParseAddr(a).As16()
		write("FuzzEmbeddedIPv4", fmt.Sprintf("addr-%d", i), bytesLit(b[:]))
	}
}
