package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// echoServer is a TCP echo server on 127.0.0.1.
func echoServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// socks5Connect performs a SOCKS 5 CONNECT (optionally with RFC 1929
// credentials) and returns the connection and the reply code.
func socks5Connect(t testing.TB, proxy, dest, user, pass string) (net.Conn, s5.ReplyCode, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxy, 3*time.Second)
	if err != nil {
		return nil, 0, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	m := s5.MethodNoAuth
	if user != "" {
		m = s5.MethodUserPass
	}
	b, _ := s5.Greeting{Methods: []s5.Method{m}}.Append(nil)
	c.Write(b)
	got, err := s5.ReadMethodSelection(c)
	if err != nil || got != m {
		c.Close()
		return nil, 0, fmt.Errorf("method selection %v: %w", got, err)
	}
	if user != "" {
		b, _ = s5.UserPassRequest{Username: user, Password: pass}.Append(nil)
		c.Write(b)
		if st, err := s5.ReadUserPassReply(c); err != nil || st != s5.UserPassSuccess {
			c.Close()
			return nil, 0, fmt.Errorf("auth status %d: %w", st, err)
		}
	}
	d, err := gateway.ParseAddr(dest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = s5.Request{Command: s5.CmdConnect, Dest: d}.Append(nil)
	c.Write(b)
	rep, err := s5.ReadReply(c)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	c.SetDeadline(time.Time{})
	return c, rep.Code, nil
}

// echoRoundTrip writes a message and reads it back.
func echoRoundTrip(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// metric returns the value of one series from /metrics (0 if absent).
func (g *gatewayProc) metric(series string) float64 {
	g.t.Helper()
	_, body := g.get("/metrics")
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, series)), 64)
			return v
		}
	}
	return 0
}

func opsConfig(port int, backend, extra string) string {
	return fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
shutdown_grace = "3s"
users "staff" {
  user "alice" {
    password = "a"
  }
  user "bob" {
    password = "b"
  }
}
%s
frontend "socks5" "main" {
  listen = "127.0.0.1:%d"
  users  = "staff"
}
backend "direct" "one" {}
backend "direct" "two" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = %q
}
`, extra, port, backend)
}

// TestReloadKeepsSessionsAndListener holds a session open across two
// reloads — one that moves the route to another backend, one with a broken
// file — while a client dials in a loop: no dial is refused, the old session
// keeps working, new sessions follow the new route, and the broken reload
// leaves everything running with the reload metric at 0.
func TestReloadKeepsSessionsAndListener(t *testing.T) {
	echo := echoServer(t)
	port := gatewaytest.FreePort(t)
	proxy := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGateway(t, opsConfig(port, "one", ""))
	old, code, err := socks5Connect(t, proxy, echo, "alice", "a")
	if err != nil || code != 0 {
		t.Fatalf("connect: %v %v", code, err)
	}
	defer old.Close()
	if err := echoRoundTrip(old, "before"); err != nil {
		t.Fatal(err)
	}
	var refused, dials atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", proxy, time.Second)
			dials.Add(1)
			if err != nil {
				refused.Add(1)
				continue
			}
			c.Close()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	g.rewriteConfig(opsConfig(port, "two", ""))
	g.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == 1 })
	nw, code, err := socks5Connect(t, proxy, echo, "bob", "b")
	if err != nil || code != 0 {
		t.Fatalf("connect after reload: %v %v", code, err)
	}
	defer nw.Close()
	if err := echoRoundTrip(nw, "new"); err != nil {
		t.Fatal(err)
	}
	if n := g.metric(`sixgate_backend_dial_seconds_count{backend="two",result="ok"}`); n != 1 {
		t.Fatalf("new session did not follow the new route: dials via two = %v", n)
	}
	if err := echoRoundTrip(old, "still alive"); err != nil {
		t.Fatalf("old session after reload: %v", err)
	}
	g.rewriteConfig("frontend \"socks5\" \"main\" {\n  listn = 1\n}\n")
	g.Signal(syscall.SIGHUP)
	waitFor(t, "failed reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="failure"}`) == 1 })
	if v := g.metric("sixgate_config_last_reload_successful"); v != 0 {
		t.Fatalf("last_reload_successful = %v after a broken file", v)
	}
	if err := echoRoundTrip(old, "after broken"); err != nil {
		t.Fatal(err)
	}
	c3, code, err := socks5Connect(t, proxy, echo, "alice", "a")
	if err != nil || code != 0 {
		t.Fatalf("connect after broken reload: %v %v", code, err)
	}
	c3.Close()
	close(stop)
	wg.Wait()
	if refused.Load() != 0 {
		t.Fatalf("%d of %d dials refused during reloads", refused.Load(), dials.Load())
	}
	if !strings.Contains(g.Log(), "Unsupported argument") {
		t.Error("the broken reload's diagnostics were not logged")
	}
}

// TestReloadRevokesRemovedUser: a user removed by a reload loses an open
// session.
func TestReloadRevokesRemovedUser(t *testing.T) {
	echo := echoServer(t)
	port := gatewaytest.FreePort(t)
	proxy := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGateway(t, opsConfig(port, "one", ""))
	bobConn, _, err := socks5Connect(t, proxy, echo, "bob", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer bobConn.Close()
	aliceConn, _, err := socks5Connect(t, proxy, echo, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer aliceConn.Close()
	cfg := strings.Replace(opsConfig(port, "one", ""), "  user \"bob\" {\n    password = \"b\"\n  }\n", "", 1)
	g.rewriteConfig(cfg)
	g.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == 1 })
	bobConn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := bobConn.Read(make([]byte, 1)); err == nil || errors.Is(err, errTimeout) {
		t.Fatalf("bob's session survived his removal: %v", err)
	}
	if err := echoRoundTrip(aliceConn, "alice stays"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := socks5Connect(t, proxy, echo, "bob", "b"); err == nil {
		t.Fatal("removed user authenticated")
	}
}

var errTimeout = errors.New("timeout")

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestDrainCompletesTransfer: SIGTERM during a transfer that fits in the
// grace period lets it finish, /readyz is 503 meanwhile, and the exit is 0.
func TestDrainCompletesTransfer(t *testing.T) {
	// A destination that sends 10 chunks over about a second.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for i := range 10 {
			fmt.Fprintf(c, "chunk %d\n", i)
			time.Sleep(100 * time.Millisecond)
		}
	}()
	port := gatewaytest.FreePort(t)
	g := startGateway(t, opsConfig(port, "one", ""))
	c, code, err := socks5Connect(t, fmt.Sprintf("127.0.0.1:%d", port), ln.Addr().String(), "alice", "a")
	if err != nil || code != 0 {
		t.Fatalf("connect: %v %v", code, err)
	}
	defer c.Close()
	time.Sleep(150 * time.Millisecond)
	g.Signal(syscall.SIGTERM)
	waitFor(t, "readyz 503", func() bool { code, _ := g.get("/readyz"); return code == 503 })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("transfer interrupted: %v (got %q)", err, got)
	}
	if n := strings.Count(string(got), "chunk"); n != 10 {
		t.Fatalf("got %d chunks: %q", n, got)
	}
	exit, ok := g.Wait(5 * time.Second)
	if !ok || exit != 0 {
		t.Fatalf("exit %d ok=%v", exit, ok)
	}
}

// TestDrainGraceEnds: a session longer than the grace period is closed when
// it ends, and the process still exits 0.
func TestDrainGraceEnds(t *testing.T) {
	echo := echoServer(t)
	port := gatewaytest.FreePort(t)
	cfg := strings.Replace(opsConfig(port, "one", ""), `shutdown_grace = "3s"`, `shutdown_grace = "500ms"`, 1)
	g := startGateway(t, cfg)
	c, _, err := socks5Connect(t, fmt.Sprintf("127.0.0.1:%d", port), echo, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	g.Signal(syscall.SIGTERM)
	exit, ok := g.Wait(5 * time.Second)
	if !ok || exit != 0 {
		t.Fatalf("exit %d ok=%v", exit, ok)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Fatalf("drain took %v with a 500ms grace", d)
	}
}

var limitRE = regexp.MustCompile(`sixgate_limit_rejections_total\{frontend="main",limit="([a-z_]+)"\} (\d+)`)

func TestLimits(t *testing.T) {
	echo := echoServer(t)
	t.Run("max_sessions", func(t *testing.T) {
		port := gatewaytest.FreePort(t)
		g := startGateway(t, opsConfig(port, "one", "limits {\n  max_sessions = 2\n}"))
		proxy := fmt.Sprintf("127.0.0.1:%d", port)
		for range 2 {
			c, _, err := socks5Connect(t, proxy, echo, "alice", "a")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte{5, 1, 2})
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		got, _ := io.ReadAll(c)
		if string(got) != "\x05\xff" {
			t.Fatalf("over the limit: got %x, want 05ff", got)
		}
		waitFor(t, "metric", func() bool { return g.metric(`sixgate_limit_rejections_total{frontend="main",limit="sessions"}`) == 1 })
	})
	t.Run("max_sessions_per_user", func(t *testing.T) {
		port := gatewaytest.FreePort(t)
		g := startGateway(t, opsConfig(port, "one", "limits {\n  max_sessions_per_user = 1\n}"))
		proxy := fmt.Sprintf("127.0.0.1:%d", port)
		c, _, err := socks5Connect(t, proxy, echo, "alice", "a")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, code, err := socks5Connect(t, proxy, echo, "alice", "a")
		if err != nil || code != s5.RepNotAllowed {
			t.Fatalf("second session of alice: code %v err %v, want 0x02", code, err)
		}
		if c2, code, err := socks5Connect(t, proxy, echo, "bob", "b"); err != nil || code != 0 {
			t.Fatalf("bob: %v %v", code, err)
		} else {
			c2.Close()
		}
		waitFor(t, "metric", func() bool {
			return g.metric(`sixgate_limit_rejections_total{frontend="main",limit="sessions_per_user"}`) == 1
		})
	})
	t.Run("max_sessions_per_ip", func(t *testing.T) {
		port := gatewaytest.FreePort(t)
		g := startGateway(t, opsConfig(port, "one", "limits {\n  max_sessions_per_ip = 1\n}"))
		proxy := fmt.Sprintf("127.0.0.1:%d", port)
		c, _, err := socks5Connect(t, proxy, echo, "alice", "a")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
		c2, err := d.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.Write([]byte{5, 1, 2})
		c2.SetReadDeadline(time.Now().Add(3 * time.Second))
		if got, _ := io.ReadAll(c2); string(got) != "\x05\xff" {
			t.Fatalf("same IP over the limit: %x", got)
		}
		// Another source address is still served.
		d3 := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		c3, err := d3.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		c3.Write([]byte{5, 1, 2})
		c3.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 2)
		if _, err := io.ReadFull(c3, b); err != nil || string(b) != "\x05\x02" {
			t.Fatalf("other IP: %x %v", b, err)
		}
		waitFor(t, "metric", func() bool {
			return g.metric(`sixgate_limit_rejections_total{frontend="main",limit="sessions_per_ip"}`) == 1
		})
	})
	t.Run("handshake_timeout", func(t *testing.T) {
		port := gatewaytest.FreePort(t)
		g := startGateway(t, opsConfig(port, "one", "limits {\n  handshake_timeout = \"300ms\"\n}"))
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("silent client closed after %v", d)
		}
		waitFor(t, "metric", func() bool {
			return g.metric(`sixgate_handshake_failures_total{frontend="main",reason="timeout"}`) == 1
		})
	})
	t.Run("idle_timeout", func(t *testing.T) {
		port := gatewaytest.FreePort(t)
		startGateway(t, opsConfig(port, "one", "limits {\n  idle_timeout = \"300ms\"\n}"))
		c, _, err := socks5Connect(t, fmt.Sprintf("127.0.0.1:%d", port), echo, "alice", "a")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := echoRoundTrip(c, "x"); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(c)
		if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
			t.Fatalf("idle session closed after %v", d)
		}
	})
}

// TestBandwidthPerUser: a 3-second upload through one session holds within
// 10% of the configured per-user rate.
func TestBandwidthPerUser(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var received atomic.Int64
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := c.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	const bps = 1 << 20
	port := gatewaytest.FreePort(t)
	startGateway(t, opsConfig(port, "one", "limits {\n  bandwidth_per_user = \"1MiB\"\n}"))
	c, _, err := socks5Connect(t, fmt.Sprintf("127.0.0.1:%d", port), ln.Addr().String(), "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		buf := make([]byte, 32<<10)
		for ctx.Err() == nil {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	// Measure what reached the destination over 3 seconds, once the
	// transfer is flowing.
	waitFor(t, "first bytes", func() bool { return received.Load() > 0 })
	start, n0 := time.Now(), received.Load()
	time.Sleep(3 * time.Second)
	n1, elapsed := received.Load(), time.Since(start)
	cancel()
	rate := float64(n1-n0) / elapsed.Seconds()
	t.Logf("through the gateway: %.0f B/s over %v (limit %d B/s)", rate, elapsed, bps)
	if rate < bps*0.9 || rate > bps*1.1 {
		t.Fatalf("rate %.0f B/s not within 10%% of %d", rate, bps)
	}
}

// TestReloadAndDrainKeepUDPAssociation: a UDP association keeps relaying
// across a reload and during the drain's grace period.
func TestReloadAndDrainKeepUDPAssociation(t *testing.T) {
	echo := echoAddr(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	cfg := socks5Config(authPort, anonPort)
	g := startGateway(t, cfg)
	u := openS5UDP(t, fmt.Sprintf("127.0.0.1:%d", anonPort))
	u.send(t, u.pc, 0, echo, "before")
	if got := u.recv(t, 3*time.Second); got != "before" {
		t.Fatalf("echo %q", got)
	}
	g.rewriteConfig(cfg + "\nshutdown_grace = \"2s\"\n")
	g.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == 1 })
	u.send(t, u.pc, 0, echo, "after reload")
	if got := u.recv(t, 3*time.Second); got != "after reload" {
		t.Fatalf("after reload: echo %q", got)
	}
	g.Signal(syscall.SIGTERM)
	waitFor(t, "readyz 503", func() bool { code, _ := g.get("/readyz"); return code == 503 })
	u.send(t, u.pc, 0, echo, "during drain")
	if got := u.recv(t, 3*time.Second); got != "during drain" {
		t.Fatalf("during drain: echo %q", got)
	}
	u.ctrl.Close()
	if exit, ok := g.Wait(5 * time.Second); !ok || exit != 0 {
		t.Fatalf("exit %d ok=%v", exit, ok)
	}
}

// TestLogLevelEndpoint: the level changes at runtime on a loopback admin
// listener with log_level_endpoint = true.
func TestLogLevelEndpoint(t *testing.T) {
	g := startGateway(t, `
admin {
  listen             = "127.0.0.1:0"
  log_level_endpoint = true
}
`)
	if _, body := g.get("/loglevel"); strings.TrimSpace(body) != "info" {
		t.Fatalf("level %q", body)
	}
	resp, err := http.Post("http://"+g.Addr("admin")+"/loglevel?level=debug", "text/plain", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("set level: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, body := g.get("/loglevel"); strings.TrimSpace(body) != "debug" {
		t.Fatalf("level after change %q", body)
	}
}

// TestAssociationLimitsAndIdle: a user over max_associations_per_user gets
// SOCKS 5 REP 0x02 and the metric counts it; an association idle for
// udp_idle_timeout is closed with its control connection.
func TestAssociationLimitsAndIdle(t *testing.T) {
	echo := echoAddr(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g := startGateway(t, socks5Config(authPort, anonPort)+`
limits {
  max_associations_per_user = 1
  udp_idle_timeout          = "400ms"
}
`)
	proxy := fmt.Sprintf("127.0.0.1:%d", authPort)
	u := openS5UDP(t, proxy, "alice", "s3cret")
	u.send(t, u.pc, 0, echo, "hello")
	if got := u.recv(t, 3*time.Second); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	// A second association of the same user is over the limit.
	c, err := net.DialTimeout("tcp", proxy, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	s5Auth(t, c, "alice", "s3cret")
	b, _ := s5.Request{Command: s5.CmdUDPAssociate, Dest: gateway.Addr{IP: netip.IPv4Unspecified()}}.Append(nil)
	c.Write(b)
	rep, err := s5.ReadReply(c)
	if err != nil || rep.Code != s5.RepNotAllowed {
		t.Fatalf("second association: %v %v, want REP 0x02", rep.Code, err)
	}
	waitFor(t, "limit metric", func() bool {
		return g.metric(`sixgate_limit_rejections_total{frontend="auth",limit="associations_per_user"}`) == 1
	})
	// Idle: the control connection is closed within about the timeout.
	start := time.Now()
	u.ctrl.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := u.ctrl.Read(make([]byte, 1)); err == nil {
		t.Fatal("control connection sent data")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("idle association closed after %v", d)
	}
}

// TestAssociationIdleWhileParked: an idle timeout longer than the parking
// delay (a second) is kept while the association's readers are parked,
// and a parked association still relays: datagrams after a pause come
// back, and the timeout counts from the last of them.
func TestAssociationIdleWhileParked(t *testing.T) {
	echo := echoAddr(t)
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	startGateway(t, socks5Config(authPort, anonPort)+`
limits {
  udp_idle_timeout = "2500ms"
}
`)
	u := openS5UDP(t, fmt.Sprintf("127.0.0.1:%d", authPort), "alice", "s3cret")
	u.send(t, u.pc, 0, echo, "hello")
	if got := u.recv(t, 3*time.Second); got != "hello" {
		t.Fatalf("echo %q", got)
	}
	time.Sleep(1800 * time.Millisecond) // the readers park after a second
	u.send(t, u.pc, 0, echo, "again")
	if got := u.recv(t, 3*time.Second); got != "again" {
		t.Fatalf("echo after the pause %q", got)
	}
	start := time.Now()
	u.ctrl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.ctrl.Read(make([]byte, 1)); err == nil {
		t.Fatal("control connection sent data")
	}
	if d := time.Since(start); d < 2300*time.Millisecond || d > 4500*time.Millisecond {
		t.Fatalf("idle association closed %v after its last datagram, want about 2.5s", d)
	}
}
