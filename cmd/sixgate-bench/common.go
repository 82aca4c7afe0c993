package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// common are the flags every load subcommand takes.
type common struct {
	label     string
	proto     string
	proxy     string
	user      string
	pass      string
	session   bool
	window    uint
	tfo       bool
	udpOver   string
	serverPID int
	duration  time.Duration
	timeout   time.Duration
	turnOK    bool // the subcommand takes -proto turn (UDP loads)
}

// flags returns a FlagSet with the common flags registered; the caller adds
// its own and calls parse.
func (c *common) flags(name string, stderr io.Writer) *flag.FlagSet {
	fs := newFlagSet(name, stderr)
	fs.StringVar(&c.label, "label", "", "name of this run in the result line (report groups by the part before the first '.')")
	fs.StringVar(&c.proto, "proto", "direct", "how to reach the target: direct, socks5 or socks6 (udp and idle associations: also turn)")
	fs.StringVar(&c.proxy, "proxy", "127.0.0.1:1080", "the proxy's address: TCP for socks5 and socks6, UDP for turn")
	fs.StringVar(&c.user, "user", "", "username (socks5: RFC 1929; socks6: 0-RTT authentication data; turn: long-term credentials)")
	fs.StringVar(&c.pass, "pass", "", "password")
	fs.BoolVar(&c.session, "session", false, "socks6: open a session on the first request and reuse it")
	fs.UintVar(&c.window, "window", 0, "socks6: idempotence window (tokens) asked for with the session")
	fs.BoolVar(&c.tfo, "tfo", false, "socks6: TCP Fast Open towards the proxy")
	fs.StringVar(&c.udpOver, "udp-over", "udp", "socks6 UDP associations: datagrams over udp (the relay endpoint at -proxy) or tcp (the control connection)")
	fs.IntVar(&c.serverPID, "server-pid", 0, "report the CPU-seconds this process (and its children) used during the run")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "bound on one connection setup")
	return fs
}

// parse parses args and checks the common flags.
func (c *common) parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case c.proto == "direct", c.proto == "socks5", c.proto == "socks6":
	case c.proto == "turn" && c.turnOK:
	case c.turnOK:
		fmt.Fprintf(fs.Output(), "-proto %q: want direct, socks5, socks6 or turn\n", c.proto)
		return errUsage
	default:
		fmt.Fprintf(fs.Output(), "-proto %q: want direct, socks5 or socks6\n", c.proto)
		return errUsage
	}
	if c.window > 0 && !c.session {
		fmt.Fprintln(fs.Output(), "-window needs -session")
		return errUsage
	}
	return nil
}

// newFlagSet returns an empty FlagSet for a subcommand.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sixgate-bench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, which must hold flags only.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %q\n", fs.Args())
		return errUsage
	}
	return nil
}

// Result is one machine-readable result line.
type Result struct {
	Cmd   string `json:"cmd"`
	Label string `json:"label,omitempty"`
	Proto string `json:"proto"`
	Proxy string `json:"proxy,omitempty"`
	// Params are the run's parameters (streams, workers, rate, ...).
	Params map[string]any `json:"params,omitempty"`
	// Start is when the measured part began; Seconds how long it took.
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	// Metrics are the figures (names carry their unit).
	Metrics map[string]float64 `json:"metrics"`
	// Server is the server's resource use, with -server-pid.
	Server *ServerUse `json:"server,omitempty"`
	// Errors counts failed operations (connections, datagrams not sent).
	Errors int64 `json:"errors"`
	// FirstError is the first failure's text, if any.
	FirstError string `json:"first_error,omitempty"`
	// Load1 is the machine's 1-minute load average at the end.
	Load1 float64 `json:"load1"`
	// CoreBusy is how busy each CPU was during the measured part (0 to 1,
	// by CPU number; -1 unknown): with the server and the load pinned to
	// different CPUs it shows which side ran out first.
	CoreBusy []float64 `json:"core_busy,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// ServerUse is what the server process tree consumed during a run.
type ServerUse struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// One of these, by subcommand.
	CPUPerGiB    *float64 `json:"cpu_seconds_per_gib,omitempty"`
	CPUPer1kConn *float64 `json:"cpu_seconds_per_1k_conns,omitempty"`
	CPUPerMDgram *float64 `json:"cpu_seconds_per_million_datagrams,omitempty"`
	// Utilization is CPU-seconds per wall-clock second (1 = one core).
	Utilization float64 `json:"utilization"`
}

func newResult(cmd string, c *common) *Result {
	r := &Result{Cmd: cmd, Label: c.label, Proto: c.proto, Params: map[string]any{}, Metrics: map[string]float64{}}
	if c.proto != "direct" {
		r.Proxy = c.proxy
	}
	if c.proto == "socks6" {
		r.Params["session"] = c.session
		r.Params["window"] = c.window
		r.Params["tfo"] = c.tfo
		if c.udpOver != "udp" {
			r.Params["udp_over"] = c.udpOver
		}
	}
	if c.user != "" {
		r.Params["auth"] = true
	}
	return r
}

// errCounter keeps the count and the first text of failures.
type errCounter struct {
	n     int64
	first string
}

func (e *errCounter) add(err error) {
	if e.n == 0 {
		e.first = err.Error()
	}
	e.n++
}

// cpuMeter measures a server's CPU (with a server pid) and how busy each
// CPU of the machine was over a run.
type cpuMeter struct {
	pid   int
	start procTree
	cores []coreTicks
	t0    time.Time
}

func startCPU(pid int) (*cpuMeter, error) {
	m := &cpuMeter{pid: pid}
	if pid != 0 {
		s, err := snapshotTree(pid)
		if err != nil {
			return nil, err
		}
		m.start = s
	}
	m.cores, _ = readCores()
	m.t0 = time.Now()
	return m, nil
}

// finish records in r the server's use since start (r.Server, with a
// server pid) and how busy each CPU was (r.CoreBusy); unit is "gib",
// "kconn" or "mdgram" and amount the number of those units the run moved.
func (m *cpuMeter) finish(r *Result, unit string, amount float64) {
	if cores, err := readCores(); err == nil && m.cores != nil {
		r.CoreBusy = coreBusy(m.cores, cores)
	}
	r.Server = m.stop(unit, amount)
}

func (m *cpuMeter) stop(unit string, amount float64) *ServerUse {
	if m.pid == 0 {
		return nil
	}
	end, err := snapshotTree(m.pid)
	if err != nil {
		return &ServerUse{PID: m.pid, CPUSeconds: math.NaN()}
	}
	u := &ServerUse{PID: m.pid, CPUSeconds: round(end.cpuSince(m.start), 3)}
	if wall := time.Since(m.t0).Seconds(); wall > 0 {
		u.Utilization = round(u.CPUSeconds/wall, 3)
	}
	if amount > 0 {
		v := round(u.CPUSeconds/amount, 4)
		switch unit {
		case "gib":
			u.CPUPerGiB = &v
		case "kconn":
			u.CPUPer1kConn = &v
		case "mdgram":
			u.CPUPerMDgram = &v
		}
	}
	return u
}

// emit prints r as one JSON line on stdout and the human summary on stderr.
func emit(stdout, stderr io.Writer, r *Result, summary string) error {
	r.Load1 = load1()
	for k, v := range r.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(r.Metrics, k)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n", b)
	var sb strings.Builder
	name := r.Cmd
	if r.Label != "" {
		name += " " + r.Label
	}
	fmt.Fprintf(&sb, "%s (%s", name, r.Proto)
	if r.Proxy != "" {
		fmt.Fprintf(&sb, " via %s", r.Proxy)
	}
	fmt.Fprintf(&sb, ", %.1fs, load %.1f): %s", r.Seconds, r.Load1, summary)
	if r.Server != nil {
		fmt.Fprintf(&sb, "; server cpu %.2fs (%.2f cores)", r.Server.CPUSeconds, r.Server.Utilization)
		switch {
		case r.Server.CPUPerGiB != nil:
			fmt.Fprintf(&sb, " = %.3f s/GiB", *r.Server.CPUPerGiB)
		case r.Server.CPUPer1kConn != nil:
			fmt.Fprintf(&sb, " = %.3f s/1k conns", *r.Server.CPUPer1kConn)
		case r.Server.CPUPerMDgram != nil:
			fmt.Fprintf(&sb, " = %.2f s/M datagrams", *r.Server.CPUPerMDgram)
		}
	}
	if len(r.CoreBusy) > 0 {
		fmt.Fprintf(&sb, "; CPUs busy %s", busyText(r.CoreBusy))
	}
	if r.Errors > 0 {
		fmt.Fprintf(&sb, "; %d errors (first: %s)", r.Errors, r.FirstError)
	}
	fmt.Fprintln(stderr, sb.String())
	return nil
}

// load1 returns the 1-minute load average, or 0.
func load1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscanf(string(b), "%f", &v)
	return v
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// percentiles fills m with name_p50/p90/p99/max in milliseconds.
func percentiles(m map[string]float64, name string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ds)))) - 1
		i = max(0, min(i, len(ds)-1))
		return round(float64(ds[i])/float64(time.Millisecond), 3)
	}
	m[name+"_p50_ms"] = at(0.50)
	m[name+"_p90_ms"] = at(0.90)
	m[name+"_p99_ms"] = at(0.99)
	m[name+"_max_ms"] = round(float64(ds[len(ds)-1])/float64(time.Millisecond), 3)
}

// busyText prints CPU busy shares as "94% / 97%" (CPU 0 first).
func busyText(cores []float64) string {
	parts := make([]string, len(cores))
	for i, v := range cores {
		parts[i] = "?"
		if v >= 0 {
			parts[i] = fmt.Sprintf("%.0f%%", v*100)
		}
	}
	return strings.Join(parts, " / ")
}
