package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/backends/socks5/dantetest"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// These tests run the sixgate binary with a SOCKS 5 frontend in front of
// `backend "socks5"`, whose upstream is Dante's danted: third-party
// clients on one side (curl, the npm package "socks"), a third-party
// server on the other.

// socks5upConfig is a gateway with one SOCKS 5 frontend on port whose
// every request goes to the Dante instance at dante.
func socks5upConfig(port int, dante, creds string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks5" "in" {
  listen = "127.0.0.1:%d"
}
backend "socks5" "dante" {
  server = %q
  %s
}
route {
  destinations = ["127.0.0.0/8", "localhost"]
  backend      = "dante"
}
`, port, dante, creds)
}

// socks5upCases are Dante without authentication and with the
// username/password account of dantetest.
var socks5upCases = []struct {
	name  string
	opts  dantetest.Options
	creds string
}{
	{"no auth", dantetest.Options{}, ""},
	{"username/password", dantetest.Options{Auth: true},
		fmt.Sprintf("username = %q\n  password = %q", dantetest.User, dantetest.Password)},
}

// socks5upHTTP serves a fixed page on 127.0.0.1 and returns its port.
func socks5upHTTP(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "upstream page %s", r.URL.Path)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// socks5upUDPEcho runs a UDP echo server on 127.0.0.1 and returns its
// port.
func socks5upUDPEcho(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).Port
}

func TestSOCKS5UpstreamDanteCurl(t *testing.T) {
	httpPort := socks5upHTTP(t)
	for _, tt := range socks5upCases {
		t.Run(tt.name, func(t *testing.T) {
			d := dantetest.Start(t, tt.opts)
			port := gatewaytest.FreePort(t)
			g := startGateway(t, socks5upConfig(port, d.Addr, tt.creds))
			proxy := fmt.Sprintf("127.0.0.1:%d", port)
			for _, c := range []struct{ flag, url string }{
				// The name travels to sixgate and on to Dante, which
				// resolves it (resolve = "remote").
				{"--socks5-hostname", fmt.Sprintf("http://localhost:%d/by-name", httpPort)},
				{"--socks5", fmt.Sprintf("http://127.0.0.1:%d/by-ip", httpPort)},
			} {
				out, code := curl(t, c.flag, proxy, c.url)
				path := c.url[strings.LastIndex(c.url, "/"):]
				if code != 0 || out != "upstream page "+path {
					t.Fatalf("curl %s %s: exit %d: %q\n%s", c.flag, c.url, code, out, g.Log())
				}
			}
			// A refused destination comes back as reply 5 (connection
			// refused) from Dante through sixgate.
			closed := gatewaytest.FreePort(t)
			out, code := curl(t, "--socks5", proxy, fmt.Sprintf("http://127.0.0.1:%d/", closed))
			if code != 97 || !strings.Contains(out, "(5)") {
				t.Fatalf("curl to a closed port: exit %d: %q", code, out)
			}
			if !strings.Contains(g.Log(), `backend=dante`) {
				t.Errorf("the access log does not name the dante backend:\n%s", g.Log())
			}
		})
	}
}

// socks5upNodeUDP runs testdata/socks5client.js's udp mode and returns its
// first line of output and its exit error.
func socks5upNodeUDP(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd, sc := nodeClient(t, append([]string{"udp"}, args...)...)
	line := ""
	if sc.Scan() {
		line = sc.Text()
	}
	return line, cmd.Wait()
}

func TestSOCKS5UpstreamDanteUDPNode(t *testing.T) {
	echoPort := socks5upUDPEcho(t)
	for _, tt := range socks5upCases {
		t.Run(tt.name, func(t *testing.T) {
			d := dantetest.Start(t, tt.opts)
			port := gatewaytest.FreePort(t)
			g := startGateway(t, socks5upConfig(port, d.Addr, tt.creds))
			out, err := socks5upNodeUDP(t, "127.0.0.1", fmt.Sprint(port), "127.0.0.1", fmt.Sprint(echoPort), "200")
			if err != nil || out != "UDP OK 200" {
				t.Fatalf("node client: %q %v\n%s", out, err, g.Log())
			}
		})
	}
}

func TestSOCKS5UpstreamDanteBindNode(t *testing.T) {
	d := dantetest.Start(t, dantetest.Options{})
	port := gatewaytest.FreePort(t)
	g := startGateway(t, socks5upConfig(port, d.Addr, ""))
	cmd, sc := nodeClient(t, "bind", "127.0.0.1", fmt.Sprint(port))
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "BOUND ") {
		t.Fatalf("no BOUND line: %q\n%s", sc.Text(), g.Log())
	}
	// The listening socket is Dante's, not sixgate's.
	bound := strings.TrimPrefix(sc.Text(), "BOUND ")
	peer, err := net.DialTimeout("tcp", bound, 5*time.Second)
	if err != nil {
		t.Fatalf("peer dial %s: %v", bound, err)
	}
	defer peer.Close()
	peer.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len("hello-from-client"))
	if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello-from-client" {
		t.Fatalf("peer read %q %v", buf, err)
	}
	peer.Write([]byte("hello-from-peer"))
	peer.(*net.TCPConn).CloseWrite()
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "PEER hello-from-peer FROM 127.0.0.1") {
		t.Fatalf("client saw %q", sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node client: %v", err)
	}
}
