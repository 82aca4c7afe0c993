package main

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// TestSOCKS5HandshakeReadAhead: the SOCKS 5 frontend reads the handshake
// through a read-ahead of up to 512 bytes, so a client that sends its
// greeting, its RFC 1929 request, its CONNECT and the first data all at
// once (an optimistic client) has all of it in the first read. None of the
// data may be lost: it is echoed in full and in order, with and without
// authentication, and when it is larger than the read-ahead.
func TestSOCKS5HandshakeReadAhead(t *testing.T) {
	echo := echoServer(t)
	anon := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	auth := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
users "u" {
  user "alice" {
    password = "s3cret"
  }
}
frontend "socks5" "anon" {
  listen = %q
}
frontend "socks5" "auth" {
  listen = %q
  users  = "u"
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, anon, auth))
	dst := gateway.AddrFromAddrPort(netip.MustParseAddrPort(echo))
	for _, tc := range []struct {
		name      string
		addr      string
		user      bool
		pipelined bool
		data      int
	}{
		{"everything in one write", anon, false, true, 300},
		{"everything in one write, with RFC 1929", auth, true, true, 300},
		{"data larger than the read ahead", auth, true, true, 2000},
		{"one message per round trip", auth, true, false, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := s5.MethodNoAuth
			if tc.user {
				method = s5.MethodUserPass
			}
			greeting, _ := s5.Greeting{Methods: []s5.Method{method}}.Append(nil)
			var up []byte
			if tc.user {
				up, _ = s5.UserPassRequest{Username: "alice", Password: "s3cret"}.Append(nil)
			}
			req, err := s5.Request{Command: s5.CmdConnect, Dest: dst}.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, tc.data)
			for i := range data {
				data[i] = byte('a' + i%26)
			}
			c := dialRaw(t, tc.addr)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			send := func(b []byte) {
				t.Helper()
				if _, err := c.Write(b); err != nil {
					t.Fatal(err)
				}
			}
			if tc.pipelined {
				send(bytes.Join([][]byte{greeting, up, req, data}, nil))
			} else {
				send(greeting)
			}
			if m, err := s5.ReadMethodSelection(c); err != nil || m != method {
				t.Fatalf("method selection %v, %v; want %v", m, err, method)
			}
			if tc.user {
				if !tc.pipelined {
					send(up)
				}
				if st, err := s5.ReadUserPassReply(c); err != nil || st != s5.UserPassSuccess {
					t.Fatalf("RFC 1929 reply %d, %v", st, err)
				}
			}
			if !tc.pipelined {
				send(req)
			}
			if rep, err := s5.ReadReply(c); err != nil || rep.Code != s5.RepSucceeded {
				t.Fatalf("reply %+v, %v", rep, err)
			}
			if !tc.pipelined {
				send(data)
			}
			got := make([]byte, len(data))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo: %v (got %d bytes)", err, len(got))
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("echo differs: got %q", got)
			}
		})
	}
}
