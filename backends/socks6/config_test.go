package socks6

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseTestConfig(t *testing.T, path string) (*gateway.Config, hcl.Diagnostics) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	reg := gateway.NewRegistry()
	reg.Backend("socks6", Plugin())
	return gateway.ParseConfig(path, src, reg)
}

// TestConfigDiagnostics compares the diagnostics for testdata/invalid.hcl
// with testdata/invalid.golden (go test -run TestConfigDiagnostics -update
// rewrites it): every problem is reported at the attribute that holds it.
func TestConfigDiagnostics(t *testing.T) {
	_, diags := parseTestConfig(t, filepath.Join("testdata", "invalid.hcl"))
	var lines []string
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		pos := "-"
		if d.Subject != nil {
			pos = fmt.Sprintf("%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		lines = append(lines, fmt.Sprintf("%s: %s: %s: %s", pos, sev, d.Summary, d.Detail))
	}
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "invalid.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestConfigValid(t *testing.T) {
	cfg, diags := parseTestConfig(t, filepath.Join("testdata", "valid.hcl"))
	if diags.HasErrors() || len(diags) > 0 {
		t.Fatalf("diagnostics for a valid file: %v", diags)
	}
	if got := strings.Join(cfg.BackendOrder, ","); got != "core,edge" {
		t.Errorf("backend order %q, want the via target first", got)
	}
	core := cfg.Backends[0].Config.(*Config)
	cc, err := core.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cc.Dialect != s6.Draft10 || !cc.Session || cc.WindowSize != 128 || !cc.TFO || cc.TLS == nil ||
		cc.TLS.ServerName != "proxy.example.org" || cc.Username != "gw" {
		t.Errorf("client config %+v", cc)
	}
	edge := cfg.Backends[1].Config.(*Config)
	if v := edge.Via(); v.Value != "core" || v.Range.Start.Line != 18 {
		t.Errorf("Via() = %+v", v)
	}
	ec, err := edge.clientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if ec.Session || ec.WindowSize != 0 {
		t.Errorf("session = false gave %+v", ec)
	}
	dc, err := (&Config{Server: "p:1"}).clientConfig()
	if err != nil || !dc.Session || dc.WindowSize != DefaultWindowSize || dc.Dialect != s6.Draft11 {
		t.Errorf("defaults: %+v, %v", dc, err)
	}
}

func TestNewClientChecks(t *testing.T) {
	for _, cfg := range []ClientConfig{
		{Server: "no-port"},
		{Server: "h:0"},
		{Server: ":1080"},
		{Server: "h:1", Password: "x"},
		{Server: "h:1", Username: strings.Repeat("u", 256)},
		{Server: "h:1", Dialect: 7},
		{Server: "h:1", Auth: 9},
		{Server: "h:1", WindowSize: 1 << 31},
	} {
		if _, err := NewClient(cfg); err == nil || !strings.HasPrefix(err.Error(), "socks6 backend: ") {
			t.Errorf("NewClient(%+v) = %v", cfg, err)
		}
	}
}
