package main

// Soak test (issue 12, part 4), off by default: SIXGATE_SOAK=3m runs it for
// three minutes. 500 stream sessions open and close continuously (SOCKS 5
// and SOCKS 6, with and without authentication, each held 200-800 ms with
// an echo) and 100 UDP associations (50 SOCKS 6 mapped over UDP, 50 SOCKS
// 5) echo a datagram every 50 ms and are replaced every 5-15 s. A sixgate
// process without the race detector serves them. Every 10 s the test logs
// the gateway's descriptors, RSS, goroutines and live heap; at the end it
// checks that no session or association is left, that descriptors and
// goroutines are back at the baseline, and that the live heap (after a
// garbage collection asked through pprof) is back near it.
//
// CI runs it as its own time-boxed step, for example:
//
//	SIXGATE_SOAK=3m go test -count=1 -timeout 10m -run '^TestSecSoak$' ./cmd/sixgate/

import (
	"context"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// secSoakStats are the soak's counters.
type secSoakStats struct {
	sessions, sessionErrs   atomic.Int64
	echoes, lost, assocs    atomic.Int64
	assocErrs, bytesRelayed atomic.Int64
	firstErrMu              sync.Mutex
	firstErrs               []string
}

func (s *secSoakStats) fail(kind string, err error) {
	s.firstErrMu.Lock()
	defer s.firstErrMu.Unlock()
	if len(s.firstErrs) < 10 {
		s.firstErrs = append(s.firstErrs, kind+": "+err.Error())
	}
}

func TestSecSoak(t *testing.T) {
	env := os.Getenv("SIXGATE_SOAK")
	if env == "" {
		t.Skip("set SIXGATE_SOAK=3m to run the soak test")
	}
	dur, err := time.ParseDuration(env)
	if err != nil {
		t.Fatalf("SIXGATE_SOAK=%q: %v", env, err)
	}
	const workers, udpAssocs = 500, 100
	secRaiseNoFile(t, 8192)
	limits := `  handshake_timeout    = "5s"
  auth_failures_per_ip = 100000`
	echo, uecho := secEchoPair(t)
	dns := startSecDNS(t)
	ports := secPorts(t)
	cfg := strings.Replace(secConfig(ports, "127.0.0.1:0", echo, dns, limits), "admin {\n", "admin {\n  pprof = true\n", 1)
	g := secStartGatewayBin(t, cfg, secNoraceBinary(t))
	st := &secTarget{t: t, proc: g, echo: echo, udpEcho: uecho, admin: g.Addr("admin"), handshake: 5 * time.Second}
	st.setFrontends(ports)
	pid := g.cmd.Process.Pid

	// gc asks the gateway for a garbage collection (pprof's heap?gc=1)
	// and returns its live heap and goroutines.
	gc := func() (heap, goroutines float64) {
		resp, err := secMetricsClient.Get("http://" + st.admin + "/debug/pprof/heap?gc=1")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		m := st.metrics()
		return secMetricSum(m, "go_memstats_heap_alloc_bytes"), secMetricSum(m, "go_goroutines")
	}
	for _, fe := range []string{"s5", "s6", "s5auth", "s6auth"} {
		if err := st.validConnect(fe, ""); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	base := st.snapshot()
	baseFDs, basePipes := secFdCounts(pid)
	baseHeap, baseGoroutines := gc()
	t.Logf("baseline: %d descriptors (+%d pipes), RSS %d KiB, live heap %d KiB, %v goroutines",
		baseFDs, basePipes, base.rss>>10, int64(baseHeap)>>10, baseGoroutines)

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var stats secSoakStats
	var wg sync.WaitGroup
	fronts := []string{"s5", "s6", "s5auth", "s6auth", "mix"}
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fe := fronts[i%len(fronts)]
			for ctx.Err() == nil {
				if err := secSoakSession(st, fe, &stats); err != nil && ctx.Err() == nil {
					stats.sessionErrs.Add(1)
					stats.fail("session via "+fe, err)
				}
				stats.sessions.Add(1)
			}
		}()
	}
	for i := range udpAssocs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				life := time.Duration(5000+mrand.IntN(10000)) * time.Millisecond
				var err error
				if i%2 == 0 {
					err = secSoakS6Assoc(ctx, st, life, &stats)
				} else {
					err = secSoakS5Assoc(ctx, st, life, &stats)
				}
				stats.assocs.Add(1)
				if err != nil && ctx.Err() == nil {
					stats.assocErrs.Add(1)
					stats.fail("association", err)
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	start := time.Now()
	var peakFDs int
	var peakRSS int64
	tick := time.NewTicker(10 * time.Second)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
			fds, pipes := secFdCounts(pid)
			rss := secRssBytes(pid)
			peakFDs, peakRSS = max(peakFDs, fds+pipes), max(peakRSS, rss)
			m := st.metrics()
			t.Logf("%4.0fs: %d sessions (%d failed), %d echoes (%d lost), %d associations (%d failed); gateway: %d descriptors + %d pipes, RSS %d KiB, %v goroutines, %v sessions and %v associations active",
				time.Since(start).Seconds(), stats.sessions.Load(), stats.sessionErrs.Load(), stats.echoes.Load(), stats.lost.Load(),
				stats.assocs.Load(), stats.assocErrs.Load(), fds, pipes, rss>>10, secMetricSum(m, "go_goroutines"),
				secMetricSum(m, "sixgate_sessions_active"), secMetricSum(m, "sixgate_associations_active"))
		}
	}
	tick.Stop()
	wg.Wait()
	t.Logf("done after %v: %d sessions (%d failed, %d MiB relayed), %d echoes (%d lost), %d associations (%d failed); peak %d descriptors, RSS %d KiB",
		time.Since(start).Round(time.Second), stats.sessions.Load(), stats.sessionErrs.Load(), stats.bytesRelayed.Load()>>20,
		stats.echoes.Load(), stats.lost.Load(), stats.assocs.Load(), stats.assocErrs.Load(), peakFDs, peakRSS>>10)
	for _, e := range stats.firstErrs {
		t.Logf("error: %s", e)
	}
	if n := stats.sessionErrs.Load(); n*1000 > stats.sessions.Load() {
		t.Errorf("%d of %d sessions failed", n, stats.sessions.Load())
	}
	if n := stats.lost.Load(); n*100 > stats.echoes.Load() {
		t.Errorf("%d of %d datagram echoes lost", n, stats.echoes.Load())
	}
	if n := stats.assocErrs.Load(); n*100 > stats.assocs.Load() {
		t.Errorf("%d of %d associations failed", n, stats.assocs.Load())
	}
	// Back to the baseline.
	st.settled(t, base, 30*time.Second)
	var heap, goroutines float64
	secWaitFor(10*time.Second, func() bool {
		heap, goroutines = gc()
		return goroutines <= baseGoroutines && heap <= baseHeap+4<<20
	})
	fds, pipes := secFdCounts(pid)
	rss := secRssBytes(pid)
	t.Logf("after: %d descriptors (+%d pipes), RSS %d KiB, live heap %d KiB, %v goroutines",
		fds, pipes, rss>>10, int64(heap)>>10, goroutines)
	if goroutines > baseGoroutines {
		t.Errorf("%v goroutines, baseline %v", goroutines, baseGoroutines)
	}
	if heap > baseHeap+4<<20 {
		t.Errorf("live heap %d KiB, baseline %d KiB", int64(heap)>>10, int64(baseHeap)>>10)
	}
	if pipes > basePipes+2*workers {
		t.Errorf("%d pipes, baseline %d: splice pipes leak?", pipes, basePipes)
	}
}

// secSoakSession is one stream session: CONNECT, echo, hold 200-800 ms,
// echo again, close.
func secSoakSession(st *secTarget, fe string, stats *secSoakStats) error {
	conn, err := st.dial(fe, "")
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
		if code, err := secSocks5Connect(conn, dest, user, secPassword); err != nil || code != 0 {
			return fmt.Errorf("socks5 rep %v: %v", code, err)
		}
	} else if code, err := secSocks6Connect(conn, dest, user, secPassword); err != nil || code != 0 {
		return fmt.Errorf("socks6 code %v: %v", code, err)
	}
	payload := make([]byte, 1024+mrand.IntN(15*1024))
	for range 2 {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(payload); err != nil {
			return err
		}
		if _, err := io.ReadFull(conn, payload); err != nil {
			return err
		}
		stats.bytesRelayed.Add(int64(len(payload)))
		time.Sleep(time.Duration(100+mrand.IntN(300)) * time.Millisecond)
	}
	return nil
}

// secSoakS6Assoc runs one SOCKS 6 association mapped over UDP for life,
// echoing a datagram every 50 ms.
func secSoakS6Assoc(ctx context.Context, st *secTarget, life time.Duration, stats *secSoakStats) error {
	a, err := st.s6Associate("s6")
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.mapUDP(st.fe["s6"]); err != nil {
		return err
	}
	end := time.Now().Add(life)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		stats.echoes.Add(1)
		if err := a.echo(st.echo, []byte(fmt.Sprintf("soak %d", i)), time.Second); err != nil {
			stats.lost.Add(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// secSoakS5Assoc is the same with SOCKS 5.
func secSoakS5Assoc(ctx context.Context, st *secTarget, life time.Duration, stats *secSoakStats) error {
	a, err := st.s5Associate("s5")
	if err != nil {
		return err
	}
	defer a.ctrl.Close()
	defer a.udp.Close()
	end := time.Now().Add(life)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		stats.echoes.Add(1)
		if err := a.echo(st.echo, fmt.Sprintf("soak %d", i)); err != nil {
			stats.lost.Add(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
