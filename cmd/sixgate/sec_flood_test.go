package main

// Floods (issue 12, part 3): a slowloris of 2000 half-open handshakes from
// 2000 different source addresses while valid clients keep being served,
// and password guessing limited per client IP.

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

// secRaiseNoFile raises this process's RLIMIT_NOFILE soft limit to at least n
// (the gateway process inherits it). Go already raises the soft limit to
// the hard limit at start; this only matters where the hard limit is low.
func secRaiseNoFile(t *testing.T, n uint64) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	rl.Cur = min(max(n, rl.Cur), rl.Max)
	if rl.Max < n {
		rl.Max, rl.Cur = n, n // needs CAP_SYS_RESOURCE; CI runs as root
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("RLIMIT_NOFILE %d: %v", n, err)
	}
	t.Logf("raised RLIMIT_NOFILE to %d", rl.Cur)
}

// secFloodAddr is the i-th source address of a flood: 127.0.1.2 and up, 250
// per /24, never 127.0.0.1 (the valid clients').
func secFloodAddr(i int) string {
	return fmt.Sprintf("127.0.%d.%d:0", 1+i/250, 2+i%250)
}

// secSlowClient is one half-open handshake.
type secSlowClient struct {
	fe      string
	partial []byte
}

var secSlowKinds = []secSlowClient{
	{"s5", []byte{5, 2, 0}},                              // greeting: 2 methods announced, 1 sent
	{"s5auth", []byte{5, 1, 2, 1, 5, 'a', 'l'}},          // greeting, then RFC 1929 cut short
	{"s6", []byte{6, 1, 0, 0}},                           // half a Request header
	{"s6auth", []byte{6, 1, 0, 0, 0, 80, 0, 3, 11, 'e'}}, // Request cut inside the name
	{"mix", nil}, // not even a first byte
}

func TestSecSlowloris(t *testing.T) {
	const n = 2000
	secRaiseNoFile(t, 3*n+1024)
	hs := time.Second
	const probeDeadline = 2 * time.Second
	st := startSecProcessBin(t, secNoraceBinary(t), `  handshake_timeout = "1s"
  max_sessions_per_ip = 0`, hs)
	pid := st.proc.cmd.Process.Pid
	for _, fe := range []string{"s5", "s6"} {
		if err := st.validConnect(fe, ""); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	base := st.snapshot()
	timeouts := func() map[string]float64 {
		m := st.metrics()
		out := map[string]float64{}
		for _, k := range secSlowKinds {
			out[k.fe] = secMetricSum(m, "sixgate_handshake_failures_total", `frontend="`+k.fe+`"`, `reason="timeout"`)
		}
		return out
	}
	timeoutsBefore := timeouts()

	// Valid clients: a CONNECT every 100 ms, each within probeDeadline,
	// until the flood is over.
	stop := make(chan struct{})
	type probe struct {
		d   time.Duration
		err error
	}
	var probes []probe
	var pmu sync.Mutex
	var pwg sync.WaitGroup
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			pwg.Add(1)
			go func() {
				defer pwg.Done()
				fe := []string{"s5", "s6", "mix"}[i%3]
				start := time.Now()
				done := make(chan error, 1)
				go func() { done <- st.validConnect(fe, "") }()
				var err error
				select {
				case err = <-done:
				case <-time.After(probeDeadline):
					err = fmt.Errorf("no answer within %v", probeDeadline)
				}
				pmu.Lock()
				probes = append(probes, probe{time.Since(start), err})
				pmu.Unlock()
			}()
		}
	}()

	// The flood: every client connects from its own address and sends its
	// partial handshake, in a tight loop of plain system calls (so that
	// 2000 handshakes are open at once, rather than 2000 goroutines racing
	// for the CPU); then one loop polls every socket for the gateway's close.
	flood := make([]*secRawConn, n)
	floodStart := time.Now()
	for i := range n {
		k := secSlowKinds[i%len(secSlowKinds)]
		c, err := secRawDial(secFloodAddr(i), st.fe[k.fe], k.partial)
		if err != nil {
			t.Fatalf("slow client %d (%s): %v", i, k.fe, err)
		}
		flood[i] = c
		defer c.close()
	}
	dialTime := time.Since(floodStart)
	peakFDs, _ := secFdCounts(pid)
	open := n
	prev := time.Now()
	for open > 0 && time.Since(floodStart) < hs+10*time.Second {
		time.Sleep(20 * time.Millisecond)
		now := time.Now()
		for _, c := range flood {
			if c.closedBy.IsZero() && c.closed() {
				c.closedAfter, c.closedBy = prev, now
				open--
			}
		}
		prev = now
	}
	floodTime := time.Since(floodStart)
	peakRSS := secProcStatus(pid, "VmHWM")
	close(stop)
	pwg.Wait()

	var lived []time.Duration
	for i, c := range flood {
		fe := secSlowKinds[i%len(secSlowKinds)].fe
		switch {
		case c.closedBy.IsZero():
			t.Errorf("slow client %d (%s) still open after %v", i, fe, floodTime)
			continue
		case c.closedBy.Sub(c.connected) < hs*9/10:
			t.Errorf("slow client %d (%s) was closed %v after it connected, before the %v deadline", i, fe, c.closedBy.Sub(c.connected), hs)
		case c.closedAfter.Sub(c.connected) > 2*hs:
			t.Errorf("slow client %d (%s) lived %v, the deadline is %v", i, fe, c.closedAfter.Sub(c.connected), hs)
		}
		lived = append(lived, c.closedBy.Sub(c.connected))
	}
	sort.Slice(lived, func(i, j int) bool { return lived[i] < lived[j] })
	if len(lived) > 0 {
		t.Logf("%d half-open handshakes from %d addresses, opened in %v, closed after min %v, median %v, max %v (±20ms)",
			n, n, dialTime.Round(time.Millisecond), lived[0].Round(time.Millisecond),
			lived[len(lived)/2].Round(time.Millisecond), lived[len(lived)-1].Round(time.Millisecond))
	}
	var worst time.Duration
	failed := 0
	for _, p := range probes {
		worst = max(worst, p.d)
		if p.err != nil {
			failed++
			t.Errorf("valid client during the flood: %v", p.err)
		}
	}
	t.Logf("%d valid CONNECTs during the flood, %d failed, slowest %v", len(probes), failed, worst.Round(time.Millisecond))
	if len(probes) < int(floodTime/(100*time.Millisecond))/2 {
		t.Errorf("only %d valid clients ran during a %v flood", len(probes), floodTime)
	}
	t.Logf("gateway at the peak: %d descriptors (baseline %d), RSS high-water mark %d KiB (baseline %d KiB): %.1f KiB per half-open handshake",
		peakFDs, base.fds, peakRSS>>10, base.rss>>10, float64(peakRSS-base.rss)/1024/n)
	// Every handshake closed at the deadline counts as a timeout, on every
	// frontend (the shared port's first-byte wait included).
	after := timeouts()
	for _, k := range secSlowKinds {
		if got := after[k.fe] - timeoutsBefore[k.fe]; got != n/float64(len(secSlowKinds)) {
			t.Errorf("sixgate_handshake_failures_total{frontend=%q,reason=\"timeout\"} grew by %v, want %d", k.fe, got, n/len(secSlowKinds))
		}
	}
	m := st.metrics()
	if got := secMetricSum(m, "sixgate_limit_rejections_total"); got != 0 {
		t.Errorf("sixgate_limit_rejections_total = %v: a limit, not the deadline, refused clients", got)
	}
	st.settled(t, base, 10*time.Second)
}

// TestSecAuthBruteForce: after auth_failures_per_ip failures within a
// minute, even the right password is refused for that client IP, on every
// frontend, while another IP still authenticates.
func TestSecAuthBruteForce(t *testing.T) {
	st := startSecProcess(t, `  handshake_timeout    = "2s"
  auth_failures_per_ip = 5`, 2*time.Second)
	ep, echo4 := st.echo.Port(), secIp4(st.echo)
	base := st.snapshot()
	userpass := []byte{5, 1, 2}
	s5try := func(ip, pass, status string) secCase {
		return secCase{name: "socks5 " + pass + " from " + ip, fe: "s5auth", laddr: ip + ":0", spec: "RFC 1929 §2",
			steps: []secStep{secExpect(userpass, "0502"), secExpect(secRfc1929("alice", pass), status)}}
	}
	s6try := func(ip, pass, want string) secCase {
		return secCase{name: "socks6 0-RTT " + pass + " from " + ip, fe: "s6auth", laddr: ip + ":0", spec: "§6.3, TV5",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAuthData01("alice", pass)), want)}}
	}
	s6inBand := func(ip, pass, want string) secCase {
		return secCase{name: "socks6 in-band " + pass + " from " + ip, fe: "s6auth", laddr: ip + ":0", spec: "§6.3 in-band, TV6, TV5",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass), secExpect(secRfc1929("alice", pass), want)}}
	}
	rejected := func(fe string) float64 {
		return secMetricSum(st.metrics(), "sixgate_limit_rejections_total", `frontend="`+fe+`"`, `limit="auth_failures_per_ip"`)
	}
	play := func(t *testing.T, cases ...secCase) {
		t.Helper()
		for _, c := range cases {
			if err := st.run(c); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
	}
	t.Run("socks5", func(t *testing.T) {
		const attacker, other = "127.0.10.1", "127.0.10.2"
		for range 5 {
			play(t, s5try(attacker, "guess", "0101"))
		}
		before := rejected("s5auth")
		play(t, s5try(attacker, secPassword, "0101"))
		if got := rejected("s5auth") - before; got != 1 {
			t.Errorf("sixgate_limit_rejections_total{limit=\"auth_failures_per_ip\"} grew by %v, want 1", got)
		}
		if err := st.validConnect("s5auth", other+":0"); err != nil {
			t.Errorf("another IP: %v", err)
		}
		// The budget is per IP, not per frontend.
		play(t, s6try(attacker, secPassword, secS6UserPassFail))
	})
	t.Run("socks6", func(t *testing.T) {
		const attacker, other = "127.0.11.1", "127.0.11.2"
		for range 5 {
			play(t, s6try(attacker, "guess", secS6UserPassFail))
		}
		before := rejected("s6auth")
		play(t, s6try(attacker, secPassword, secS6UserPassFail),
			s6inBand(attacker, secPassword, "0101"+secS6UserPassFail))
		if got := rejected("s6auth") - before; got != 2 {
			t.Errorf("sixgate_limit_rejections_total{limit=\"auth_failures_per_ip\"} grew by %v, want 2", got)
		}
		if err := st.validConnect("s6auth", other+":0"); err != nil {
			t.Errorf("another IP: %v", err)
		}
		play(t, s5try(attacker, secPassword, "0101"))
	})
	if got := secMetricSum(st.metrics(), "sixgate_auth_total", `result="rate_limited"`); got != 5 {
		t.Errorf("sixgate_auth_total{result=\"rate_limited\"} = %v, want 5", got)
	}
	st.settled(t, base, 5*time.Second)
}

// secRawConn is a half-open client made with plain system calls.
type secRawConn struct {
	fd        int
	connected time.Time
	// closedAfter and closedBy bracket the moment the gateway closed.
	closedAfter, closedBy time.Time
}

// secRawDial connects from laddr ("ip:port") to raddr and sends partial.
func secRawDial(laddr, raddr string, partial []byte) (*secRawConn, error) {
	l, err := netip.ParseAddrPort(laddr)
	if err != nil {
		return nil, err
	}
	r, err := netip.ParseAddrPort(raddr)
	if err != nil {
		return nil, err
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c := &secRawConn{fd: fd}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: l.Addr().As4(), Port: int(l.Port())}); err != nil {
		c.close()
		return nil, fmt.Errorf("bind %s: %w", laddr, err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Addr: r.Addr().As4(), Port: int(r.Port())}); err != nil {
		c.close()
		return nil, fmt.Errorf("connect %s: %w", raddr, err)
	}
	c.connected = time.Now()
	if len(partial) > 0 {
		if _, err := syscall.Write(fd, partial); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// closed reports whether the gateway has closed the connection, reading
// and dropping whatever it sent before.
func (c *secRawConn) closed() bool {
	var buf [512]byte
	for {
		n, _, err := syscall.Recvfrom(c.fd, buf[:], syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			return false
		case err != nil:
			return true // reset
		case n == 0:
			return true // end of stream
		}
	}
}

func (c *secRawConn) close() {
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}

// TestSecSlowlorisMemory: what one half-open handshake costs the gateway in
// heap, per protocol (1000 of them at once, go_memstats_heap_inuse_bytes
// before and after). A slowloris may hold max_sessions (20000 by default)
// of them, so each must stay small: the request buffers should grow with
// the bytes received, not be taken whole before the first byte arrives.
func TestSecSlowlorisMemory(t *testing.T) {
	const n, limit = 1000, 6 << 10
	st := startSecProcessBin(t, secNoraceBinary(t), `  handshake_timeout = "10s"`, 10*time.Second)
	for _, fe := range []string{"s5", "s6"} {
		if err := st.validConnect(fe, ""); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	base := st.snapshot()
	defer st.settled(t, base, 5*time.Second)
	heap := func() float64 { return secMetricSum(st.metrics(), "go_memstats_heap_inuse_bytes") }
	for _, k := range secSlowKinds {
		if k.fe != "s5" && k.fe != "s6" {
			continue
		}
		t.Run(k.fe, func(t *testing.T) {
			time.Sleep(200 * time.Millisecond)
			h0 := heap()
			conns := make([]*secRawConn, 0, n)
			defer func() {
				for _, c := range conns {
					c.close()
				}
				secWaitFor(5*time.Second, func() bool { return secMetricSum(st.metrics(), "sixgate_sessions_active") == 0 })
			}()
			for i := range n {
				c, err := secRawDial(secFloodAddr(i), st.fe[k.fe], k.partial)
				if err != nil {
					t.Fatal(err)
				}
				conns = append(conns, c)
			}
			secWaitFor(5*time.Second, func() bool { return secMetricSum(st.metrics(), "sixgate_sessions_active") >= n })
			time.Sleep(300 * time.Millisecond)
			per := (heap() - h0) / n
			t.Logf("%s: %.1f KiB of heap per half-open handshake (partial %x)", k.fe, per/1024, k.partial)
			if per > limit {
				t.Errorf("%s: a half-open handshake holds %.1f KiB of heap, want at most %d KiB", k.fe, per/1024, limit>>10)
			}
		})
	}
}
