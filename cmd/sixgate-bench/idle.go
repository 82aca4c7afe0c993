package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// cmdIdle opens K CONNECT sessions (each proven with a 16-byte echo) and U
// UDP associations (SOCKS 5 or SOCKS 6; TURN allocations with -proto turn;
// each proven with one datagram), lets them sit idle and
// reads the server's RSS and descriptors (/proc, -server-pid) and
// goroutines (go_goroutines on the admin listener's /metrics, -admin)
// before and after, giving the cost per session.
func cmdIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	c.turnOK = true
	fs := c.flags("idle", stderr)
	k := fs.Int("k", 1000, "idle CONNECT sessions")
	u := fs.Int("udp", 0, "idle UDP associations")
	conc := fs.Int("c", 32, "sessions opened in parallel")
	settle := fs.Duration("settle", 2*time.Second, "wait before each reading of the server")
	hold := fs.Duration("hold", 0, "keep the sessions open this long after the reading")
	target := fs.String("target", "", "TCP echo address (default: a built-in echo on 127.0.0.1)")
	utarget := fs.String("udp-target", "", "UDP echo address (default: a built-in echo on 127.0.0.1)")
	admin := fs.String("admin", "", "the server's admin listener host:port, for go_goroutines and the Go heap and stacks (Go servers)")
	forceGC := fs.Bool("gc", false, "before each reading, run two garbage collections in the server through its admin listener's pprof endpoint (-admin; the runtime would run one within 2 minutes anyway, shrinking idle goroutine stacks)")
	churn := fs.Int("churn", 0, "open and close the sessions this many times before the measured round, so freed memory is reused (and touched) as in a long-running server")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *k < 0 || *u < 0 || *k+*u == 0 || *conc < 1 {
		return fmt.Errorf("-k and -udp must not be negative and not both 0; -c must be positive")
	}
	dst, err := targetAddr(*target)
	if err != nil {
		return err
	}
	udst, err := targetAddr(*utarget)
	if err != nil {
		return err
	}
	if *k > 0 && *target == "" {
		echo, err := listenTCP("127.0.0.1:0", true)
		if err != nil {
			return err
		}
		defer echo.close()
		dst = echo.addrPort()
	}
	if *u > 0 && *utarget == "" {
		echo, err := listenUDPEcho("127.0.0.1:0", 1)
		if err != nil {
			return err
		}
		defer echo.close()
		udst = echo.addrPort()
	}

	type reading struct {
		mem                      memUse
		goroutines, heap, stacks float64
	}
	read := func() (reading, error) {
		var r reading
		r.goroutines, r.heap, r.stacks = -1, -1, -1
		if c.serverPID != 0 {
			m, err := readMem(c.serverPID)
			if err != nil {
				return r, err
			}
			r.mem = m
		}
		if *admin != "" && *forceGC {
			for range 2 {
				if err := runGC(ctx, *admin); err != nil {
					return r, err
				}
			}
		}
		if *admin != "" {
			g, err := scrapeGauge(ctx, *admin, "go_goroutines")
			if err != nil {
				return r, err
			}
			r.goroutines = g
			if r.heap, err = scrapeGauge(ctx, *admin, "go_memstats_heap_inuse_bytes"); err != nil {
				r.heap = -1
			}
			if r.stacks, err = scrapeGauge(ctx, *admin, "go_memstats_stack_inuse_bytes"); err != nil {
				r.stacks = -1
			}
		}
		return r, nil
	}
	sleepCtx(ctx, *settle)
	before, err := read()
	if err != nil {
		return err
	}
	var errs errCounter
	var mu sync.Mutex
	var conns []net.Conn
	var assocs []assoc
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		for _, a := range assocs {
			a.close()
		}
		conns, assocs = nil, nil
	}
	defer func() { closeAll() }()
	var d dialer
	var as associator
	if *k > 0 {
		if d, err = newDialer(&c); err != nil {
			return err
		}
		if c.proto == "socks6" && c.session {
			if err := oneEcho(ctx, d, &c, dst); err != nil {
				return fmt.Errorf("opening the session: %w", err)
			}
		}
	}
	if *u > 0 {
		if as, err = newAssociator(&c); err != nil {
			return err
		}
	}
	openAll := func() {
		sem := make(chan struct{}, *conc)
		var wg sync.WaitGroup
		for range *k {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				conn, err := idleConn(ctx, d, &c, dst)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs.add(err)
					return
				}
				conns = append(conns, conn)
			}()
		}
		for range *u {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				actx, cancel := withTimeout(ctx, c.timeout)
				defer cancel()
				a, err := as.associate(actx)
				if err == nil {
					if err = udpProbe(a, udst, 32, c.timeout); err != nil {
						a.close()
					}
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs.add(err)
					return
				}
				assocs = append(assocs, a)
			}()
		}
		wg.Wait()
	}
	for range *churn {
		openAll()
		closeAll()
		sleepCtx(ctx, *settle)
	}
	errs = errCounter{}
	t0 := time.Now()
	openAll()
	opened := time.Since(t0)
	sleepCtx(ctx, *settle)
	after, err := read()
	if err != nil {
		return err
	}
	r := newResult("idle", &c)
	r.Start, r.Seconds = t0, round(opened.Seconds(), 3)
	r.Params["k"] = *k
	r.Params["udp"] = *u
	r.Params["churn"] = *churn
	r.Metrics["sessions"] = float64(len(conns))
	r.Metrics["associations"] = float64(len(assocs))
	n := float64(len(conns) + len(assocs))
	if c.serverPID != 0 {
		r.Metrics["rss_before_bytes"] = float64(before.mem.RSS)
		r.Metrics["rss_after_bytes"] = float64(after.mem.RSS)
		r.Metrics["fds_before"] = float64(before.mem.FDs)
		r.Metrics["fds_after"] = float64(after.mem.FDs)
		if n > 0 {
			r.Metrics["rss_per_session_bytes"] = round(float64(after.mem.RSS-before.mem.RSS)/n, 0)
			r.Metrics["fds_per_session"] = round(float64(after.mem.FDs-before.mem.FDs)/n, 3)
		}
	}
	if after.goroutines >= 0 {
		r.Metrics["goroutines_before"] = before.goroutines
		r.Metrics["goroutines_after"] = after.goroutines
		if n > 0 {
			r.Metrics["goroutines_per_session"] = round((after.goroutines-before.goroutines)/n, 3)
		}
	}
	if after.heap >= 0 && before.heap >= 0 && n > 0 {
		r.Metrics["heap_inuse_after_bytes"] = after.heap
		r.Metrics["heap_inuse_per_session_bytes"] = round((after.heap-before.heap)/n, 0)
		r.Metrics["stack_inuse_per_session_bytes"] = round((after.stacks-before.stacks)/n, 0)
	}
	if len(conns) > 0 && len(assocs) > 0 {
		r.Notes = append(r.Notes, "per-session figures are over CONNECT sessions and associations together")
	}
	r.Errors, r.FirstError = errs.n, errs.first
	summary := fmt.Sprintf("%d sessions, %d associations open in %.1fs", len(conns), len(assocs), opened.Seconds())
	if c.serverPID != 0 {
		summary += fmt.Sprintf("; server RSS %.1f -> %.1f MiB (%.1f KiB each), fds %d -> %d",
			float64(before.mem.RSS)/(1<<20), float64(after.mem.RSS)/(1<<20),
			r.Metrics["rss_per_session_bytes"]/1024, before.mem.FDs, after.mem.FDs)
	}
	if after.goroutines >= 0 {
		summary += fmt.Sprintf(", goroutines %.0f -> %.0f", before.goroutines, after.goroutines)
	}
	if v, ok := r.Metrics["heap_inuse_per_session_bytes"]; ok {
		summary += fmt.Sprintf("; Go heap %.1f KiB + stacks %.1f KiB per session", v/1024, r.Metrics["stack_inuse_per_session_bytes"]/1024)
	}
	if err := emit(stdout, stderr, r, summary); err != nil {
		return err
	}
	sleepCtx(ctx, *hold)
	return nil
}

// idleConn opens a CONNECT and proves it with one echo; the connection
// stays open.
func idleConn(ctx context.Context, d dialer, c *common, dst netip.AddrPort) (net.Conn, error) {
	cctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := d.dial(cctx, dst, echoProbe)
	if err != nil {
		return nil, err
	}
	conn.SetReadDeadline(time.Now().Add(c.timeout))
	var buf [16]byte
	if _, err := io.ReadFull(conn, buf[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("echo: %w", err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// runGC makes a Go server collect garbage: its pprof heap profile with
// gc=1 runs a collection first.
func runGC(ctx context.Context, admin string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: /debug/pprof/heap: %s (is pprof on?)", admin, resp.Status)
	}
	return nil
}

// scrapeGauge reads one unlabelled metric from a Prometheus /metrics page.
func scrapeGauge(ctx context.Context, admin, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s on /metrics", admin, name)
}
