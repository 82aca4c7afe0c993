package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// httpServer serves a fixed page on 127.0.0.1.
func httpServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return srv, port
}

func curl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed (.ci/setup installs it)")
	}
	out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func socks5Config(authPort, anonPort int) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "staff" {
  user "alice" {
    password = "s3cret"
  }
  user "bob" {
    password_hash = "$2a$04$g1dM4zszXEDrYKuTjAO4MeoXRr2l5VGzXoBfXJHbh66eao7PWVM6q"
  }
}
frontend "socks5" "auth" {
  listen = "127.0.0.1:%d"
  users  = "staff"
}
frontend "socks5" "anon" {
  listen = "127.0.0.1:%d"
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8", "::1/128"]
  backend      = "out"
}
route {
  backend = "out"
}
`, authPort, anonPort)
}

func TestSOCKS5Curl(t *testing.T) {
	_, port := httpServer(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g := startGateway(t, socks5Config(authPort, anonPort))
	auth := fmt.Sprintf("127.0.0.1:%d", authPort)
	anon := fmt.Sprintf("127.0.0.1:%d", anonPort)
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"socks5 ip, anonymous", []string{"--socks5", anon, "http://127.0.0.1:" + port + "/a"}, "hello from /a", 0},
		{"socks5-hostname, anonymous", []string{"--socks5-hostname", anon, "http://localhost:" + port + "/b"}, "hello from /b", 0},
		{"socks5 with proxy-user", []string{"--socks5", auth, "--proxy-user", "alice:s3cret", "http://127.0.0.1:" + port + "/c"}, "hello from /c", 0},
		{"socks5-hostname with proxy-user", []string{"--socks5-hostname", auth, "--proxy-user", "alice:s3cret", "http://localhost:" + port + "/d"}, "hello from /d", 0},
		{"bcrypt user", []string{"--socks5-hostname", auth, "--proxy-user", "bob:hunter2", "http://localhost:" + port + "/e"}, "hello from /e", 0},
		{"wrong password", []string{"--socks5", auth, "--proxy-user", "alice:wrong", "http://127.0.0.1:" + port + "/"}, "", 97},
		{"no credentials where required", []string{"--socks5", auth, "http://127.0.0.1:" + port + "/"}, "", 97},
		{"denied destination (link-local)", []string{"--socks5", anon, "http://169.254.169.254/"}, "", 97},
		{"denied destination (gateway admin)", []string{"--socks5", anon, "http://" + g.Addr("admin") + "/metrics"}, "", 97},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := curl(t, c.args...)
			if code != c.code {
				t.Fatalf("curl exit %d, want %d: %s", code, c.code, out)
			}
			if c.code == 0 && out != c.want {
				t.Fatalf("body %q, want %q", out, c.want)
			}
		})
	}
	_, metrics := g.get("/metrics")
	for _, want := range []string{
		`sixgate_sessions_total{command="connect",frontend="anon",protocol="socks5",result="ok"}`,
		`sixgate_sessions_total{command="connect",frontend="anon",protocol="socks5",result="not_allowed"}`,
		`sixgate_auth_total{frontend="auth",result="failure"}`,
		`sixgate_auth_total{frontend="auth",result="success"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(g.Log(), "s3cret") || strings.Contains(g.Log(), "hunter2") {
		t.Error("a password reached the log")
	}
}
