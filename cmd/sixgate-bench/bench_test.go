package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestSubcommands runs every subcommand briefly against a sixgate built and
// started by the test, so that the load tool cannot rot: each must print a
// result line whose figures show traffic actually went through.
func TestSubcommands(t *testing.T) {
	g := startSixgate(t)
	pid := strconv.Itoa(g.cmd.Process.Pid)
	auth := []string{"-user", "bench", "-pass", "bench-pass"}
	var lines bytes.Buffer

	runOK := func(t *testing.T, args ...string) *Result {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("sixgate-bench %s: exit %d\n%s\ngateway log:\n%s", strings.Join(args, " "), code, errOut.String(), g.logText())
		}
		var r Result
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
			t.Fatalf("result line %q: %v", out.String(), err)
		}
		if r.Errors > 0 {
			t.Errorf("%d errors, first: %s", r.Errors, r.FirstError)
		}
		if !strings.Contains(errOut.String(), r.Cmd) {
			t.Errorf("no human summary on stderr: %q", errOut.String())
		}
		lines.Write(out.Bytes())
		return &r
	}
	positive := func(t *testing.T, r *Result, metrics ...string) {
		t.Helper()
		for _, m := range metrics {
			if r.Metrics[m] <= 0 {
				t.Errorf("%s = %v, want > 0 (metrics %v)", m, r.Metrics[m], r.Metrics)
			}
		}
	}

	t.Run("thru", func(t *testing.T) {
		for _, p := range []struct{ proto, proxy string }{{"direct", ""}, {"socks5", g.socks5}, {"socks6", g.socks6anon}} {
			r := runOK(t, "thru", "-label", "thru."+p.proto, "-proto", p.proto, "-proxy", p.proxy, "-streams", "2",
				"-duration", "300ms", "-warmup", "50ms", "-server-pid", pid)
			positive(t, r, "bytes_per_sec", "stream_min_bytes_per_sec")
			if r.Server == nil || r.Server.CPUPerGiB == nil && r.Server.CPUSeconds > 0 {
				t.Errorf("server use %+v", r.Server)
			}
		}
	})
	t.Run("connrate", func(t *testing.T) {
		r := runOK(t, "connrate", "-label", "conn.socks5", "-proto", "socks5", "-proxy", g.socks5, "-n", "40", "-c", "4", "-server-pid", pid)
		positive(t, r, "conns_per_sec", "latency_p50_ms")
		r = runOK(t, append([]string{"connrate", "-label", "conn.socks6", "-proto", "socks6", "-proxy", g.socks6,
			"-session", "-window", "16", "-n", "40", "-c", "4"}, auth...)...)
		if r.Metrics["connections"] != 40 {
			t.Errorf("connections = %v, want 40", r.Metrics["connections"])
		}
	})
	t.Run("udp", func(t *testing.T) {
		for _, p := range []struct {
			proto, proxy string
			extra        []string
		}{{"direct", "", nil}, {"socks5", g.socks5, nil}, {"socks6", g.socks6, auth},
			{"socks6", g.socks6, append([]string{"-udp-over", "tcp"}, auth...)}} {
			args := append([]string{"udp", "-label", "udp." + p.proto, "-proto", p.proto, "-proxy", p.proxy, "-assocs", "2",
				"-rate", "2000", "-duration", "300ms", "-drain", "200ms", "-server-pid", pid}, p.extra...)
			r := runOK(t, args...)
			positive(t, r, "sent", "received", "relayed_datagrams")
		}
		// Closed loop, sent and read in batches: every datagram counted as
		// sent reached the echo once (the built-in echo counts them).
		for _, p := range []struct {
			proto, proxy string
			extra        []string
		}{{"direct", "", nil}, {"socks5", g.socks5, nil}, {"socks6", g.socks6, auth}} {
			args := append([]string{"udp", "-label", "udpmax." + p.proto, "-proto", p.proto, "-proxy", p.proxy, "-assocs", "2",
				"-rate", "0", "-inflight", "8", "-lost-after", "200ms", "-batch", "8", "-duration", "300ms", "-drain", "300ms"}, p.extra...)
			r := runOK(t, args...)
			positive(t, r, "sent", "received", "echo_received")
			// (+2: a probe sent again may arrive after the clock started.)
			if e, s := r.Metrics["echo_received"], r.Metrics["sent"]; e < s || e > s+2 || r.Metrics["loss_pct"] > 1 {
				t.Errorf("%s batched: sent %v, the echo got %v, loss %v%%", p.proto, r.Metrics["sent"], r.Metrics["echo_received"], r.Metrics["loss_pct"])
			}
		}
	})
	t.Run("ttfb-delay", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dr := &delayRelay{ln: ln, to: g.socks6, delay: 10 * time.Millisecond}
		done := make(chan struct{})
		go func() { dr.serve(); close(done) }()
		defer func() { ln.Close(); <-done }()
		r := runOK(t, append([]string{"ttfb", "-label", "ttfb.socks6", "-proto", "socks6", "-proxy", ln.Addr().String(),
			"-rtt", "20ms", "-n", "3", "-gap", "0s"}, auth...)...)
		positive(t, r, "ttfb_p50_ms")
		// 0-RTT: one round trip of 20 ms, never less.
		if v := r.Metrics["rtts_min"]; v < 0.95 || v > 3 {
			t.Errorf("socks6 0-RTT took %v round trips, want about 1", v)
		}
		r = runOK(t, append([]string{"ttfb", "-proto", "socks5", "-proxy", ln.Addr().String(), "-rtt", "20ms", "-n", "2", "-gap", "0s"}, auth...)...)
		if v := r.Metrics["rtts_min"]; v < 3.9 {
			t.Errorf("socks5 with auth took %v round trips, want about 4", v)
		}
		// The delay subcommand itself: bad flags, then a short run.
		var out, errOut bytes.Buffer
		if code := run([]string{"delay", "-listen", "127.0.0.1:0"}, &out, &errOut); code != 2 {
			t.Errorf("delay without -to: exit %d", code)
		}
		if code := run([]string{"delay", "-listen", "127.0.0.1:0", "-to", g.socks6, "-duration", "50ms"}, &out, &errOut); code != 0 ||
			!strings.Contains(out.String(), `"listen":"127.0.0.1:`) {
			t.Errorf("delay: exit %d, %q %q", code, out.String(), errOut.String())
		}
	})
	t.Run("idle", func(t *testing.T) {
		r := runOK(t, append([]string{"idle", "-label", "idle.socks6", "-proto", "socks6", "-proxy", g.socks6, "-k", "20", "-udp", "5",
			"-settle", "100ms", "-server-pid", pid, "-admin", g.admin}, auth...)...)
		if r.Metrics["sessions"] != 20 || r.Metrics["associations"] != 5 {
			t.Errorf("opened %v sessions and %v associations, want 20 and 5", r.Metrics["sessions"], r.Metrics["associations"])
		}
		// Each CONNECT holds two sockets in the gateway, each association at least one.
		if v := r.Metrics["fds_after"] - r.Metrics["fds_before"]; v < 45 {
			t.Errorf("server fds grew by %v, want >= 45", v)
		}
		if v := r.Metrics["goroutines_after"] - r.Metrics["goroutines_before"]; v < 25 {
			t.Errorf("server goroutines grew by %v, want >= 25", v)
		}
	})
	t.Run("turn", func(t *testing.T) {
		// TURN allocations through pion/turn's client: a relayed load, then
		// idle allocations (each holds a relay socket in the gateway).
		r := runOK(t, append([]string{"udp", "-label", "udp.turn", "-proto", "turn", "-proxy", g.turn, "-assocs", "2",
			"-rate", "2000", "-duration", "300ms", "-drain", "200ms", "-server-pid", pid}, auth...)...)
		positive(t, r, "sent", "received", "relayed_datagrams")
		r = runOK(t, append([]string{"idle", "-label", "idleturn.sixgate", "-proto", "turn", "-proxy", g.turn, "-k", "0", "-udp", "6",
			"-churn", "1", "-settle", "100ms", "-server-pid", pid, "-admin", g.admin}, auth...)...)
		if r.Metrics["associations"] != 6 {
			t.Errorf("opened %v allocations, want 6", r.Metrics["associations"])
		}
		if v := r.Metrics["fds_after"] - r.Metrics["fds_before"]; v < 6 {
			t.Errorf("server fds grew by %v, want >= 6 (a relay socket per allocation)", v)
		}
	})
	t.Run("parked", func(t *testing.T) {
		// Idle associations give their readers up (parked in the gateway's
		// park set after a second) and wake when a datagram comes: none of
		// them keeps a goroutine.
		echo, err := listenUDPEcho("127.0.0.1:0", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer echo.close()
		ctx := context.Background()
		kinds := []struct {
			proto, proxy, over, user string
			parks                    float64 // readers an idle association parks
		}{
			// SOCKS 5: the control connection, the client socket and the
			// backend association. SOCKS 6: the control connection and
			// the backend association (the client's datagrams come to the
			// frontend's shared socket, or over the control connection).
			// TURN: the backend association (the frontend's socket is
			// shared).
			{"socks5", g.socks5, "", "", 3}, {"socks6", g.socks6, "udp", "bench", 2}, {"socks6", g.socks6, "tcp", "bench", 2},
			{"turn", g.turn, "", "bench", 1},
			// Through the upstream backends to this gateway's own
			// frontends: both ends of each hop park, the upstream
			// backend's control connection too.
			{"socks6", g.via5, "udp", "", 2 + 1 + 3}, {"socks6", g.via6, "udp", "", 2 + 1 + 2}}
		const per = 4
		before, err := scrapeGauge(ctx, g.admin, "go_goroutines")
		if err != nil {
			t.Fatal(err)
		}
		parkedBefore, err := scrapeGauge(ctx, g.admin, "sixgate_parked_readers")
		if err != nil {
			t.Fatal(err)
		}
		var assocs []assoc
		defer func() {
			for _, a := range assocs {
				a.close()
			}
		}()
		want := 1.0 // the park set's goroutine
		wantParked := 0.0
		for _, k := range kinds {
			c := common{proto: k.proto, proxy: k.proxy, udpOver: k.over, timeout: 10 * time.Second}
			if k.user != "" {
				c.user, c.pass = k.user, "bench-pass"
			}
			as, err := newAssociator(&c)
			if err != nil {
				t.Fatal(err)
			}
			for range per {
				a, err := as.associate(ctx)
				if err != nil {
					t.Fatalf("%s: %v", k.proto, err)
				}
				assocs = append(assocs, a)
				if err := udpProbe(a, echo.addrPort(), 32, 5*time.Second); err != nil {
					t.Fatalf("%s: %v", k.proto, err)
				}
			}
			wantParked += per * k.parks
		}
		deadline := time.Now().Add(10 * time.Second)
		var now, parked float64
		for {
			if now, err = scrapeGauge(ctx, g.admin, "go_goroutines"); err != nil {
				t.Fatal(err)
			}
			if parked, err = scrapeGauge(ctx, g.admin, "sixgate_parked_readers"); err != nil {
				t.Fatal(err)
			}
			if now-before <= want && parked-parkedBefore == wantParked || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if now-before > want || parked-parkedBefore != wantParked {
			t.Fatalf("idle associations hold %v goroutines (want at most %v) and parked %v readers (want %v): readers did not park",
				now-before, want, parked-parkedBefore, wantParked)
		}
		for i, a := range assocs {
			for j := range 3 {
				if err := udpProbe(a, echo.addrPort(), 64+j, 5*time.Second); err != nil {
					t.Fatalf("association %d (%s %s) after parking, datagram %d: %v", i, kinds[i/per].proto, kinds[i/per].over, j, err)
				}
			}
		}
	})
	t.Run("serve", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"serve", "-tcp-echo", "127.0.0.1:0", "-udp-echo", "127.0.0.1:0", "-duration", "50ms"}, &out, &errOut); code != 0 {
			t.Fatalf("serve: exit %d: %s", code, errOut.String())
		}
		var addrs map[string]string
		if err := json.Unmarshal(out.Bytes(), &addrs); err != nil || addrs["tcp_echo"] == "" || addrs["udp_echo"] == "" {
			t.Errorf("serve printed %q (%v)", out.String(), err)
		}
	})
	t.Run("uclient", func(t *testing.T) {
		for _, tool := range []string{"turnutils_uclient", "turnutils_peer"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s is not installed (.ci/setup installs coturn)", tool)
			}
		}
		peerPort := gatewaytest.FreePort(t)
		peer := exec.Command("turnutils_peer", "-L", "127.0.0.1", "-p", strconv.Itoa(peerPort))
		if err := peer.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peer.Process.Kill(); peer.Wait() })
		time.Sleep(200 * time.Millisecond)
		_, port, _ := net.SplitHostPort(g.turn)
		r := runOK(t, "uclient", "-label", "turn.sixgate", "-server-pid", pid, "--", "turnutils_uclient",
			"-u", "bench", "-w", "bench-pass", "-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-p", port,
			"-m", "1", "-n", "20", "-l", "100", "-z", "1", "-c", "127.0.0.1")
		positive(t, r, "sent", "received")
	})
	t.Run("report", func(t *testing.T) {
		var out, errOut bytes.Buffer
		f := filepath.Join(t.TempDir(), "results.jsonl")
		if err := os.WriteFile(f, lines.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if code := run([]string{"report", "-in", f}, &out, &errOut); code != 0 {
			t.Fatalf("report: exit %d: %s", code, errOut.String())
		}
		for _, want := range []string{"### thru", "| direct |", "| socks5 |", "Gbit/s", "### udp"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
	})
	t.Run("usage", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := run([]string{"thru", "-proto", "gopher"}, &out, &errOut); code != 2 {
			t.Errorf("bad -proto: exit %d", code)
		}
		if code := run([]string{"nope"}, &out, &errOut); code != 2 {
			t.Errorf("unknown command: exit %d", code)
		}
	})
}

// sixgateProc is a sixgate started by the test.
type sixgateProc struct {
	cmd                                     *exec.Cmd
	socks6, socks6anon, socks5, turn, admin string
	// via5 and via6 are SOCKS 6 frontends whose traffic goes through the
	// socks5 and socks6 upstream backends, to this gateway's own s5 and
	// s6anon frontends.
	via5, via6 string
	mu         sync.Mutex
	log        bytes.Buffer
}

func (g *sixgateProc) Write(b []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.Write(b)
}

func (g *sixgateProc) logText() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

// startSixgate builds sixgate with `go build` and runs it with SOCKS 6 (with
// users, SOCKS 5 on the same port), anonymous SOCKS 6 and SOCKS 5, and TURN
// frontends on free loopback ports, relaying directly to loopback.
func startSixgate(t *testing.T) *sixgateProc {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sixgate")
	build := exec.Command("go", "build", "-o", bin, "github.com/sixgate/sixgate/cmd/sixgate")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build sixgate: %v\n%s", err, out)
	}
	g := &sixgateProc{}
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t)) }
	g.socks6, g.socks6anon, g.socks5, g.turn, g.admin = addr(), addr(), addr(), addr(), addr()
	g.via5, g.via6 = addr(), addr()
	cfg := filepath.Join(dir, "sixgate.hcl")
	conf := fmt.Sprintf(`
admin {
  listen = %q
  pprof  = true
}
log {
  level = "warn"
}
users "bench" {
  user "bench" {
    password = "bench-pass"
  }
}
frontend "socks6" "s6" {
  listen        = %q
  users         = "bench"
  accept_socks5 = true
}
frontend "socks6" "s6anon" {
  listen = %q
}
frontend "socks5" "s5" {
  listen = %q
}
frontend "turn" "turn" {
  listen          = %q
  realm           = "sixgate"
  users           = "bench"
  legacy_channels = true
}
frontend "socks6" "via5" {
  listen = %q
}
frontend "socks6" "via6" {
  listen = %q
}
backend "direct" "out" {
  bind_ipv4 = "127.0.0.1"
}
backend "socks5" "up5" {
  server = %q
}
backend "socks6" "up6" {
  server = %q
}
route {
  frontends    = ["via5"]
  destinations = ["127.0.0.0/8"]
  backend      = "up5"
}
route {
  frontends    = ["via6"]
  destinations = ["127.0.0.0/8"]
  backend      = "up6"
}
route {
  frontends    = ["s6", "s6anon", "s5", "turn"]
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, g.admin, g.socks6, g.socks6anon, g.socks5, g.turn, g.via5, g.via6, g.socks5, g.socks6anon)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	g.cmd = exec.Command(bin, "run", "--config", cfg)
	g.cmd.Stdout, g.cmd.Stderr = g, g
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		g.cmd.Wait()
	})
	for _, a := range []string{g.socks6, g.socks6anon, g.socks5, g.turn, g.admin, g.via5, g.via6} {
		waitPort(t, a, g)
	}
	return g
}

func waitPort(t *testing.T, addr string, g *sixgateProc) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("sixgate does not listen on %s:\n%s", addr, g.logText())
}
