package socks5

import (
	"bytes"
	"net"
	"testing"

	armon "github.com/armon/go-socks5"
)

// These tests check wire compatibility with github.com/armon/go-socks5, the
// SOCKS 5 library in go.mod, in both directions where its exported API
// allows: its request parser reads our requests, and its RFC 1929
// authenticator talks to our client-side readers and encoders.

func TestArmonReadsOurRequests(t *testing.T) {
	for _, tt := range requestGolden {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := tt.q.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			ar, err := armon.NewRequest(bytes.NewReader(enc))
			if err != nil {
				t.Fatal(err)
			}
			if ar.Command != uint8(tt.q.Command) || ar.DestAddr.Port != int(tt.q.Dest.Port) {
				t.Errorf("armon read command %d port %d", ar.Command, ar.DestAddr.Port)
			}
			if tt.q.Dest.IsName() {
				if ar.DestAddr.FQDN != tt.q.Dest.Name {
					t.Errorf("armon read name %q", ar.DestAddr.FQDN)
				}
			} else if !ar.DestAddr.IP.Equal(net.IP(tt.q.Dest.IP.AsSlice())) {
				t.Errorf("armon read IP %v", ar.DestAddr.IP)
			}
		})
	}
}

func TestArmonUserPassAuthenticator(t *testing.T) {
	auth := armon.UserPassAuthenticator{Credentials: armon.StaticCredentials{"alice": "s3cret"}}
	for _, tt := range []struct {
		u      UserPassRequest
		status byte
	}{
		{UserPassRequest{"alice", "s3cret"}, UserPassSuccess},
		{UserPassRequest{"alice", "wrong"}, UserPassFailure},
	} {
		req, err := tt.u.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		actx, err := auth.Authenticate(bytes.NewReader(req), &out)
		if (err == nil) != (tt.status == UserPassSuccess) {
			t.Fatalf("%+v: armon says %v", tt.u, err)
		}
		if err == nil && actx.Payload["Username"] != tt.u.Username {
			t.Errorf("armon user %q", actx.Payload["Username"])
		}
		// armon writes the method selection itself, then the RFC 1929 reply.
		m, err := ReadMethodSelection(&out)
		if err != nil || m != MethodUserPass {
			t.Fatalf("method selection %v, %v", m, err)
		}
		st, err := ReadUserPassReply(&out)
		if err != nil || st != tt.status {
			t.Errorf("%+v: status %d, %v; want %d", tt.u, st, err, tt.status)
		}
		if out.Len() != 0 {
			t.Errorf("%d unexpected bytes after the reply", out.Len())
		}
	}
}
