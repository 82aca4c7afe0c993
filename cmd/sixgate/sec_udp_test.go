package main

// UDP relay bad input (issue 12, parts 1 and 2): datagrams with unknown
// association IDs, from foreign sources, on the wrong channel, malformed,
// or to denied destinations are dropped silently and counted in
// sixgate_dropped_datagrams_total by reason, and a real association keeps
// echoing. SOCKS 6 (§8) and SOCKS 5 (RFC 1928 §7).

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// secS6Assoc is a SOCKS 6 UDP association seen from the client.
type secS6Assoc struct {
	ctrl net.Conn
	id   s6.AssocID
	udp  *net.UDPConn
	buf  []byte
}

// s6Associate opens a UDP ASSOCIATE for any address and port (§9 TV9
// without options) and reads the Authentication Reply, the Operation Reply
// and the Association Initialization (§3.6).
func (st *secTarget) s6Associate(fe string) (*secS6Assoc, error) {
	c, err := st.dial(fe, "")
	if err != nil {
		return nil, err
	}
	a := &secS6Assoc{ctrl: c, buf: make([]byte, s6.MaxUDPMessageLen)}
	fail := func(err error) (*secS6Assoc, error) { c.Close(); return nil, err }
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(secS6Req(3, 0, 0, 1, []byte{0, 0, 0, 0}, nil)); err != nil {
		return fail(err)
	}
	rb := make([]byte, 0, s6.MaxRequestLen)
	ar, err := s6.ReadAuthReply(c, rb, s6.Draft11)
	if err != nil || ar.Type != s6.AuthSuccess {
		return fail(fmt.Errorf("authentication reply %v: %v", ar.Type, err))
	}
	op, err := s6.ReadOpReply(c, rb, s6.Draft11)
	if err != nil || op.Code != s6.ReplySuccess {
		return fail(fmt.Errorf("operation reply %v: %v", op.Code, err))
	}
	m, err := s6.ReadUDPMessage(c, a.buf)
	if err != nil || m.Type != s6.UDPInit {
		return fail(fmt.Errorf("association initialization %v: %v", m.Type, err))
	}
	a.id = m.Assoc
	return a, nil
}

func (a *secS6Assoc) close() {
	a.ctrl.Close()
	if a.udp != nil {
		a.udp.Close()
	}
}

// mapUDP maps the association to a new UDP socket with the receive-first
// Datagram (§8.5 item 7, §9 TV14), resent until the Confirmation arrives on
// TCP (§9 TV12).
func (a *secS6Assoc) mapUDP(relay string) error {
	ra, err := net.ResolveUDPAddr("udp", relay)
	if err != nil {
		return err
	}
	a.udp, err = net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, ra)
	if err != nil {
		return err
	}
	first, _ := s6.AppendDatagram(nil, a.id, gateway.Addr{IP: netip.IPv4Unspecified()}, nil)
	// Resend until confirmed, from another goroutine: a read deadline in
	// the middle of a message would tear the stream.
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(300 * time.Millisecond)
		defer tick.Stop()
		for {
			a.udp.Write(first)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	a.ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer a.ctrl.SetReadDeadline(time.Time{})
	m, err := s6.ReadUDPMessage(a.ctrl, a.buf)
	if err != nil || m.Type != s6.UDPConfirm || m.Assoc != a.id {
		return fmt.Errorf("confirmation for %x: %v %x: %v", a.id, m.Type, m.Assoc, err)
	}
	return nil
}

// mapTCP maps the association to its control connection with the
// receive-first Datagram sent on TCP.
func (a *secS6Assoc) mapTCP() error {
	first, _ := s6.AppendDatagram(nil, a.id, gateway.Addr{IP: netip.IPv4Unspecified()}, nil)
	a.ctrl.SetDeadline(time.Now().Add(3 * time.Second))
	defer a.ctrl.SetDeadline(time.Time{})
	if _, err := a.ctrl.Write(first); err != nil {
		return err
	}
	m, err := s6.ReadUDPMessage(a.ctrl, a.buf)
	if err != nil || m.Type != s6.UDPConfirm || m.Assoc != a.id {
		return fmt.Errorf("confirmation: %v: %v", m.Type, err)
	}
	return nil
}

// echo sends payload to dst through the mapped UDP channel and waits for
// the echo server's answer, relayed as a Datagram from dst (§8.3).
func (a *secS6Assoc) echo(dst netip.AddrPort, payload []byte, wait time.Duration) error {
	d, _ := s6.AppendDatagram(nil, a.id, gateway.AddrFromAddrPort(dst), payload)
	if _, err := a.udp.Write(d); err != nil {
		return err
	}
	buf := make([]byte, 70000)
	deadline := time.Now().Add(wait)
	for {
		a.udp.SetReadDeadline(deadline)
		n, err := a.udp.Read(buf)
		if err != nil {
			return fmt.Errorf("no echo: %w", err)
		}
		m, _, err := s6.ParseUDPMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("bad datagram from the relay %x: %v", buf[:n], err)
		}
		if m.Type == s6.UDPDatagram && m.Assoc == a.id && bytes.Equal(m.Payload, payload) {
			if m.Addr.AddrPort() != dst {
				return fmt.Errorf("echo from %v, want %v", m.Addr, dst)
			}
			return nil
		}
		// An older echo that arrived late: keep waiting for this one.
	}
}

// quiet asserts that nothing arrives on c for d.
func secQuiet(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err == nil {
		return fmt.Errorf("got %x", buf[:n])
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// dropped returns sixgate_dropped_datagrams_total for a frontend and
// reason.
func (st *secTarget) dropped(fe, reason string) float64 {
	return secMetricSum(st.metrics(), "sixgate_dropped_datagrams_total", `frontend="`+fe+`"`, `reason="`+reason+`"`)
}

// secUDPCanary is a UDP socket that must never receive anything.
func secUDPCanary(t testing.TB) (*net.UDPConn, func() int) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			mu.Lock()
			n++
			mu.Unlock()
		}
	}()
	return pc, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// secUDPCase is one datagram that must be dropped and counted.
type secUDPCase struct {
	name, spec string
	// from is the socket it is sent from: "client" (the mapped socket),
	// "tcp" (the control connection), "" (a new socket on 127.0.0.1) or a
	// local address to bind ("127.0.0.5:0").
	from string
	msg  []byte
	// reason is the sixgate_dropped_datagrams_total reason that must grow
	// by one; "" when the datagram must be relayed (the echo answers).
	reason string
}

func TestSecUDPSOCKS6(t *testing.T) {
	st := startSecInProcess(t, secBadInputLimits, time.Second)
	canary, canaryHits := secUDPCanary(t)
	canaryAP := canary.LocalAddr().(*net.UDPAddr).AddrPort()
	base := st.snapshot()
	relay := st.fe["s6"]
	a, err := st.s6Associate("s6")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.mapUDP(relay); err != nil {
		t.Fatal(err)
	}
	if err := a.echo(st.echo, []byte("hello"), 2*time.Second); err != nil {
		t.Fatalf("valid association: %v", err)
	}
	dg := func(id s6.AssocID, dst netip.AddrPort, payload string) []byte {
		b, _ := s6.AppendDatagram(nil, id, gateway.AddrFromAddrPort(dst), []byte(payload))
		return b
	}
	var random s6.AssocID
	rand.Read(random[:])
	good := dg(a.id, st.echo, "x")
	long := append([]byte{}, good...)
	binary.BigEndian.PutUint16(long[2:], uint16(len(good)+10))
	v5 := append([]byte{}, good...)
	v5[0] = 5
	initMsg := s6.AppendAssocInit(nil, a.id)
	errMsg, _ := s6.AppendUDPMessage(nil, &s6.UDPMessage{Type: s6.UDPError, Assoc: a.id,
		Addr: gateway.AddrFromAddrPort(st.echo), Code: 2, Reporter: netip.MustParseAddr("127.0.0.1")})
	atyp2 := append([]byte{}, good...)
	atyp2[12] = 2
	cases := []secUDPCase{
		{name: "unknown association ID", spec: "§8.5: drop silently", msg: dg(random, st.echo, "x"), reason: "unknown_id"},
		{name: "unknown association ID from the mapped socket", spec: "§8.5", from: "client", msg: dg(random, st.echo, "x"), reason: "unknown_id"},
		{name: "right ID from a foreign IP", spec: "§8.5 item 4", from: "127.0.0.5:0", msg: good, reason: "foreign_source"},
		{name: "right ID from another port of the client's IP", spec: "§8.5 item 4", from: "", msg: good, reason: "wrong_channel"},
		{name: "right ID on TCP after the UDP mapping", spec: "§8.5 item 4", from: "tcp", msg: good, reason: "wrong_channel"},
		{name: "Message Length larger than received", spec: "§8.4: drop silently", from: "client", msg: long, reason: "malformed"},
		{name: "version 5", spec: "§8.5", from: "client", msg: v5, reason: "malformed"},
		{name: "Association Initialization from the client", spec: "§8.2 direction", from: "client", msg: initMsg, reason: "malformed"},
		{name: "Error message from the client", spec: "§8.3: clients must not send Error", from: "client", msg: errMsg, reason: "malformed"},
		{name: "header only (12 bytes)", spec: "§8.5", from: "client", msg: good[:12], reason: "malformed"},
		{name: "ATYP 2", spec: "§8.3", from: "client", msg: atyp2, reason: "malformed"},
		{name: "denied destination 169.254.169.254", spec: "SSRF", from: "client", msg: dg(a.id, netip.MustParseAddrPort("169.254.169.254:80"), "x"), reason: "denied"},
		{name: "denied destination 10.0.0.1", spec: "SSRF", from: "client", msg: dg(a.id, netip.MustParseAddrPort("10.0.0.1:53"), "x"), reason: "denied"},
		{name: "denied destination 127.0.0.1 (a port no route unlocks)", spec: "SSRF", from: "client", msg: dg(a.id, canaryAP, "x"), reason: "denied"},
		{name: "denied destination [::ffff:127.0.0.1]", spec: "SSRF", from: "client",
			msg: dg(a.id, netip.AddrPortFrom(netip.AddrFrom16(canaryAP.Addr().As16()), canaryAP.Port()), "x"), reason: "denied"},
		{name: "padding after Message Length is ignored", spec: "§8.4", from: "client", msg: append(dg(a.id, st.echo, "padded"), 0, 0, 0, 0)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := st.dropped("s6", c.reason)
			echoed := st.udpEcho.received()
			var sock net.Conn
			switch c.from {
			case "client":
				sock = a.udp
			case "tcp":
				sock = a.ctrl
			default:
				laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
				if c.from != "" {
					laddr, _ = net.ResolveUDPAddr("udp", c.from)
				}
				ra, _ := net.ResolveUDPAddr("udp", relay)
				u, err := net.DialUDP("udp", laddr, ra)
				if err != nil {
					t.Fatal(err)
				}
				defer u.Close()
				sock = u
			}
			if _, err := sock.Write(c.msg); err != nil {
				t.Fatal(err)
			}
			if c.reason == "" {
				if !secWaitFor(2*time.Second, func() bool { return st.udpEcho.received() > echoed }) {
					t.Fatal("the datagram was not relayed")
				}
			} else {
				var got float64
				if !secWaitFor(2*time.Second, func() bool { got = st.dropped("s6", c.reason) - before; return got >= 1 }) {
					t.Fatalf("sixgate_dropped_datagrams_total{reason=%q} grew by %v, want 1 (%s)", c.reason, got, c.spec)
				}
				if sock != a.ctrl {
					if err := secQuiet(sock, 100*time.Millisecond); err != nil && sock != a.udp {
						t.Errorf("the relay answered a dropped datagram: %v", err)
					}
				}
				if n := st.udpEcho.received() - echoed; n > 0 {
					t.Errorf("the echo server received %d datagrams", n)
				}
			}
			if err := a.echo(st.echo, []byte("still there"), 2*time.Second); err != nil {
				t.Fatalf("the valid association after the case: %v", err)
			}
		})
	}
	if n := canaryHits(); n > 0 {
		t.Errorf("a denied destination received %d datagrams", n)
	}

	t.Run("over TCP", func(t *testing.T) {
		b, err := st.s6Associate("s6")
		if err != nil {
			t.Fatal(err)
		}
		defer b.close()
		if err := b.mapTCP(); err != nil {
			t.Fatal(err)
		}
		before := st.dropped("s6", "wrong_channel")
		b.ctrl.Write(dg(a.id, st.echo, "another association's ID"))
		if !secWaitFor(2*time.Second, func() bool { return st.dropped("s6", "wrong_channel")-before == 1 }) {
			t.Error("a Datagram with another association's ID on TCP was not counted as wrong_channel")
		}
		// A malformed message leaves the stream undelimited: the
		// association ends (§8.4).
		before = st.dropped("s6", "malformed")
		b.ctrl.Write(v5)
		rest, closed, err := secReadToClose(b.ctrl, time.Now().Add(3*time.Second))
		if !closed || len(rest) > 0 {
			t.Errorf("after a malformed message on TCP: got %x, closed %v (%v); want a close", rest, closed, err)
		}
		if got := st.dropped("s6", "malformed") - before; got != 1 {
			t.Errorf("malformed grew by %v, want 1", got)
		}
		if err := a.echo(st.echo, []byte("unaffected"), 2*time.Second); err != nil {
			t.Errorf("the UDP association after the other one ended: %v", err)
		}
	})
	a.close()
	st.settled(t, base, 5*time.Second)
}

// secS5Assoc is a SOCKS 5 UDP association seen from the client.
type secS5Assoc struct {
	ctrl  net.Conn
	relay netip.AddrPort
	udp   *net.UDPConn
}

// s5Associate runs UDP ASSOCIATE (RFC 1928 §4, §7) with DST 0.0.0.0:0.
func (st *secTarget) s5Associate(fe string) (*secS5Assoc, error) {
	c, err := st.dial(fe, "")
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	c.Write([]byte{5, 1, 0})
	c.Write(secS5Req(3, 1, []byte{0, 0, 0, 0}, 0))
	rep := make([]byte, 2+10)
	if _, err := io.ReadFull(c, rep); err != nil {
		c.Close()
		return nil, err
	}
	if !bytes.Equal(rep[:4], []byte{5, 0, 5, 0}) || rep[5] != 1 {
		c.Close()
		return nil, fmt.Errorf("reply %x", rep)
	}
	ip := netip.AddrFrom4([4]byte(rep[6:10]))
	relay := netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rep[10:12]))
	u, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(relay))
	if err != nil {
		c.Close()
		return nil, err
	}
	return &secS5Assoc{ctrl: c, relay: relay, udp: u}, nil
}

// secS5UDP builds a SOCKS 5 UDP request header and payload (RFC 1928 §7):
// RSV 0000, FRAG, ATYP 1, DST.ADDR, DST.PORT, DATA.
func secS5UDP(frag byte, dst netip.AddrPort, payload string) []byte {
	a := dst.Addr().As4()
	b := []byte{0, 0, frag, 1, a[0], a[1], a[2], a[3]}
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return append(b, payload...)
}

func (a *secS5Assoc) echo(dst netip.AddrPort, payload string) error {
	if _, err := a.udp.Write(secS5UDP(0, dst, payload)); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	a.udp.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		n, err := a.udp.Read(buf)
		if err != nil {
			return fmt.Errorf("no echo: %w", err)
		}
		want := secS5UDP(0, dst, payload)
		if bytes.Equal(buf[:n], want) {
			return nil
		}
	}
}

func TestSecUDPSOCKS5(t *testing.T) {
	st := startSecInProcess(t, secBadInputLimits, time.Second)
	canary, canaryHits := secUDPCanary(t)
	canaryAP := canary.LocalAddr().(*net.UDPAddr).AddrPort()
	base := st.snapshot()
	a, err := st.s5Associate("s5")
	if err != nil {
		t.Fatal(err)
	}
	defer a.ctrl.Close()
	defer a.udp.Close()
	if err := a.echo(st.echo, "hello"); err != nil {
		t.Fatalf("valid association: %v", err)
	}
	atyp5 := secS5UDP(0, st.echo, "x")
	atyp5[3] = 5
	cases := []secUDPCase{
		{name: "from a foreign IP", spec: "RFC 1928 §7: only from the client", from: "127.0.0.5:0", msg: secS5UDP(0, st.echo, "x"), reason: "foreign_source"},
		{name: "from another port of the client's IP", spec: "RFC 1928 §7", from: "", msg: secS5UDP(0, st.echo, "x"), reason: "foreign_source"},
		{name: "FRAG 1", spec: "RFC 1928 §7: fragmentation not supported, drop", from: "client", msg: secS5UDP(1, st.echo, "x"), reason: "fragment"},
		{name: "header cut short", spec: "RFC 1928 §7", from: "client", msg: []byte{0, 0, 0, 1, 127}, reason: "malformed"},
		{name: "ATYP 5", spec: "RFC 1928 §7", from: "client", msg: atyp5, reason: "malformed"},
		{name: "denied destination 169.254.169.254", spec: "SSRF", from: "client", msg: secS5UDP(0, netip.MustParseAddrPort("169.254.169.254:80"), "x"), reason: "denied"},
		{name: "denied destination 127.0.0.1 (a port no route unlocks)", spec: "SSRF", from: "client", msg: secS5UDP(0, canaryAP, "x"), reason: "denied"},
		{name: "denied destination: the relay socket itself", spec: "own sockets", from: "client", msg: secS5UDP(0, a.relay, "x"), reason: "denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := st.dropped("s5", c.reason)
			echoed := st.udpEcho.received()
			sock := a.udp
			if c.from != "client" {
				laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
				if c.from != "" {
					laddr, _ = net.ResolveUDPAddr("udp", c.from)
				}
				u, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(a.relay))
				if err != nil {
					t.Fatal(err)
				}
				defer u.Close()
				sock = u
			}
			if _, err := sock.Write(c.msg); err != nil {
				t.Fatal(err)
			}
			var got float64
			if !secWaitFor(2*time.Second, func() bool { got = st.dropped("s5", c.reason) - before; return got >= 1 }) {
				t.Fatalf("sixgate_dropped_datagrams_total{reason=%q} grew by %v, want 1 (%s)", c.reason, got, c.spec)
			}
			if sock != a.udp {
				if err := secQuiet(sock, 100*time.Millisecond); err != nil {
					t.Errorf("the relay answered a dropped datagram: %v", err)
				}
			}
			if n := st.udpEcho.received() - echoed; n > 0 {
				t.Errorf("the echo server received %d datagrams", n)
			}
			if err := a.echo(st.echo, "still there"); err != nil {
				t.Fatalf("the valid association after the case: %v", err)
			}
		})
	}
	if n := canaryHits(); n > 0 {
		t.Errorf("a denied destination received %d datagrams", n)
	}
	a.ctrl.Close()
	a.udp.Close()
	st.settled(t, base, 5*time.Second)
}

// secFlooder sends Datagrams with fresh random-looking association IDs
// (§8.5: an unknown ID is dropped silently) from 127.0.0.9.
type secFlooder struct {
	conn *net.UDPConn
	msg  []byte
	next uint64
	sent int
}

func secNewFlooder(t *testing.T, relay string, dst netip.AddrPort) *secFlooder {
	ra, _ := net.ResolveUDPAddr("udp", relay)
	c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9)}, ra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f := &secFlooder{conn: c}
	f.msg, _ = s6.AppendDatagram(nil, s6.AssocID{}, gateway.AddrFromAddrPort(dst), []byte("flood payload"))
	var seed [8]byte
	rand.Read(seed[:])
	f.next = binary.BigEndian.Uint64(seed[:])
	return f
}

func (f *secFlooder) send() {
	f.next++
	binary.BigEndian.PutUint64(f.msg[4:12], f.next)
	f.conn.Write(f.msg)
	f.sent++
}

// TestSecUDPFloodAllocs: an in-process gateway drops Datagrams with unknown
// association IDs without allocating. The test sends them in batches of 100
// and waits for each batch to be counted (so the kernel drops none), and
// subtracts what its own sends and counter reads allocate (measured with
// testing.AllocsPerRun) from the process's malloc count.
func TestSecUDPFloodAllocs(t *testing.T) {
	const n, batch = 20000, 100
	st := startSecInProcess(t, secBadInputLimits, time.Second)
	f := secNewFlooder(t, st.fe["s6"], st.echo)
	c := st.m.DatagramsDropped.WithLabelValues("s6", "unknown_id")
	read := func() int {
		var m dto.Metric
		c.Write(&m)
		return int(m.GetCounter().GetValue())
	}
	polls := 0
	wait := func() bool {
		deadline := time.Now().Add(5 * time.Second)
		for {
			polls++
			if read() >= f.sent {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	for range 1000 { // warm-up: every lazily made piece exists now
		f.send()
	}
	if !wait() {
		t.Fatalf("the gateway counted %d of %d", read(), f.sent)
	}
	sendAllocs := testing.AllocsPerRun(100, f.send)
	readAllocs := testing.AllocsPerRun(100, func() { read() })
	if !wait() {
		t.Fatalf("the gateway counted %d of %d", read(), f.sent)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	polls = 0
	start := time.Now()
	for i := range n {
		f.send()
		if i%batch == batch-1 && !wait() {
			t.Fatalf("the gateway counted %d of %d", read(), f.sent)
		}
	}
	took := time.Since(start)
	runtime.ReadMemStats(&m1)
	total := float64(m1.Mallocs - m0.Mallocs)
	own := float64(n)*sendAllocs + float64(polls)*readAllocs
	perPacket := (total - own) / n
	t.Logf("%d datagrams with unknown IDs in %v: %.0f allocations in the process, %.0f by the test's own sends and %d counter reads: %.4f per datagram in the gateway",
		n, took.Round(time.Millisecond), total, own, polls, perPacket)
	if perPacket > 0.01 {
		t.Errorf("%.3f allocations per dropped datagram, want none", perPacket)
	}
}

// TestSecUDPFlood floods the SOCKS 6 relay port of a sixgate process
// (without the race detector) with Datagrams carrying unknown association
// IDs at 50k per second, while a real association echoes through the same
// port: its echoes must keep coming back, and the gateway's RSS must not
// grow.
func TestSecUDPFlood(t *testing.T) {
	const (
		n     = 100000
		rate  = 50000                 // datagrams per second
		probe = 10 * time.Millisecond // pause between two echoes
	)
	st := startSecProcessBin(t, secNoraceBinary(t), secBadInputLimits, time.Second)
	pid := st.proc.cmd.Process.Pid
	base := st.snapshot()
	a, err := st.s6Associate("s6")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.mapUDP(st.fe["s6"]); err != nil {
		t.Fatal(err)
	}
	if err := a.echo(st.echo, []byte("warm-up"), 2*time.Second); err != nil {
		t.Fatal(err)
	}
	f := secNewFlooder(t, st.fe["s6"], st.echo)
	unknown := func() float64 { return st.dropped("s6", "unknown_id") }
	u0 := unknown()
	rss0 := secRssBytes(pid)

	stop := make(chan struct{})
	var probes, lost int
	var worst time.Duration
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			err := a.echo(st.echo, []byte(fmt.Sprintf("probe %d", i)), 500*time.Millisecond)
			probes++
			if err != nil {
				lost++
			} else {
				worst = max(worst, time.Since(start))
			}
			time.Sleep(probe)
		}
	}()
	start := time.Now()
	const burst = rate / 100
	for i := range n {
		f.send()
		if i%burst == burst-1 {
			if d := time.Until(start.Add(time.Duration(i/burst+1) * 10 * time.Millisecond)); d > 0 {
				time.Sleep(d)
			}
		}
	}
	took := time.Since(start)
	last := -1.0
	secWaitFor(5*time.Second, func() bool {
		time.Sleep(100 * time.Millisecond)
		u := unknown()
		done := u == last
		last = u
		return done
	})
	close(stop)
	pwg.Wait()
	rss1 := secRssBytes(pid)
	t.Logf("%d datagrams with unknown IDs in %v, %v dropped by the gateway; RSS %d KiB before, %d KiB after",
		n, took.Round(time.Millisecond), last-u0, rss0>>10, rss1>>10)
	t.Logf("the real association meanwhile: %d echoes, %d lost, slowest %v", probes, lost, worst.Round(time.Microsecond))
	if last-u0 < n*9/10 {
		t.Errorf("the gateway saw only %v of %d datagrams", last-u0, n)
	}
	if lost > probes/50 || probes < 50 {
		t.Errorf("the real association lost %d of %d echoes during the flood", lost, probes)
	}
	if rss1-rss0 > 4<<20 {
		t.Errorf("RSS grew by %d KiB during the flood", (rss1-rss0)>>10)
	}
	a.close()
	st.settled(t, base, 5*time.Second)
}
