package main

// TURN (issue 12, parts 1 to 3): bad input on the TURN frontend's UDP port
// (ChannelData for unbound channels, STUN with a bad FINGERPRINT or
// MESSAGE-INTEGRITY, lying lengths, unknown attributes), forbidden peers
// (403 for loopback, private, link-local, unspecified, IPv4-in-IPv6
// encodings and the gateway's own sockets, RFC 8656 §9 and turn.md §10.1),
// and password guessing limited per client IP. After each case a valid
// client still relays through the same gateway.

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun"
)

// secTURNClient is a minimal TURN client over UDP on pion/stun.
type secTURNClient struct {
	c                 *net.UDPConn
	user, pass, realm string
	nonce             stun.Nonce
}

func secDialTURN(t testing.TB, server netip.AddrPort, local string, user, pass string) *secTURNClient {
	t.Helper()
	la := &net.UDPAddr{IP: net.ParseIP(local)}
	c, err := net.DialUDP("udp", la, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &secTURNClient{c: c, user: user, pass: pass, realm: "sixgate"}
}

// roundTrip sends m and returns the response with its transaction ID.
func (c *secTURNClient) roundTrip(m *stun.Message) (*stun.Message, error) {
	if _, err := c.c.Write(m.Raw); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	deadline := time.Now().Add(3 * time.Second)
	for {
		c.c.SetReadDeadline(deadline)
		n, err := c.c.Read(buf)
		if err != nil {
			return nil, err
		}
		if !stun.IsMessage(buf[:n]) {
			continue
		}
		r := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if err := r.Decode(); err != nil {
			return nil, err
		}
		if r.TransactionID == m.TransactionID {
			return r, nil
		}
	}
}

// secCode returns a response's error code, or 0 for a success.
func secCode(m *stun.Message) int {
	if m == nil {
		return -1
	}
	var ec stun.ErrorCodeAttribute
	if ec.GetFrom(m) != nil {
		return 0
	}
	return int(ec.Code)
}

// request sends an authenticated request (USERNAME, REALM, NONCE,
// MESSAGE-INTEGRITY, FINGERPRINT, RFC 8489 §9.2), learning the nonce from
// a 401 or 438 first when needed, and returns the final response.
func (c *secTURNClient) request(method stun.Method, attrs ...stun.Setter) (*stun.Message, error) {
	for range 3 {
		setters := []stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}
		setters = append(setters, attrs...)
		if c.nonce != nil {
			setters = append(setters, stun.NewUsername(c.user), stun.NewRealm(c.realm), c.nonce,
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		setters = append(setters, stun.Fingerprint)
		m, err := stun.Build(setters...)
		if err != nil {
			return nil, err
		}
		r, err := c.roundTrip(m)
		if err != nil {
			return nil, err
		}
		code := secCode(r)
		if (code == 401 && c.nonce == nil) || code == 438 {
			var n stun.Nonce
			if err := n.GetFrom(r); err != nil {
				return r, nil
			}
			c.nonce = n
			continue
		}
		return r, nil
	}
	return nil, errors.New("no final response")
}

// allocate asks for a UDP relay (REQUESTED-TRANSPORT 17), IPv4 and, with
// dual, IPv6 too (ADDITIONAL-ADDRESS-FAMILY, RFC 8656 §7.2).
func (c *secTURNClient) allocate(dual bool) error {
	attrs := []stun.Setter{stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}}
	if dual {
		attrs = append(attrs, stun.RawAttribute{Type: 0x8000, Value: []byte{2, 0, 0, 0}})
	}
	r, err := c.request(stun.MethodAllocate, attrs...)
	if err != nil {
		return err
	}
	if code := secCode(r); code != 0 {
		return fmt.Errorf("allocate: error %d", code)
	}
	return nil
}

// secMagicCookie is the STUN magic cookie (RFC 8489 §5).
const secMagicCookie = 0x2112A442

// secPeer is an XOR-PEER-ADDRESS (RFC 8489 §14.2) built by hand, so that an
// IPv4-mapped IPv6 address stays IPv6 on the wire.
type secPeer netip.AddrPort

func (p secPeer) AddTo(m *stun.Message) error {
	ap := netip.AddrPort(p)
	var xor [16]byte
	binary.BigEndian.PutUint32(xor[:4], secMagicCookie)
	copy(xor[4:], m.TransactionID[:])
	v := []byte{0, 1, 0, 0}
	if ap.Addr().Is6() {
		v[1] = 2
	}
	binary.BigEndian.PutUint16(v[2:], ap.Port()^uint16(secMagicCookie>>16))
	addr := ap.Addr().AsSlice()
	for i := range addr {
		v = append(v, addr[i]^xor[i])
	}
	m.Add(stun.AttrXORPeerAddress, v)
	return nil
}

// send relays payload to peer with a Send indication (RFC 8656 §11).
func (c *secTURNClient) send(peer netip.AddrPort, payload []byte) error {
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), secPeer(peer),
		stun.RawAttribute{Type: stun.AttrData, Value: payload})
	if err != nil {
		return err
	}
	_, err = c.c.Write(m.Raw)
	return err
}

// data waits for a Data indication carrying payload from peer.
func (c *secTURNClient) data(peer netip.AddrPort, payload []byte) error {
	buf := make([]byte, 65536)
	c.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := c.c.Read(buf)
		if err != nil {
			return fmt.Errorf("no data indication: %w", err)
		}
		m := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if m.Decode() != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
			continue
		}
		d, err := m.Get(stun.AttrData)
		if err == nil && bytes.Equal(d, payload) {
			return nil
		}
	}
}

// echo relays through the allocation to the echo server and back.
func (c *secTURNClient) echo(peer netip.AddrPort) error {
	p := make([]byte, 8)
	rand.Read(p)
	if err := c.send(peer, p); err != nil {
		return err
	}
	return c.data(peer, p)
}

func secTURNConfig(port int, echo netip.AddrPort, dns string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
resolver {
  servers = [%q]
}
limits {
  handshake_timeout    = "1s"
  auth_failures_per_ip = 5
}
users "staff" {
  user "alice" {
    password = %q
  }
}
frontend "turn" "turn" {
  listen = "127.0.0.1:%d"
  realm  = "sixgate"
  users  = "staff"
}
backend "direct" "out" {}
route {
  destinations = ["%s/32"]
  ports        = ["%d"]
  backend      = "out"
}
route {
  backend = "out"
}
`, dns, secPassword, port, echo.Addr(), echo.Port())
}

func TestSecTURN(t *testing.T) {
	echo, uecho := secEchoPair(t)
	port := secFreePort(t)
	g := startGateway(t, secTURNConfig(port, echo, startSecDNS(t)))
	st := &secTarget{t: t, proc: g, echo: echo, udpEcho: uecho, admin: g.Addr("admin"), handshake: time.Second}
	server := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	admin := netip.MustParseAddrPort(st.admin)
	base := st.snapshot()
	top := t // clients whose allocations are deleted at the end

	// The valid client: an IPv4 and IPv6 allocation with a permission for
	// the echo server.
	valid := secDialTURN(t, server, "127.0.0.1", "alice", secPassword)
	if err := valid.allocate(true); err != nil {
		t.Fatal(err)
	}
	if r, err := valid.request(stun.MethodCreatePermission, secPeer(echo)); err != nil || secCode(r) != 0 {
		t.Fatalf("permission for the echo server: %v %v", secCode(r), err)
	}
	if err := valid.echo(echo); err != nil {
		t.Fatalf("valid client: %v", err)
	}
	allocated := []*secTURNClient{valid}
	dropped := func(reason string) float64 {
		return secMetricSum(st.metrics(), "sixgate_dropped_datagrams_total", `frontend="turn"`, `reason="`+reason+`"`)
	}

	t.Run("forbidden peers", func(t *testing.T) {
		forbidden := []string{
			"127.0.0.1:9", "127.0.0.2:9", "0.0.0.0:9", "10.0.0.1:9", "169.254.169.254:80", "192.168.1.1:9",
			"100.64.0.1:9", "224.0.0.1:9", "255.255.255.255:9",
			"[::1]:9", "[::]:9", "[fe80::1]:9", "[fc00::1]:9", "[::ffff:127.0.0.1]:9", "[::ffff:169.254.169.254]:80",
			"[::127.0.0.1]:9", "[64:ff9b::7f00:1]:9", "[2002:7f00:1::1]:9",
			admin.String(),  // the admin listener
			server.String(), // the TURN listener itself
		}
		for _, p := range forbidden {
			peer := netip.MustParseAddrPort(p)
			t.Run("CreatePermission "+p, func(t *testing.T) {
				r, err := valid.request(stun.MethodCreatePermission, secPeer(peer))
				if err != nil {
					t.Fatal(err)
				}
				if code := secCode(r); code != 403 {
					t.Fatalf("error %d, want 403 (RFC 8656 §9.2)", code)
				}
			})
		}
		t.Run("ChannelBind 127.0.0.1", func(t *testing.T) {
			r, err := valid.request(stun.MethodChannelBind, stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x01, 0, 0}},
				secPeer(netip.MustParseAddrPort("127.0.0.1:9")))
			if err != nil {
				t.Fatal(err)
			}
			if code := secCode(r); code != 403 {
				t.Fatalf("error %d, want 403", code)
			}
		})
		t.Run("all or nothing", func(t *testing.T) {
			// An allowed peer next to a forbidden one installs neither.
			ok := netip.MustParseAddrPort("8.8.8.8:53")
			r, err := valid.request(stun.MethodCreatePermission, secPeer(ok), secPeer(netip.MustParseAddrPort("127.0.0.1:9")))
			if err != nil {
				t.Fatal(err)
			}
			if code := secCode(r); code != 403 {
				t.Fatalf("error %d, want 403", code)
			}
			before := dropped("no_permission")
			valid.send(ok, []byte("x"))
			if !secWaitFor(2*time.Second, func() bool { return dropped("no_permission")-before == 1 }) {
				t.Error("a Send to the allowed peer of the refused request was not dropped for want of a permission")
			}
		})
		if err := valid.echo(echo); err != nil {
			t.Fatalf("valid client afterwards: %v", err)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		var tid [stun.TransactionIDSize]byte
		rand.Read(tid[:])
		binding := func(mod func(b []byte) []byte) []byte {
			m, _ := stun.Build(stun.NewTransactionIDSetter(tid), stun.BindingRequest, stun.Fingerprint)
			return mod(append([]byte(nil), m.Raw...))
		}
		fingerprint := binding(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b })
		notLast := func() []byte {
			m, _ := stun.Build(stun.NewTransactionIDSetter(tid), stun.BindingRequest, stun.Fingerprint, stun.NewSoftware("x"))
			return m.Raw
		}()
		longer := binding(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(len(b)-20+8)); return b })
		odd := binding(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 6); return b[:26] })
		cookie := binding(func(b []byte) []byte { b[4] ^= 1; return b })
		cases := []struct {
			name, spec string
			from       string // "valid": the allocated client; else a new client from this IP
			msg        []byte
			reason     string // the drop reason that grows by one
		}{
			{"ChannelData on an unbound channel", "RFC 8656 §12.6: discard", "valid", []byte{0x40, 0x07, 0, 4, 'a', 'b', 'c', 'd'}, "no_channel"},
			{"ChannelData without an allocation", "RFC 8656 §12.6", "127.0.0.31", []byte{0x40, 0x07, 0, 4, 'a', 'b', 'c', 'd'}, "no_allocation"},
			{"ChannelData longer than the datagram", "RFC 8656 §12.4", "valid", []byte{0x40, 0x07, 0, 40, 'a', 'b', 'c', 'd'}, "malformed"},
			{"ChannelData on a reserved channel number (0x5000)", "RFC 8656 §12", "valid", []byte{0x50, 0x00, 0, 4, 'a', 'b', 'c', 'd'}, "not_turn"},
			{"Send indication to a peer without permission", "RFC 8656 §11.2", "valid", nil, "no_permission"},
			{"Send indication without an allocation", "RFC 8656 §11.2", "127.0.0.31", nil, "no_allocation"},
			{"STUN with a bad FINGERPRINT", "RFC 8489 §7.3: discard", "127.0.0.31", fingerprint, "malformed"},
			{"STUN with FINGERPRINT not last", "RFC 8489 §14.7", "127.0.0.31", notLast, "malformed"},
			{"STUN length larger than the datagram", "RFC 8489 §6", "127.0.0.31", longer, "malformed"},
			{"STUN length not a multiple of 4", "RFC 8489 §5", "127.0.0.31", odd, "malformed"},
			{"STUN with a wrong magic cookie", "RFC 8489 §5", "127.0.0.31", cookie, "malformed"},
			{"HTTP request (G = 0x47 reads as ChannelData whose length lies)", "RFC 8656 §18 demultiplexing", "127.0.0.31", []byte("GET / HTTP/1.1\r\n\r\n"), "malformed"},
			{"RTP packet (neither STUN nor ChannelData)", "RFC 8656 §18", "127.0.0.31", []byte{0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, "not_turn"},
			{"TLS ClientHello on the UDP port", "RFC 8656 §18", "127.0.0.31", []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0}, "malformed"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				cl := valid
				if c.from != "valid" {
					cl = secDialTURN(t, server, c.from, "alice", secPassword)
				}
				before := dropped(c.reason)
				echoed := uecho.received()
				if c.msg == nil {
					cl.send(netip.MustParseAddrPort("8.8.4.4:53"), []byte("no permission"))
				} else if _, err := cl.c.Write(c.msg); err != nil {
					t.Fatal(err)
				}
				var got float64
				if !secWaitFor(2*time.Second, func() bool { got = dropped(c.reason) - before; return got >= 1 }) {
					t.Fatalf("sixgate_dropped_datagrams_total{frontend=\"turn\",reason=%q} grew by %v, want 1 (%s)", c.reason, got, c.spec)
				}
				if cl != valid {
					if err := secQuiet(cl.c, 100*time.Millisecond); err != nil {
						t.Errorf("the gateway answered: %v", err)
					}
				}
				if n := uecho.received() - echoed; n > 0 {
					t.Errorf("a peer received %d datagrams", n)
				}
				if err := valid.echo(echo); err != nil {
					t.Fatalf("valid client afterwards: %v", err)
				}
			})
		}
		// Requests that get an error response.
		t.Run("Allocate with a wrong password", func(t *testing.T) {
			cl := secDialTURN(t, server, "127.0.0.32", "alice", "wrong")
			r, err := cl.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
			if err != nil || secCode(r) != 401 {
				t.Fatalf("error %d (%v), want 401 (RFC 8489 §9.2.4)", secCode(r), err)
			}
		})
		t.Run("Allocate with a tampered MESSAGE-INTEGRITY", func(t *testing.T) {
			cl := secDialTURN(t, server, "127.0.0.33", "alice", secPassword)
			r0, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.Fingerprint)
			first, err := cl.roundTrip(r0)
			if err != nil || secCode(first) != 401 {
				t.Fatalf("challenge %d: %v", secCode(first), err)
			}
			var nonce stun.Nonce
			nonce.GetFrom(first)
			m, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
				stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
				stun.NewUsername("alice"), stun.NewRealm("sixgate"), nonce, stun.NewLongTermIntegrity("alice", "sixgate", secPassword))
			// Flip a bit of REQUESTED-TRANSPORT after the integrity was
			// computed over it.
			i := bytes.Index(m.Raw, []byte{0x00, 0x19, 0x00, 0x04, 17})
			m.Raw[i+5] ^= 1
			r, err := cl.roundTrip(m)
			if err != nil || secCode(r) != 401 {
				t.Fatalf("error %d (%v), want 401", secCode(r), err)
			}
		})
		t.Run("Allocate with a forged nonce", func(t *testing.T) {
			cl := secDialTURN(top, server, "127.0.0.34", "alice", secPassword)
			cl.nonce = stun.NewNonce("00000000deadbeef")
			r, err := cl.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
			// request retries once after the 438 with the fresh nonce.
			if err != nil || secCode(r) != 0 {
				t.Fatalf("error %d (%v) after the 438 retry", secCode(r), err)
			}
			allocated = append(allocated, cl)
		})
		t.Run("unknown comprehension-required attribute", func(t *testing.T) {
			cl := secDialTURN(t, server, "127.0.0.35", "alice", secPassword)
			r, err := cl.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
				stun.RawAttribute{Type: 0x0031, Value: []byte{1, 2, 3, 4}})
			if err != nil || secCode(r) != 420 {
				t.Fatalf("error %d (%v), want 420 (RFC 8489 §6.3.1)", secCode(r), err)
			}
		})
		t.Run("Allocate without REQUESTED-TRANSPORT", func(t *testing.T) {
			cl := secDialTURN(t, server, "127.0.0.36", "alice", secPassword)
			r, err := cl.request(stun.MethodAllocate)
			if err != nil || secCode(r) != 400 {
				t.Fatalf("error %d (%v), want 400 (RFC 8656 §7.2)", secCode(r), err)
			}
		})
		if err := valid.echo(echo); err != nil {
			t.Fatalf("valid client afterwards: %v", err)
		}
	})

	t.Run("password guessing", func(t *testing.T) {
		before := secMetricSum(st.metrics(), "sixgate_limit_rejections_total", `frontend="turn"`, `limit="auth_failures_per_ip"`)
		guess := secDialTURN(t, server, "127.0.0.40", "alice", "guess")
		for i := range 5 {
			r, err := guess.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
			if err != nil || secCode(r) != 401 {
				t.Fatalf("guess %d: error %d (%v), want 401", i, secCode(r), err)
			}
		}
		guess.pass = secPassword
		r, err := guess.request(stun.MethodAllocate, stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}})
		if err != nil || secCode(r) != 401 {
			t.Fatalf("the right password after 5 failures: error %d (%v), want 401", secCode(r), err)
		}
		if got := secMetricSum(st.metrics(), "sixgate_limit_rejections_total", `frontend="turn"`, `limit="auth_failures_per_ip"`) - before; got != 1 {
			t.Errorf("sixgate_limit_rejections_total{limit=\"auth_failures_per_ip\"} grew by %v, want 1", got)
		}
		other := secDialTURN(top, server, "127.0.0.41", "alice", secPassword)
		if err := other.allocate(false); err != nil {
			t.Errorf("another IP: %v", err)
		}
		allocated = append(allocated, other)
	})

	t.Run("TCP", func(t *testing.T) {
		st.fe = map[string]string{"turn": server.String()}
		bindingReq := func() []byte {
			m, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
			return m.Raw
		}
		// A Binding request every 0.4 s, before any allocation: the
		// connection must still end at the handshake deadline.
		keepAlive := []secStep{{send: bindingReq()}}
		for range 5 {
			keepAlive = append(keepAlive, secStep{send: bindingReq(), delay: 400 * time.Millisecond, mayFail: true})
		}
		cases := []secCase{
			{name: "silent client", spec: "handshake_timeout", fe: "turn", end: secEndDeadline},
			{name: "STUN header cut short", spec: "handshake_timeout", fe: "turn", steps: []secStep{secSend([]byte{0, 1, 0})}, end: secEndDeadline},
			{name: "HTTP request (G = 0x47 reads as a ChannelData frame of 21536 bytes)", spec: "RFC 8656 §18 demultiplexing", fe: "turn",
				steps: []secStep{secSend([]byte("GET / HTTP/1.1\r\n\r\n"))}, end: secEndDeadline},
			{name: "TLS ClientHello on the plain port", spec: "RFC 8489 §5: no magic cookie", fe: "turn",
				steps: []secStep{secSend(append([]byte{0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03}, make([]byte, 32)...))}},
			{name: "neither STUN nor ChannelData (0x80)", spec: "RFC 8656 §18", fe: "turn", steps: []secStep{secSend([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 0})}},
			{name: "Binding requests do not extend the handshake deadline", spec: "handshake_timeout bounds an unauthenticated connection", fe: "turn",
				steps: keepAlive, play: secTURNKeepAlive},
		}
		st.runEach(t, cases, nil)
		t.Run("half-open memory", func(t *testing.T) {
			// As TestSecSlowlorisMemory: what a TCP connection that has
			// sent 3 bytes of a STUN header costs in heap.
			const n, limit = 500, 6 << 10
			heap := func() float64 { return secMetricSum(st.metrics(), "go_memstats_heap_inuse_bytes") }
			h0 := heap()
			var conns []*secRawConn
			defer func() {
				for _, c := range conns {
					c.close()
				}
			}()
			for i := range n {
				c, err := secRawDial(secFloodAddr(i), server.String(), []byte{0, 1, 0})
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			time.Sleep(500 * time.Millisecond)
			per := (heap() - h0) / n
			t.Logf("%.1f KiB of heap per half-open TURN TCP connection", per/1024)
			if per > limit {
				t.Errorf("a half-open TURN TCP connection holds %.1f KiB of heap, want at most %d KiB", per/1024, limit>>10)
			}
		})
		if err := valid.echo(echo); err != nil {
			t.Fatalf("valid client afterwards: %v", err)
		}
	})

	// Delete every allocation (Refresh with LIFETIME 0, RFC 8656 §8): the
	// gateway is back at its baseline.
	for _, c := range allocated {
		r, err := c.request(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}})
		if err != nil || secCode(r) != 0 {
			t.Errorf("deleting an allocation: error %d (%v)", secCode(r), err)
		}
	}
	st.settled(t, base, 5*time.Second)
}

// secTURNKeepAlive plays c's writes on a TURN TCP connection while reading
// (and dropping) the Binding responses, and checks that the gateway closes
// the connection at the handshake deadline counted from the connect.
func secTURNKeepAlive(st *secTarget, c secCase) error {
	conn, err := st.dial(c.fe, "")
	if err != nil {
		return err
	}
	defer conn.Close()
	connected := time.Now()
	closed := make(chan time.Time, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	for _, s := range c.steps {
		time.Sleep(s.delay)
		if _, err := conn.Write(s.send); err != nil {
			break
		}
	}
	at := <-closed
	if d := at.Sub(connected); d > st.handshake+st.handshake/2 {
		return fmt.Errorf("the connection lived %v with no allocation; the handshake deadline is %v (%s)", d.Round(time.Millisecond), st.handshake, c.spec)
	}
	return nil
}
