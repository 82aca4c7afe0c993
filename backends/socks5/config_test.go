package socks5

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testRegistry() *gateway.Registry {
	r := gateway.NewRegistry()
	r.Backend("socks5", Plugin())
	return r
}

// TestConfigDiagnostics checks every testdata/config/*.hcl against its
// .golden file: the diagnostics printed with file:line:column, or "valid".
func TestConfigDiagnostics(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.hcl")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, diags := gateway.LoadConfig(f, testRegistry())
			var buf bytes.Buffer
			if len(diags) == 0 {
				buf.WriteString("valid\n")
			}
			for _, d := range diags {
				if d.Subject != nil {
					buf.WriteString(d.Subject.String() + ": ")
				}
				buf.WriteString(d.Summary + "; " + d.Detail + "\n")
			}
			golden := strings.TrimSuffix(f, ".hcl") + ".golden"
			if *update {
				os.WriteFile(golden, buf.Bytes(), 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if buf.String() != string(want) {
				t.Errorf("diagnostics:\n%s\nwant:\n%s", buf.String(), want)
			}
		})
	}
}

func TestPluginBuildsChain(t *testing.T) {
	cfg, diags := gateway.LoadConfig("testdata/config/valid.hcl", testRegistry())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := strings.Join(cfg.BackendOrder, ","); got != "hop1,hop2" {
		t.Fatalf("backend order %s", got)
	}
	built := map[string]gateway.Backend{}
	for _, name := range cfg.BackendOrder {
		for _, pc := range cfg.Backends {
			if pc.Name != name {
				continue
			}
			env := &gateway.Env{Log: testLogger(t)}
			if v := pc.Config.(gateway.BackendConfig).Via().Value; v != "" {
				env.Via = built[v]
			}
			b, err := Plugin().New(env, name, pc.Config)
			if err != nil {
				t.Fatal(err)
			}
			built[name] = b
		}
	}
	hop2 := built["hop2"].(*Backend)
	if hop2.via != built["hop1"] || !hop2.local || hop2.dialTimeout != 5*time.Second ||
		hop2.server != (gateway.Addr{Name: "proxy.example.org", Port: 1080}) || hop2.userPass == nil {
		t.Errorf("hop2 built as %+v", hop2)
	}
	if want := []byte{5, 2, 0, 2}; !bytes.Equal(hop2.greeting, want) {
		t.Errorf("greeting % x, want % x", hop2.greeting, want)
	}
	if hop1 := built["hop1"].(*Backend); hop1.via != nil || hop1.local || hop1.dialTimeout != DefaultDialTimeout || !bytes.Equal(hop1.greeting, []byte{5, 1, 0}) {
		t.Errorf("hop1 built as %+v", hop1)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Server: "127.0.0.1:1080", Username: "a"},
		{Server: "127.0.0.1:1080", Username: strings.Repeat("a", 256), Password: "p"},
		{Server: "127.0.0.1:1080", Resolve: "LOCAL"},
		{Server: "127.0.0.1:1080", DialTimeout: "0s"},
	} {
		_, err := New("x", cfg, Options{})
		if err == nil || !strings.HasPrefix(err.Error(), "socks5 backend: ") || strings.HasSuffix(err.Error(), ".") {
			t.Errorf("New(%+v) = %v", cfg, err)
		}
	}
}
