package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// report runs the report subcommand over rs (as result lines) and returns
// its output.
func report(t *testing.T, rs []Result) string {
	t.Helper()
	var lines bytes.Buffer
	for i := range rs {
		b, _ := json.Marshal(&rs[i])
		lines.Write(append(b, '\n'))
	}
	f := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(f, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"report", "-in", f}, &out, &errOut); code != 0 {
		t.Fatalf("report: exit %d: %s", code, errOut.String())
	}
	return out.String()
}

// tableRows maps each table row's run name to the row.
func tableRows(out string) map[string]string {
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Split(l, "|"); len(f) > 2 {
			rows[strings.TrimSpace(f[1])] = l
		}
	}
	delete(rows, "run")
	delete(rows, "---")
	return rows
}

// cpuResult is a result line with a headline figure and CPU per million
// datagrams.
func cpuResult(cmd, label string, rate, cpuPer float64) Result {
	return Result{Cmd: cmd, Label: label, Proto: "socks6", Metrics: map[string]float64{"received_per_sec": rate},
		Server: &ServerUse{CPUSeconds: cpuPer, CPUPerMDgram: &cpuPer}}
}

// Repeated runs of a label become one row: the median figure, the median
// CPU per unit (taken on its own), and the range.
func TestReportMedians(t *testing.T) {
	var rs []Result
	busy := 0.0
	add := func(label string, rate, cpuPer float64) {
		busy += 0.1
		r := cpuResult("udp", label, rate, cpuPer)
		if cpuPer == 0 {
			r.Server = nil
		}
		r.CoreBusy = []float64{busy, 1 - busy}
		rs = append(rs, r)
	}
	for _, round := range [][3]float64{{100, 10, 5}, {300, 30, 1}, {200, 20, 3}} {
		add("udp.direct", round[0], 0)
		add("udp.danted", round[1], 9)
		add("udp.sixgate", round[2], round[2]/5*3)
	}
	out := report(t, rs)
	rows := tableRows(out)
	if len(rows) != 3 {
		t.Fatalf("want one row per label:\n%s", out)
	}
	// sixgate: rates 5, 1, 3 -> 3; CPU per M 3, 0.6, 1.8 -> 1.8; danted 20.
	for _, want := range []string{"| 3/s | 0.01 | 0.15 |", "median of 3 (1/s to 5/s)", "| 1.800 s/M dgram | 0.20 |"} {
		if !strings.Contains(rows["sixgate"], want) {
			t.Errorf("sixgate row lacks %q: %s", want, rows["sixgate"])
		}
	}
	if !strings.Contains(rows["direct"], "| 200/s | 1.00 |") {
		t.Errorf("direct row: %s", rows["direct"])
	}
	// Ratios within each round, in round order: rates 5/10, 1/30, 3/20;
	// CPU 3/9, 0.6/9, 1.8/9.
	if want := "per round vs danted: 0.50, 0.03, 0.15 (median 0.15); CPU 0.33, 0.07, 0.20 (median 0.20)"; !strings.Contains(rows["sixgate"], want) {
		t.Errorf("sixgate row lacks %q: %s", want, rows["sixgate"])
	}
	// CPUs busy: each CPU's median over the rounds. sixgate's rounds read
	// CPU 0 at 0.3, 0.6, 0.9 and CPU 1 at 0.7, 0.4, 0.1.
	if !strings.HasSuffix(strings.TrimSpace(rows["sixgate"]), "| 60% / 40% |") {
		t.Errorf("sixgate row's CPUs busy: %s", rows["sixgate"])
	}
	if strings.Contains(rows["danted"], "per round") {
		t.Errorf("the reference's own row has per-round ratios: %s", rows["danted"])
	}
}

// A timer-paced load's table has no CPUs busy column: tick sampling misses
// its bursts.
func TestReportBusyOnlyClosedLoop(t *testing.T) {
	out := report(t, []Result{
		{Cmd: "connrate", Label: "conn.direct", Proto: "direct", Metrics: map[string]float64{"conns_per_sec": 100}, CoreBusy: []float64{0.02, 0.99}},
		{Cmd: "uclient", Label: "turn.coturn", Proto: "turn", Metrics: map[string]float64{"received_per_sec": 100}, CoreBusy: []float64{0.03, 0.03}},
	})
	conn, turn, ok := strings.Cut(out, "### turn")
	if !ok {
		t.Fatalf("no turn table:\n%s", out)
	}
	if !strings.Contains(conn, "| CPUs busy |") || !strings.Contains(conn, "| 2% / 99% |") {
		t.Errorf("conn table lacks the CPUs busy column:\n%s", conn)
	}
	if strings.Contains(turn, "busy") || strings.Contains(turn, "3%") {
		t.Errorf("turn table shows CPUs busy:\n%s", turn)
	}
}

// -also: the rows of a table also get per-round ratios to a second peer
// (pion/turn beside coturn), but not the baseline, the reference or that
// peer itself.
func TestReportAlsoPeer(t *testing.T) {
	var rs []Result
	for _, round := range [][3]float64{{10, 20, 8}, {12, 10, 9}, {10, 16, 4}} {
		rs = append(rs, cpuResult("uclient", "turn.coturn", 100, round[0]),
			cpuResult("uclient", "turn.pionturn", 100, round[1]),
			cpuResult("uclient", "turn.sixgate", 100, round[2]))
	}
	out := report(t, rs)
	rows := tableRows(out)
	// sixgate's CPU per round: 8/20, 9/10, 4/16 against pion/turn.
	if want := "per round vs pionturn: 1.00, 1.00, 1.00 (median 1.00); CPU 0.40, 0.90, 0.25 (median 0.40)"; !strings.Contains(rows["sixgate"], want) {
		t.Errorf("sixgate row lacks %q: %s", want, rows["sixgate"])
	}
	if strings.Contains(rows["pionturn"], "vs pionturn") || strings.Contains(rows["coturn"], "vs pionturn") {
		t.Errorf("a row compared with pion/turn that should not be:\n%s", out)
	}
}

// A reference CPU reading far below the reference's usual one (a forking
// server's child that ended unreaped) is left out of the per-round CPU
// ratios instead of making one round's ratio huge.
func TestReportSkipsMissedReferenceCPU(t *testing.T) {
	var rs []Result
	for _, round := range [][2]float64{{20, 10}, {0.1, 9}, {18, 9}} {
		rs = append(rs, cpuResult("udp", "udp.danted", 100, round[0]), cpuResult("udp", "udp.sixgate", 100, round[1]))
	}
	out := report(t, rs)
	if want := "CPU 0.50, 0.50 (median 0.50)"; !strings.Contains(out, want) {
		t.Errorf("report lacks %q:\n%s", want, out)
	}
}
