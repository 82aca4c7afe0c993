package main

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"testing"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// TestSOCKS6RequestReadAhead: the frontend reads a Request with one read
// ahead of up to 512 bytes, so bytes the client sends right behind the
// Request and its Initial Data arrive in the same read. None of them may
// be lost: a client that writes Request, Initial Data and more data in one
// segment, and then a Request whose Initial Data is larger than the read
// ahead, gets all of it echoed in order.
func TestSOCKS6RequestReadAhead(t *testing.T) {
	echo := echoServer(t)
	addr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "s6" {
  listen = %q
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, addr))
	dst := gateway.AddrFromAddrPort(netip.MustParseAddrPort(echo))
	for _, tc := range []struct {
		name           string
		initial, after int
	}{
		{"small initial data, more data behind it", 16, 300},
		{"no initial data, data behind the request", 0, 100},
		{"initial data larger than the read ahead", 2000, 700},
	} {
		t.Run(tc.name, func(t *testing.T) {
			initial := bytes.Repeat([]byte{'i'}, tc.initial)
			after := bytes.Repeat([]byte{'a'}, tc.after)
			for i := range after {
				after[i] = byte('a' + i%26)
			}
			req := &s6.Request{Command: s6.CmdConnect, Addr: dst}
			if len(initial) > 0 {
				req.Options.Advertisement = &s6.Advertisement{InitialDataLen: uint16(len(initial))}
			}
			msg, err := s6.AppendRequest(nil, req, s6.Draft11)
			if err != nil {
				t.Fatal(err)
			}
			msg = append(append(msg, initial...), after...)
			c := dialRaw(t, addr)
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			ar, err := s6.ReadAuthReply(c, nil, s6.Draft11)
			if err != nil || ar.Type != s6.AuthSuccess {
				t.Fatalf("authentication reply %+v, %v", ar, err)
			}
			op, err := s6.ReadOpReply(c, nil, s6.Draft11)
			if err != nil || op.Code != s6.ReplySuccess {
				t.Fatalf("operation reply %+v, %v", op, err)
			}
			want := append(append([]byte(nil), initial...), after...)
			got := make([]byte, len(want))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo: %v (got %q)", err, got)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("echo differs: got %q", got)
			}
		})
	}
}
