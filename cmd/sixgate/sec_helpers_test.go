package main

// Helpers shared by the security suites of issue 12 (sec_*_test.go): a
// gateway under attack, run either as a process (its file descriptors and
// /metrics are watched) or in-process (its goroutines are watched), raw-byte
// cases with exact expected replies, valid SOCKS 5 and SOCKS 6 clients, and
// resource baselines.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// secPassword is alice's password in every security configuration.
const secPassword = "s3cret"

// secTarget is a gateway under test: the addresses of its frontends by name,
// the echo server valid clients reach through it, and either the process or
// the in-process server.
type secTarget struct {
	t    testing.TB
	proc *gatewayProc    // process-level target, or nil
	srv  *gateway.Server // in-process target, or nil
	// udpEcho answers datagrams on the echo server's port.
	udpEcho *secUDPEcho
	// m are the in-process target's metrics.
	m     *gateway.Metrics
	fe    map[string]string
	echo  netip.AddrPort
	admin string
	// handshake is the configured handshake_timeout.
	handshake time.Duration
	// dialer makes client connections (a network namespace's, for example);
	// nil dials from the test process.
	dialer func(network, laddr, raddr string) (net.Conn, error)
}

// secFrontends are the frontends of secConfig, by name: protocol, users.
var secFrontends = []struct{ name, typ, extra string }{
	{"s6", "socks6", ""},
	{"s6auth", "socks6", `users = "staff"`},
	{"s5", "socks5", ""},
	{"s5auth", "socks5", `users = "staff"`},
	{"mix", "socks6", "accept_socks5 = true"},
}

// secConfig returns a configuration with the frontends of secFrontends on
// the given ports (same order), a direct backend, a route that unlocks
// exactly the echo server (and 127.0.0.2, every port, for the port-0 cases),
// a catch-all route that unlocks no special range, and the limits block.
func secConfig(ports []int, admin string, echo netip.AddrPort, dns string, limits string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "admin {\n  listen = %q\n}\n", admin)
	if dns != "" {
		fmt.Fprintf(&b, "resolver {\n  servers = [%q]\n  cache   = \"0s\"\n}\n", dns)
	}
	fmt.Fprintf(&b, "limits {\n%s\n}\n", limits)
	fmt.Fprintf(&b, "users \"staff\" {\n  user \"alice\" {\n    password = %q\n  }\n}\n", secPassword)
	for i, f := range secFrontends {
		fmt.Fprintf(&b, "frontend %q %q {\n  listen = \"127.0.0.1:%d\"\n  %s\n}\n", f.typ, f.name, ports[i], f.extra)
	}
	fmt.Fprintf(&b, `backend "direct" "out" {
  dial_timeout = "2s"
}
route {
  destinations = ["%s/32"]
  ports        = ["%d"]
  backend      = "out"
}
route {
  destinations = ["127.0.0.2/32"]
  backend      = "out"
}
route {
  backend = "out"
}
`, echo.Addr(), echo.Port())
	return b.String()
}

// secPorts returns one free port per frontend of secFrontends.
func secPorts(t testing.TB) []int {
	ports := make([]int, len(secFrontends))
	for i := range ports {
		ports[i] = secFreePort(t)
	}
	return ports
}

// secFreePort is freePort below the kernel's ephemeral range (32768 and up
// on Linux), so that the thousands of outgoing connections of these tests
// cannot take the port between the check and the gateway's bind. A port is
// handed out once per process: two frontends of one configuration never
// get the same one.
func secFreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		if p := 20000 + mrand.IntN(12000); gatewaytest.PortFree(p) && gatewaytest.ClaimPort(p) {
			return p
		}
	}
	return gatewaytest.FreePort(t)
}

func (st *secTarget) setFrontends(ports []int) {
	st.fe = map[string]string{}
	for i, f := range secFrontends {
		st.fe[f.name] = fmt.Sprintf("127.0.0.1:%d", ports[i])
	}
}

// startSecProcess runs sixgate as a process with secConfig; limits is the
// body of the limits block.
func startSecProcess(t *testing.T, limits string, handshake time.Duration) *secTarget {
	t.Helper()
	echo, uecho := secEchoPair(t)
	dns := startSecDNS(t)
	ports := secPorts(t)
	g := startGateway(t, secConfig(ports, "127.0.0.1:0", echo, dns, limits))
	st := &secTarget{t: t, proc: g, echo: echo, udpEcho: uecho, admin: g.Addr("admin"), handshake: handshake}
	st.setFrontends(ports)
	return st
}

// startSecProcessBin is startSecProcess with the given sixgate binary.
func startSecProcessBin(t *testing.T, bin, limits string, handshake time.Duration) *secTarget {
	t.Helper()
	echo, uecho := secEchoPair(t)
	dns := startSecDNS(t)
	ports := secPorts(t)
	g := secStartGatewayBin(t, secConfig(ports, "127.0.0.1:0", echo, dns, limits), bin)
	st := &secTarget{t: t, proc: g, echo: echo, udpEcho: uecho, admin: g.Addr("admin"), handshake: handshake}
	st.setFrontends(ports)
	return st
}

// secStartGatewayBin runs another sixgate binary than binPath through the
// harness: a shell prefix execs bin in place of binPath (same pid).
func secStartGatewayBin(t *testing.T, cfg, bin string) *gatewayProc {
	t.Helper()
	if bin == binPath {
		return startGateway(t, cfg)
	}
	return startGatewayCmd(t, cfg, []string{"sh", "-c", `exec "$0" "$2" "$3" "$4"`, bin})
}

var (
	secNoraceOnce sync.Once
	secNoraceBin  string
	secNoraceErr  error
)

// secNoraceBinary returns a sixgate binary built without the race detector,
// for the floods and the soak: they measure the gateway under load, and
// under -race on a small machine they would measure the detector (5-10x
// slower, 5-10x the memory). binPath itself when the tests run without
// -race.
func secNoraceBinary(t testing.TB) string {
	t.Helper()
	if !raceEnabled {
		return binPath
	}
	secNoraceOnce.Do(func() {
		// Next to binPath: TestMain removes that directory.
		secNoraceBin = binPath + "-norace"
		out, err := exec.Command("go", "build", "-o", secNoraceBin, ".").CombinedOutput()
		if err != nil {
			secNoraceErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if secNoraceErr != nil {
		t.Fatal(secNoraceErr)
	}
	return secNoraceBin
}

// startSecInProcess runs the gateway in this process with secConfig (no
// admin listener): goroutines can be counted and allocations measured.
func startSecInProcess(t *testing.T, limits string, handshake time.Duration) *secTarget {
	t.Helper()
	echo, uecho := secEchoPair(t)
	dns := startSecDNS(t)
	ports := secPorts(t)
	m := gateway.NewMetrics("test")
	srv := secStartServer(t, secConfig(ports, "off", echo, dns, limits), m)
	st := &secTarget{t: t, srv: srv, m: m, echo: echo, udpEcho: uecho, handshake: handshake}
	st.setFrontends(ports)
	return st
}

// secStartServer starts an in-process gateway.Server on cfg and drains it when
// the test ends. Its log goes to the test log on failure.
func secStartServer(t *testing.T, cfg string, m *gateway.Metrics) *gateway.Server {
	t.Helper()
	c, diags := gateway.ParseConfig("sec.hcl", []byte(cfg), registry())
	if diags.HasErrors() {
		t.Fatalf("config: %v\n%s", diags, cfg)
	}
	logBuf := &secLockedBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := gateway.NewServer(gateway.ServerOptions{Log: log, Registry: registry(), Metrics: m})
	if err := srv.Start(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if t.Failed() {
			t.Logf("gateway log:\n%s", logBuf.String())
		}
	})
	return srv
}

// secLockedBuffer is a bytes.Buffer safe for concurrent writers.
type secLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *secLockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 4<<20 {
		return len(p), nil // keep the head only
	}
	return l.b.Write(p)
}

func (l *secLockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSecDNS starts the test DNS server on 127.0.0.1 with a table every
// security test may rely on: localhost-like names that point at loopback,
// and NXDOMAIN for everything else.
func startSecDNS(t testing.TB) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	startDNS(t, pc, map[string][]netip.Addr{
		"loopback.test": {lo},
		"lo6.test":      {netip.MustParseAddr("::1")},
	})
	return pc.LocalAddr().String()
}

// secStartEcho starts a TCP echo server on addr until the test ends.
func secStartEcho(t testing.TB, addr string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

// secUDPEcho is a UDP echo server that counts what it receives.
type secUDPEcho struct {
	pc   *net.UDPConn
	mu   sync.Mutex
	got  int
	from map[netip.AddrPort]int
}

func (e *secUDPEcho) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got
}

// secEchoPair starts a TCP and a UDP echo server on the same 127.0.0.1
// port, so that one route unlocks both.
func secEchoPair(t testing.TB) (netip.AddrPort, *secUDPEcho) {
	t.Helper()
	for range 50 {
		ap := secStartEcho(t, "127.0.0.1:0")
		pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			continue
		}
		e := &secUDPEcho{pc: pc, from: map[netip.AddrPort]int{}}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				e.mu.Lock()
				e.got++
				e.from[from]++
				e.mu.Unlock()
				pc.WriteToUDPAddrPort(buf[:n], from)
			}
		}()
		return ap, e
	}
	t.Fatal("no port free for TCP and UDP")
	return netip.AddrPort{}, nil
}

// secCanary is a listener that must never be reached: it records every
// connection it accepts.
type secCanary struct {
	mu    sync.Mutex
	from  []string
	addrs []string
}

// secListenCanary starts a canary on each address.
func secListenCanary(t testing.TB, addrs ...string) *secCanary {
	t.Helper()
	c := &secCanary{}
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("canary %s: %v", a, err)
		}
		c.addrs = append(c.addrs, ln.Addr().String())
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				c.mu.Lock()
				c.from = append(c.from, conn.RemoteAddr().String()+" -> "+conn.LocalAddr().String())
				c.mu.Unlock()
				conn.Close()
			}
		}()
	}
	return c
}

// hits returns the connections the canary saw.
func (c *secCanary) hits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.from...)
}

// dial connects a client to a frontend, optionally from a local address.
func (st *secTarget) dial(fe, laddr string) (net.Conn, error) {
	addr, ok := st.fe[fe]
	if !ok {
		addr = fe
	}
	if st.dialer != nil {
		return st.dialer("tcp", laddr, addr)
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	if laddr != "" {
		a, err := net.ResolveTCPAddr("tcp", laddr)
		if err != nil {
			return nil, err
		}
		d.LocalAddr = a
	}
	return d.Dial("tcp", addr)
}

// ---- raw-byte cases ----

// secStep is one exchange of a raw case: bytes the client writes (nil for
// none) and the exact bytes the gateway must answer, as a hex pattern in
// which "??" is any byte and spaces are ignored ("" for no answer).
type secStep struct {
	send []byte
	want string
	// delay is waited before sending.
	delay time.Duration
	// mayFail tolerates a failed write (the gateway has already closed).
	mayFail bool
}

// secEnd is what the gateway must do after the last step.
type secEnd int

const (
	// secEndClose: it closes at once, sending nothing more (well before the
	// handshake deadline).
	secEndClose secEnd = iota
	// secEndDeadline: it sends nothing more and closes at the handshake
	// deadline, counted from the moment the client connected.
	secEndDeadline
	// secEndRelay: the request succeeded and the stream now relays to the echo
	// server.
	secEndRelay
)

func (e secEnd) String() string {
	return [...]string{"close at once", "close at the handshake deadline", "relay"}[e]
}

// secCase is one raw-byte bad-input case.
type secCase struct {
	name string
	// spec names the section of the digest (docs/spec socks6.md) or the RFC
	// the expected bytes come from.
	spec  string
	fe    string
	steps []secStep
	end   secEnd
	// laddr is the client's local address ("" for any).
	laddr string
	// play, when set, replaces run for this case.
	play func(*secTarget, secCase) error
}

// secHexPattern decodes a hex pattern into bytes and a mask ("??" = any).
func secHexPattern(t testing.TB, s string) (want, mask []byte) {
	t.Helper()
	s = strings.ReplaceAll(s, " ", "")
	if len(s)%2 != 0 {
		t.Fatalf("odd hex pattern %q", s)
	}
	want, mask = make([]byte, len(s)/2), make([]byte, len(s)/2)
	for i := range want {
		p := s[2*i : 2*i+2]
		if p == "??" {
			continue
		}
		if _, err := hex.Decode(want[i:i+1], []byte(p)); err != nil {
			t.Fatalf("hex pattern %q: %v", s, err)
		}
		mask[i] = 0xff
	}
	return want, mask
}

func secMatchMasked(got, want, mask []byte) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i]&mask[i] != want[i]&mask[i] {
			return false
		}
	}
	return true
}

// secIsReset reports a connection reset or broken pipe: the gateway closed
// with unread bytes in its receive buffer, which is a close too.
func secIsReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// secReadToClose reads until the gateway closes the connection or the deadline
// passes. closed is false on a timeout.
func secReadToClose(c net.Conn, deadline time.Time) (rest []byte, closed bool, err error) {
	c.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		rest = append(rest, buf[:n]...)
		if err != nil {
			if errors.Is(err, io.EOF) || secIsReset(err) {
				return rest, true, nil
			}
			return rest, false, err
		}
	}
}

// run plays the case against the target and checks every reply byte for
// byte, then how the gateway ends the connection. It returns what is wrong.
func (st *secTarget) run(c secCase) error {
	if c.play != nil {
		return c.play(st, c)
	}
	dialStart := time.Now()
	conn, err := st.dial(c.fe, c.laddr)
	if err != nil {
		return fmt.Errorf("dial %s: %v", c.fe, err)
	}
	defer conn.Close()
	// The gateway's deadline starts between dialStart and connected (this
	// goroutine may run late under load): the first bounds an early close,
	// the second a late one.
	connected := time.Now()
	lastWrite := connected
	closed := false
	for i, s := range c.steps {
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		if len(s.send) > 0 {
			conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write(s.send); err != nil {
				if s.mayFail && secIsReset(err) {
					closed = true
					break
				}
				return fmt.Errorf("step %d: write: %v", i, err)
			}
			lastWrite = time.Now()
		}
		if s.want == "" {
			continue
		}
		want, mask := secHexPattern(secNopTB{}, s.want)
		got := make([]byte, len(want))
		conn.SetReadDeadline(time.Now().Add(st.handshake + 5*time.Second))
		n, err := io.ReadFull(conn, got)
		if err != nil || !secMatchMasked(got, want, mask) {
			return fmt.Errorf("step %d (%s): got %x (err %v), want %s", i, c.spec, got[:n], err, s.want)
		}
	}
	if c.end == secEndRelay {
		msg := []byte("sixgate security echo")
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("relay write: %v", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
			return fmt.Errorf("relay: got %q (err %v), want %q", got, err, msg)
		}
		return nil
	}
	if closed {
		return nil
	}
	rest, ok, err := secReadToClose(conn, time.Now().Add(st.handshake+5*time.Second))
	now := time.Now()
	if len(rest) > 0 {
		return fmt.Errorf("gateway sent %x more (%s); want nothing but a close", rest, c.spec)
	}
	if !ok {
		return fmt.Errorf("gateway did not close (%v)", err)
	}
	slack := max(st.handshake/2, 300*time.Millisecond)
	switch c.end {
	case secEndClose:
		if d := now.Sub(lastWrite); d > st.handshake/2 {
			return fmt.Errorf("gateway closed %v after the last write; want at once (handshake timeout %v)", d.Round(time.Millisecond), st.handshake)
		}
	case secEndDeadline:
		if d := now.Sub(dialStart); d < st.handshake*9/10 {
			return fmt.Errorf("gateway closed %v after the connect; want at the handshake deadline %v (%s)", d.Round(time.Millisecond), st.handshake, c.spec)
		}
		if d := now.Sub(connected); d > st.handshake+slack {
			return fmt.Errorf("gateway closed %v after the connect; want at the handshake deadline %v (+%v) (%s)", d.Round(time.Millisecond), st.handshake, slack, c.spec)
		}
	}
	return nil
}

// runAll plays the cases concurrently (all at once, not limited by
// -parallel, so that the cases waiting for the handshake deadline overlap),
// each followed by a valid client on the same frontend, and reports each
// case as a subtest.
func (st *secTarget) runAll(t *testing.T, cases []secCase) {
	t.Helper()
	st.runEach(t, cases, func(c secCase) error {
		if err := st.validConnect(c.fe, c.laddr); err != nil {
			return fmt.Errorf("a valid client after the case: %v", err)
		}
		return nil
	})
}

// runEach is runAll with another check after each case (nil for none).
func (st *secTarget) runEach(t *testing.T, cases []secCase, after func(secCase) error) {
	t.Helper()
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.run(c); err != nil {
				errs[i] = err
				return
			}
			if after != nil {
				errs[i] = after(c)
			}
		}()
	}
	wg.Wait()
	for i, c := range cases {
		t.Run(c.fe+"/"+c.name, func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
		})
	}
}

// ---- valid clients ----

// secSocks5Connect runs a SOCKS 5 CONNECT to dest (user "" for no
// authentication) and returns the connection after a successful reply, or
// the reply code.
func secSocks5Connect(conn net.Conn, dest gateway.Addr, user, pass string) (s5.ReplyCode, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	m := s5.MethodNoAuth
	if user != "" {
		m = s5.MethodUserPass
	}
	g, _ := s5.Greeting{Methods: []s5.Method{m}}.Append(nil)
	if _, err := conn.Write(g); err != nil {
		return 0, err
	}
	sel, err := s5.ReadMethodSelection(conn)
	if err != nil {
		return 0, err
	}
	if sel != m {
		return 0, fmt.Errorf("method selection %v", sel)
	}
	if user != "" {
		up, _ := s5.UserPassRequest{Username: user, Password: pass}.Append(nil)
		if _, err := conn.Write(up); err != nil {
			return 0, err
		}
		status, err := s5.ReadUserPassReply(conn)
		if err != nil {
			return 0, err
		}
		if status != s5.UserPassSuccess {
			return 0, fmt.Errorf("rfc 1929 status %d", status)
		}
	}
	req, err := s5.Request{Command: s5.CmdConnect, Dest: dest}.Append(nil)
	if err != nil {
		return 0, err
	}
	if _, err := conn.Write(req); err != nil {
		return 0, err
	}
	rep, err := s5.ReadReply(conn)
	if err != nil {
		return rep.Code, err
	}
	return rep.Code, nil
}

// secSocks6Connect runs a SOCKS 6 CONNECT to dest with 0-RTT credentials (user
// "" for none) and returns the Operation Reply code; authentication
// failures are errors.
func secSocks6Connect(conn net.Conn, dest gateway.Addr, user, pass string) (s6.ReplyCode, error) {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	req := &s6.Request{Command: s6.CmdConnect, Addr: dest}
	if user != "" {
		ad, err := s6.UserPassAuthData(s6.UserPassRequest{Username: user, Password: pass})
		if err != nil {
			return 0, err
		}
		req.Options.AuthData = []s6.AuthData{ad}
	}
	b, err := s6.AppendRequest(nil, req, s6.Draft11)
	if err != nil {
		return 0, err
	}
	if _, err := conn.Write(b); err != nil {
		return 0, err
	}
	buf := make([]byte, 0, s6.MaxRequestLen)
	ar, err := s6.ReadAuthReply(conn, buf, s6.Draft11)
	if err != nil {
		return 0, err
	}
	if ar.Type != s6.AuthSuccess {
		return 0, fmt.Errorf("authentication reply type %d", ar.Type)
	}
	op, err := s6.ReadOpReply(conn, buf, s6.Draft11)
	if err != nil {
		return 0, err
	}
	return op.Code, nil
}

// secEchoCheck writes a line through conn and expects it back.
func secEchoCheck(conn net.Conn) error {
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	defer conn.SetDeadline(time.Time{})
	msg := []byte("ping through the gateway")
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q", got)
	}
	return nil
}

// validConnect makes a valid CONNECT to the echo server through frontend
// fe (its protocol and credentials chosen from the frontend) and checks the
// relay.
func (st *secTarget) validConnect(fe, laddr string) error {
	conn, err := st.dial(fe, laddr)
	if err != nil {
		return err
	}
	defer conn.Close()
	user := ""
	if strings.HasSuffix(fe, "auth") {
		user = "alice"
	}
	dest := gateway.AddrFromAddrPort(st.echo)
	if strings.HasPrefix(fe, "s5") {
		code, err := secSocks5Connect(conn, dest, user, secPassword)
		if err != nil || code != s5.RepSucceeded {
			return fmt.Errorf("socks5 connect via %s: rep %v: %v", fe, code, err)
		}
	} else {
		code, err := secSocks6Connect(conn, dest, user, secPassword)
		if err != nil || code != s6.ReplySuccess {
			return fmt.Errorf("socks6 connect via %s: code %v: %v", fe, code, err)
		}
	}
	return secEchoCheck(conn)
}

// ---- resources ----

// secFdCount counts the open file descriptors of a process, except pipes: Go
// keeps the pipes of splice(2) in a sync.Pool after a relay ends and closes
// them only when a garbage collection drops them, so their number follows
// the relay concurrency seen so far, not the sessions open now. A socket
// leak shows; a leak of splice pipes would show as pipes growing without
// bound (the soak test watches the total).
func secFdCount(pid int) int {
	n, _ := secFdCounts(pid)
	return n
}

// secFdCounts returns the descriptors that are not pipes, and the pipes.
func secFdCounts(pid int) (other, pipes int) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1, -1
	}
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/" + e.Name()); strings.HasPrefix(l, "pipe:") {
			pipes++
		} else {
			other++
		}
	}
	return other, pipes
}

// secRssBytes returns the resident set size of a process.
func secRssBytes(pid int) int64 { return secProcStatus(pid, "VmRSS") }

// secProcStatus returns a size field of /proc/<pid>/status ("VmRSS", "VmHWM")
// in bytes.
func secProcStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb << 10
			}
		}
	}
	return -1
}

// secMetricsClient fetches /metrics without keep-alive, so that polling holds
// no descriptor of the gateway's.
var secMetricsClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// metrics fetches the admin listener's /metrics (in-process: the text
// exposition of the server's registry).
func (st *secTarget) metrics() string {
	st.t.Helper()
	if st.m != nil {
		mfs, err := st.m.Registry.Gather()
		if err != nil {
			st.t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			expfmt.MetricFamilyToText(&b, mf)
		}
		return b.String()
	}
	client := secMetricsClient
	if st.dialer != nil {
		client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return st.dialer(network, "", addr) }}}
	}
	resp, err := client.Get("http://" + st.admin + "/metrics")
	if err != nil {
		st.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// secMetricSum adds up the samples of a metric whose labels include every
// label of want (e.g. `limit="auth_failures_per_ip"`).
func secMetricSum(text, name string, want ...string) float64 {
	sum := 0.0
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for _, w := range want {
			if !strings.Contains(rest, w) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// secWaitFor polls cond every 50 ms until it holds or d passes.
func secWaitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// secBaseline is a resource snapshot of the target: descriptors of the
// gateway process, or goroutines of this process for an in-process target.
type secBaseline struct {
	fds, goroutines int
	rss             int64
}

// snapshot takes the baseline after a moment of quiet.
func (st *secTarget) snapshot() secBaseline {
	time.Sleep(200 * time.Millisecond)
	if st.proc != nil {
		pid := st.proc.cmd.Process.Pid
		return secBaseline{fds: secFdCount(pid), rss: secRssBytes(pid)}
	}
	return secBaseline{goroutines: runtime.NumGoroutine()}
}

// settled asserts that the target is back at its baseline: no active
// session, descriptors (process) or goroutines (in-process) no more than at
// the baseline. It waits up to d for stragglers.
func (st *secTarget) settled(t *testing.T, b secBaseline, d time.Duration) {
	t.Helper()
	var active, assocs float64
	if !secWaitFor(d, func() bool {
		m := st.metrics()
		active = secMetricSum(m, "sixgate_sessions_active")
		assocs = secMetricSum(m, "sixgate_associations_active")
		return active == 0 && assocs == 0
	}) {
		t.Errorf("sixgate_sessions_active = %v, sixgate_associations_active = %v, want 0 and 0", active, assocs)
	}
	if st.proc != nil {
		pid := st.proc.cmd.Process.Pid
		var n int
		if !secWaitFor(d, func() bool { n = secFdCount(pid); return n <= b.fds }) {
			t.Errorf("gateway holds %d file descriptors (pipes of Go's splice pool not counted), baseline %d", n, b.fds)
			if out, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				var names []string
				for _, e := range out {
					l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
					names = append(names, e.Name()+"->"+l)
				}
				t.Logf("fds: %s", strings.Join(names, " "))
			}
		}
		return
	}
	var n int
	if !secWaitFor(d, func() bool { n = runtime.NumGoroutine(); return n <= b.goroutines }) {
		var buf bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Errorf("%d goroutines, baseline %d: a leak?\n%s", n, b.goroutines, buf.String())
	}
}

// ---- byte builders (the layouts of the digest, §3.1 and §4) ----

// secS6Req builds a SOCKS 6 Request (§3.1): Ver 06, CMD, Options Length = ol
// (pass -1 to use len(opts)), Port, Pad 00, ATYP, the address field as
// given, then the options as given.
func secS6Req(cmd byte, ol int, port uint16, atyp byte, addr []byte, opts []byte) []byte {
	if ol < 0 {
		ol = len(opts)
	}
	b := []byte{0x06, cmd, byte(ol >> 8), byte(ol), byte(port >> 8), byte(port), 0x00, atyp}
	b = append(b, addr...)
	return append(b, opts...)
}

// secIp4 returns the 4 address bytes of an IPv4 address.
func secIp4(ap netip.AddrPort) []byte { a := ap.Addr().As4(); return a[:] }

// secS6Name builds a style-A domain field (§2.1): L = len(name), the name, NUL
// padding to 4-byte alignment.
func secS6Name(name string) []byte {
	b := append([]byte{byte(len(name))}, name...)
	for (len(b))%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// secOpt builds an option (§4.1): Kind, Length = 4 + len(data) unless length
// is given (>= 0), then data.
func secOpt(kind uint16, length int, data ...byte) []byte {
	if length < 0 {
		length = 4 + len(data)
	}
	return append([]byte{byte(kind >> 8), byte(kind), byte(length >> 8), byte(length)}, data...)
}

// secAdvert builds an Authentication Method Advertisement (§4.3, kind 2) with
// an Initial Data Length and methods, padded to 4 bytes.
func secAdvert(idl uint16, methods ...byte) []byte {
	d := append([]byte{byte(idl >> 8), byte(idl)}, methods...)
	for (4+len(d))%4 != 0 {
		d = append(d, 0)
	}
	return secOpt(2, -1, d...)
}

// secAuthData01 builds the 0-RTT username/password Authentication Data option
// (§6.3): 00 04 Len 02 | 01 ULEN UNAME PLEN PASSWD | padding.
func secAuthData01(user, pass string) []byte {
	d := []byte{0x02, 0x01, byte(len(user))}
	d = append(d, user...)
	d = append(d, byte(len(pass)))
	d = append(d, pass...)
	for (4+len(d))%4 != 0 {
		d = append(d, 0)
	}
	return secOpt(4, -1, d...)
}

// secRfc1929 builds a raw RFC 1929 request: 01 ULEN UNAME PLEN PASSWD.
func secRfc1929(user, pass string) []byte {
	b := []byte{0x01, byte(len(user))}
	b = append(b, user...)
	b = append(b, byte(len(pass)))
	return append(b, pass...)
}

// secS5Req builds a SOCKS 5 request (RFC 1928 §4): 05 CMD 00 ATYP addr port.
func secS5Req(cmd, atyp byte, addr []byte, port uint16) []byte {
	b := []byte{0x05, cmd, 0x00, atyp}
	b = append(b, addr...)
	return binary.BigEndian.AppendUint16(b, port)
}

// secS5Name is a SOCKS 5 domain address field: L, then the name.
func secS5Name(name string) []byte { return append([]byte{byte(len(name))}, name...) }

// secLongName returns a syntactically valid host name of exactly n bytes
// (labels of at most 63 bytes).
func secLongName(n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		l := min(63, n-b.Len())
		if l <= 0 {
			break
		}
		b.WriteString(strings.Repeat("a", l))
	}
	s := b.String()
	if len(s) > n {
		s = s[:n]
	}
	if strings.HasSuffix(s, ".") {
		s = s[:len(s)-1] + "b"
	}
	return s
}

// secHexOf formats bytes for a hex pattern.
func secHexOf(b []byte) string { return hex.EncodeToString(b) }
