package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// transcriptEnv is a network namespace in which the destinations of the
// digest's vectors exist for real: 192.0.2.1 is a local address with TCP
// listeners on 80 and 443, a DNS server answers example.org, example.com and
// a.io with it, and one sixgate runs with an anonymous and an authenticated
// SOCKS 6 frontend. A second namespace has an unreachable route to
// 192.0.2.1 for the failure transcripts.
type transcriptEnv struct {
	ns         *netns
	anon, auth string
	firstBytes chan []byte // what the destination received first, per connection
}

func newTranscriptEnv(t *testing.T, reachable bool) *transcriptEnv {
	ns := newNetns(t)
	e := &transcriptEnv{ns: ns, firstBytes: make(chan []byte, 16)}
	if reachable {
		ns.in("addr", "add", "192.0.2.1/32", "dev", "lo")
	} else {
		ns.in("route", "add", "unreachable", "192.0.2.0/24")
	}
	var dnsPC net.PacketConn
	ns.do(func() {
		var err error
		dnsPC, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Error(err)
			return
		}
		if !reachable {
			return
		}
		for _, port := range []string{"80", "443"} {
			ln, err := net.Listen("tcp", "192.0.2.1:"+port)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { ln.Close() })
			go e.serveDest(ln)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	a := netip.MustParseAddr("192.0.2.1")
	startDNS(t, dnsPC, map[string][]netip.Addr{"example.org": {a}, "example.com": {a}, "a.io": {a}})
	e.anon, e.auth = "127.0.0.1:1080", "127.0.0.1:1081"
	cfg := fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
resolver {
  servers = [%q]
}
users "test" {
  user "user" {
    password = "pass"
  }
}
frontend "socks6" "anon" {
  listen     = %q
  udp_listen = %q
}
frontend "socks6" "auth" {
  listen     = %q
  udp_listen = %q
  users      = "test"
}
backend "direct" "out" {
  dial_timeout = "2s"
}
route {
  destinations = ["192.0.2.0/24"]
  backend      = "out"
}
route {
  backend = "out"
}
`, dnsPC.LocalAddr().String(), e.anon, e.anon, e.auth, e.auth)
	startGatewayCmd(t, cfg, ns.prefix())
	return e
}

// serveDest records what each connection sends first and echoes.
func (e *transcriptEnv) serveDest(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			if n == 0 {
				return // closed without data: no first bytes to record
			}
			select {
			case e.firstBytes <- append([]byte(nil), buf[:n]...):
			default:
			}
			c.Write(buf[:n])
			io.Copy(c, c)
		}()
	}
}

// dial connects to a frontend inside the namespace.
func (e *transcriptEnv) dial(t *testing.T, addr string) net.Conn {
	var c net.Conn
	var err error
	e.ns.do(func() { c, err = net.DialTimeout("tcp", addr, 3*time.Second) })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replay plays one transcript against the frontend at addr.
func replay(t *testing.T, c net.Conn, tr s6.Transcript) {
	t.Helper()
	defer c.Close()
	for i, ex := range tr.Exchanges {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(ex.Send); err != nil {
			t.Fatalf("exchange %d: write: %v", i, err)
		}
		got := make([]byte, len(ex.Expect))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("exchange %d: read %d bytes: %v (got %x)", i, len(ex.Expect), err, got)
		}
		if err := ex.Match(got); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
	}
	if tr.Closes {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(c)
		if len(rest) > 0 {
			t.Fatalf("proxy sent %x after the last reply instead of closing (err %v)", rest, err)
		}
	}
}

// TestSOCKS6Transcripts replays the codec's §9 transcript table against a
// running sixgate byte for byte.
func TestSOCKS6Transcripts(t *testing.T) {
	ok := newTranscriptEnv(t, true)
	bad := newTranscriptEnv(t, false)
	for _, tr := range s6.Transcripts() {
		t.Run(tr.Name, func(t *testing.T) {
			env, addr := ok, ok.anon
			switch {
			case strings.HasPrefix(tr.Setup, "authentication required"):
				addr = ok.auth
			case strings.Contains(tr.Setup, "ReasonHostUnreachable"):
				env, addr = bad, bad.anon
			case strings.Contains(tr.Name, "udp associate"):
				t.Skip("UDP ASSOCIATE is replayed by the UDP association tests")
			}
			for len(env.firstBytes) > 0 {
				<-env.firstBytes
			}
			replay(t, env.dial(t, addr), tr)
			if strings.Contains(tr.Setup, `receives "hello" first`) {
				select {
				case got := <-env.firstBytes:
					if !bytes.HasPrefix(got, []byte("hello")) {
						t.Fatalf("destination received %q first", got)
					}
				case <-time.After(3 * time.Second):
					t.Fatal("destination received nothing")
				}
			}
		})
	}
}
