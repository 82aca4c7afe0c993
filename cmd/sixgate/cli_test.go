package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.hcl")
	os.WriteFile(p, []byte(text), 0o600)
	return p
}

func TestValidateMisspelledAttribute(t *testing.T) {
	p := writeFile(t, "admin {\n  listn = \"127.0.0.1:9090\"\n}\n")
	var out, errb bytes.Buffer
	code := run([]string{"validate", "--config", p}, &out, &errb)
	if code == 0 {
		t.Fatalf("exit 0 for a bad config")
	}
	msg := errb.String()
	if !strings.Contains(msg, p+":2:3: error: Unsupported argument") || !strings.Contains(msg, `Did you mean "listen"?`) {
		t.Fatalf("diagnostics lack file:line:column or suggestion:\n%s", msg)
	}
}

func TestValidateGoodConfig(t *testing.T) {
	p := writeFile(t, "admin {\n  listen = \"127.0.0.1:9090\"\n}\nshutdown_grace = \"3s\"\n")
	var out, errb bytes.Buffer
	if code := run([]string{"validate", "--config", p}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if strings.TrimSpace(out.String()) != "configuration is valid" {
		t.Fatalf("stdout %q", out.String())
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if run([]string{"version"}, &out, &errb) != 0 || !strings.HasPrefix(out.String(), "sixgate ") {
		t.Fatalf("version: %q", out.String())
	}
	if run(nil, &out, &errb) != 2 || run([]string{"bogus"}, &out, &errb) != 2 {
		t.Fatal("usage errors must exit 2")
	}
	if run([]string{"validate"}, &out, &errb) != 2 {
		t.Fatal("validate without --config must exit 2")
	}
}

func TestRunAdminAndSIGTERM(t *testing.T) {
	g := startGateway(t, `
admin {
  listen = "127.0.0.1:0"
}
shutdown_grace = "2s"
`)
	code, body := g.get("/metrics")
	if code != 200 || !strings.Contains(body, "sixgate_build_info") || !strings.Contains(body, "sixgate_config_last_reload_successful 1") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, _ := g.get("/livez"); code != 200 {
		t.Fatalf("/livez %d", code)
	}
	if code, _ := g.get("/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	if code, _ := g.get("/debug/pprof/"); code != 404 {
		t.Fatalf("pprof served without pprof = true: %d", code)
	}
	start := time.Now()
	g.Signal(syscall.SIGTERM)
	exit, ok := g.Wait(5 * time.Second)
	if !ok || exit != 0 {
		t.Fatalf("exit %d ok=%v after SIGTERM", exit, ok)
	}
	if time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("took %v, longer than the grace period", time.Since(start))
	}
}
