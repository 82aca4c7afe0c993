package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestSamePortSOCKS5AndSOCKS6: one port serves SOCKS 5 (curl) and SOCKS 6
// (the project's client), dispatched by the first byte; anything else gets
// SOCKS 6's Version Mismatch reply.
func TestSamePortSOCKS5AndSOCKS6(t *testing.T) {
	_, httpPort := httpServer(t)
	echo := echoServer(t)
	port := gatewaytest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "staff" {
  user "alice" {
    password = "s3cret"
  }
}
frontend "socks6" "mixed" {
  listen        = %q
  users         = "staff"
  accept_socks5 = true
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, addr))
	out, code := curl(t, "--socks5-hostname", addr, "--proxy-user", "alice:s3cret", "http://localhost:"+httpPort+"/five")
	if code != 0 || out != "hello from /five" {
		t.Fatalf("SOCKS 5 on the shared port: exit %d %q", code, out)
	}
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: addr, Username: "alice", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := c.Connect(ctx, gateway.AddrFromAddrPort(netip.MustParseAddrPort(echo)), &bsocks6.ConnectOptions{InitialData: []byte("six")})
	if err != nil {
		t.Fatalf("SOCKS 6 on the shared port: %v", err)
	}
	defer conn.Close()
	buf := make([]byte, 3)
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Read(buf); err != nil || string(buf) != "six" {
		t.Fatalf("SOCKS 6 echo %q %v", buf, err)
	}
	// A SOCKS 4 request: SOCKS 6 answers the version mismatch.
	raw := dialRaw(t, addr)
	raw.Write([]byte{4, 1, 0, 80, 127, 0, 0, 1, 0})
	if got := readAll(raw); string(got) != "\x06" {
		t.Fatalf("SOCKS 4 first byte: got %x, want 06", got)
	}
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func readAll(c net.Conn) []byte {
	b, _ := io.ReadAll(c)
	return b
}
