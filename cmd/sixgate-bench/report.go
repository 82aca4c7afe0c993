package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// headline says which metric leads a subcommand's row, how to print it,
// and whether more is better.
type headline struct {
	metric string
	title  string
	format func(float64) string
	extra  func(*Result) string
	// busy says whether the CPUs' busy shares mean something here: they
	// come from the kernel's tick sampling, which misses the short bursts
	// of a timer-paced load (a TURN server that used 13% of its core read
	// 3%), so only closed-loop loads show them.
	busy bool
}

var headlines = map[string]headline{
	"thru": {"bytes_per_sec", "throughput", func(v float64) string { return fmt.Sprintf("%.2f Gbit/s", v*8/1e9) }, nil, true},
	"connrate": {"conns_per_sec", "connections/s", func(v float64) string { return fmt.Sprintf("%.0f/s", v) },
		func(r *Result) string {
			return fmt.Sprintf("p50 %.2f ms, p99 %.2f ms", r.Metrics["latency_p50_ms"], r.Metrics["latency_p99_ms"])
		}, true},
	"udp": {"received_per_sec", "datagrams/s back", func(v float64) string { return fmt.Sprintf("%.0f/s", v) },
		func(r *Result) string {
			return fmt.Sprintf("loss %.2f%%, rtt p50 %.2f ms", r.Metrics["loss_pct"], r.Metrics["rtt_p50_ms"])
		}, true},
	"uclient": {"received_per_sec", "datagrams/s back", func(v float64) string { return fmt.Sprintf("%.0f/s", v) },
		func(r *Result) string { return fmt.Sprintf("loss %.2f%%", r.Metrics["loss_pct"]) }, false},
	"ttfb": {"ttfb_p50_ms", "TTFB p50", func(v float64) string { return fmt.Sprintf("%.1f ms", v) },
		func(r *Result) string {
			if v, ok := r.Metrics["rtts_p50"]; ok {
				return fmt.Sprintf("p50 %.2f RTT, min %.2f RTT, p90 %.1f ms", v, r.Metrics["rtts_min"], r.Metrics["ttfb_p90_ms"])
			}
			return fmt.Sprintf("p90 %.1f ms", r.Metrics["ttfb_p90_ms"])
		}, false},
	"idle": {"rss_per_session_bytes", "RSS per session", func(v float64) string { return fmt.Sprintf("%.1f KiB", v/1024) },
		func(r *Result) string {
			s := fmt.Sprintf("%.0f sessions + %.0f assocs; RSS %.0f MiB; fds/session %.2f",
				r.Metrics["sessions"], r.Metrics["associations"], r.Metrics["rss_after_bytes"]/(1<<20), r.Metrics["fds_per_session"])
			if g, ok := r.Metrics["goroutines_per_session"]; ok {
				s += fmt.Sprintf("; goroutines/session %.2f (%.0f total)", g, r.Metrics["goroutines_after"])
			}
			if h, ok := r.Metrics["heap_inuse_per_session_bytes"]; ok {
				s += fmt.Sprintf("; Go heap %.1f KiB + stacks %.1f KiB per session", h/1024, r.Metrics["stack_inuse_per_session_bytes"]/1024)
			}
			if c, ok := r.Params["churn"].(float64); ok && c > 0 {
				s += fmt.Sprintf(" (after %.0f open/close round)", c)
			}
			return s
		}, false},
}

// cmdReport reads result lines (JSON, one per line; other lines are
// skipped) and prints one Markdown table per group of labels (the part
// before the first '.'). Each figure gets its ratio to the group's first row
// (the baseline: direct loopback where there is one) and to the group's
// reference peer (the first of -ref present in the group), and so does the
// server CPU per unit.
func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", stderr)
	in := fs.String("in", "-", "file of result lines (- for stdin)")
	ref := fs.String("ref", "armon,danted,coturn", "reference peers, by run name (the part after the first '.'), first present wins")
	also := fs.String("also", "pionturn", "more peers, by run name, that the other rows of their table get per-round ratios to")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var src io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		src = f
	}
	var order []string
	groups := map[string][]*Result{}
	sc := bufio.NewScanner(src)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Cmd == "" {
			continue
		}
		g, _, _ := strings.Cut(r.Label, ".")
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], &r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	refs := strings.Split(*ref, ",")
	var alsos []string
	if *also != "" {
		alsos = strings.Split(*also, ",")
	}
	for _, g := range order {
		writeGroup(stdout, g, groups[g], refs, alsos)
	}
	return nil
}

func runName(r *Result) string {
	if _, run, _ := strings.Cut(r.Label, "."); run != "" {
		return run
	}
	return r.Proto
}

func writeGroup(w io.Writer, name string, rs []*Result, refs, alsos []string) {
	h, ok := headlines[rs[0].Cmd]
	if !ok {
		return
	}
	byLabel := map[string][]*Result{}
	for _, r := range rs {
		byLabel[r.Label] = append(byLabel[r.Label], r)
	}
	rs, rounds := medians(rs, h.metric)
	var ref *Result
	for _, want := range refs {
		for _, r := range rs {
			if runName(r) == want {
				ref = r
				break
			}
		}
		if ref != nil {
			break
		}
	}
	ratio := func(v float64, base *Result) string {
		if base == nil {
			return "-"
		}
		if b := base.Metrics[h.metric]; b > 0 {
			return fmt.Sprintf("%.2f", v/b)
		}
		return "-"
	}
	// A second ratio column only when the reference is not the baseline.
	second := ref != nil && ref != rs[0]
	refName := "-"
	if ref != nil {
		refName = runName(ref)
	}
	fmt.Fprintf(w, "### %s\n\n", name)
	fmt.Fprintf(w, "| run | %s | vs %s |", h.title, runName(rs[0]))
	if second {
		fmt.Fprintf(w, " vs %s |", refName)
	}
	fmt.Fprintf(w, " details | server CPU-s | CPU per unit | CPU vs %s | load |", refName)
	if h.busy {
		fmt.Fprint(w, " CPUs busy |")
	}
	fmt.Fprint(w, "\n|---|---:|---:|")
	if second {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---|---:|---:|---:|---:|")
	if h.busy {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	refCPU, _ := cpuPer(ref)
	for _, r := range rs {
		v, has := r.Metrics[h.metric]
		val, r1, r2 := "-", "-", "-"
		if has {
			val, r1, r2 = h.format(v), ratio(v, rs[0]), ratio(v, ref)
		}
		extra := ""
		if h.extra != nil {
			extra = h.extra(r)
		}
		if rd := rounds[r]; rd.n > 1 {
			if extra != "" {
				extra += "; "
			}
			extra += fmt.Sprintf("median of %d (%s to %s)", rd.n, h.format(rd.min), h.format(rd.max))
		}
		if ref != nil && r != ref {
			if pr := perRound(byLabel[r.Label], byLabel[ref.Label], h.metric); pr != "" {
				extra += fmt.Sprintf("; per round vs %s: %s", refName, pr)
			}
		}
		for _, a := range alsos {
			for _, o := range rs {
				if runName(o) != a || o == r || o == ref || r == rs[0] {
					continue
				}
				if pr := perRound(byLabel[r.Label], byLabel[o.Label], h.metric); pr != "" {
					extra += fmt.Sprintf("; per round vs %s: %s", a, pr)
				}
			}
		}
		if r.Errors > 0 {
			extra += fmt.Sprintf(" (%d errors)", r.Errors)
		}
		cpuS, per, cpuRatio := "-", "-", "-"
		if r.Server != nil {
			cpuS = fmt.Sprintf("%.2f", r.Server.CPUSeconds)
			if v, unit := cpuPer(r); v > 0 {
				per = fmt.Sprintf("%.3f %s", v, unit)
				if refCPU > 0 {
					cpuRatio = fmt.Sprintf("%.2f", v/refCPU)
				}
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s |", runName(r), val, r1)
		if second {
			fmt.Fprintf(w, " %s |", r2)
		}
		fmt.Fprintf(w, " %s | %s | %s | %s | %.1f |", extra, cpuS, per, cpuRatio, r.Load1)
		if h.busy {
			busy := "-"
			if len(r.CoreBusy) > 0 {
				busy = busyText(r.CoreBusy)
			}
			fmt.Fprintf(w, " %s |", busy)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// perRound pairs the k-th run of a label with the k-th run of the
// reference peer, both from round k (seconds apart, where the medians of
// the rows may come from different rounds), and describes the ratios of
// the headline figure and of CPU per unit, each with its median: on a
// machine whose speed drifts, a ratio taken within a round is the steadier
// one. Empty with fewer than two rounds. A round whose reference CPU
// reading is below a quarter of the reference's median is left out of the
// CPU ratios: that is a reading the process-tree accounting partly missed
// (danted's children that ended unreaped), not a server four times faster.
func perRound(runs, refRuns []*Result, metric string) string {
	n := min(len(runs), len(refRuns))
	if n < 2 {
		return ""
	}
	refCPU := median(refRuns, func(r *Result) (float64, bool) { v, _ := cpuPer(r); return v, v > 0 })
	var figs, cpus []float64
	for k := range n {
		if b := refRuns[k].Metrics[metric]; b > 0 {
			figs = append(figs, runs[k].Metrics[metric]/b)
		}
		c, _ := cpuPer(runs[k])
		if b, _ := cpuPer(refRuns[k]); b > 0 && b >= refCPU/4 && c > 0 {
			cpus = append(cpus, c/b)
		}
	}
	list := func(vs []float64) string {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = fmt.Sprintf("%.2f", v)
		}
		return strings.Join(parts, ", ")
	}
	var out []string
	if len(figs) > 1 {
		out = append(out, fmt.Sprintf("%s (median %.2f)", list(figs), medianOf(figs)))
	}
	if len(cpus) > 1 {
		out = append(out, fmt.Sprintf("CPU %s (median %.2f)", list(cpus), medianOf(cpus)))
	}
	return strings.Join(out, "; ")
}

// roundsOf is how many runs a row's figures are the median of, and the range
// of the headline figure.
type roundsOf struct {
	n        int
	min, max float64
}

// medians merges the runs of each label (the load repeated in rounds, to
// even out a shared machine): one row per label, in the order labels first
// appear, with the median of the headline metric and, separately, the
// median server CPU-seconds and CPU per unit; the other details are those
// of the run whose headline figure is the median.
func medians(rs []*Result, metric string) ([]*Result, map[*Result]roundsOf) {
	var order []string
	by := map[string][]*Result{}
	for _, r := range rs {
		if _, ok := by[r.Label]; !ok {
			order = append(order, r.Label)
		}
		by[r.Label] = append(by[r.Label], r)
	}
	out := make([]*Result, 0, len(order))
	rounds := map[*Result]roundsOf{}
	for _, l := range order {
		runs := by[l]
		if len(runs) == 1 || l == "" {
			out = append(out, runs...)
			continue
		}
		sorted := slices.Clone(runs)
		slices.SortStableFunc(sorted, func(a, b *Result) int { return cmp.Compare(a.Metrics[metric], b.Metrics[metric]) })
		mid := *sorted[len(sorted)/2]
		mid.Metrics = maps.Clone(mid.Metrics)
		mid.Metrics[metric] = median(runs, func(r *Result) (float64, bool) { v, ok := r.Metrics[metric]; return v, ok })
		if mid.Server != nil {
			srv := *mid.Server
			// A reading of no CPU at all is one the process-tree
			// accounting missed (a forking server's child that ended
			// unreaped), not a figure: left out, like in CPU per unit.
			srv.CPUSeconds = median(runs, func(r *Result) (float64, bool) {
				if r.Server == nil {
					return 0, false
				}
				return r.Server.CPUSeconds, r.Server.CPUSeconds > 0
			})
			if v := median(runs, func(r *Result) (float64, bool) { v, _ := cpuPer(r); return v, v > 0 }); v > 0 {
				switch {
				case srv.CPUPerGiB != nil:
					srv.CPUPerGiB = &v
				case srv.CPUPer1kConn != nil:
					srv.CPUPer1kConn = &v
				case srv.CPUPerMDgram != nil:
					srv.CPUPerMDgram = &v
				}
			}
			mid.Server = &srv
		}
		mid.CoreBusy = medianCores(runs)
		rounds[&mid] = roundsOf{n: len(runs), min: sorted[0].Metrics[metric], max: sorted[len(sorted)-1].Metrics[metric]}
		out = append(out, &mid)
	}
	return out, rounds
}

// medianCores is, for each CPU, the median of its busy share over the runs
// that know it (-1 when none does); nil when no run has readings.
func medianCores(rs []*Result) []float64 {
	n := 0
	for _, r := range rs {
		n = max(n, len(r.CoreBusy))
	}
	if n == 0 {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		var vs []float64
		for _, r := range rs {
			if i < len(r.CoreBusy) && r.CoreBusy[i] >= 0 {
				vs = append(vs, r.CoreBusy[i])
			}
		}
		out[i] = -1
		if len(vs) > 0 {
			out[i] = medianOf(vs)
		}
	}
	return out
}

// median is the median of the values f finds (the mean of the middle two
// for an even count), 0 when there are none.
func median(rs []*Result, f func(*Result) (float64, bool)) float64 {
	var vs []float64
	for _, r := range rs {
		if v, ok := f(r); ok {
			vs = append(vs, v)
		}
	}
	return medianOf(vs)
}

// medianOf is the median of vs, 0 when empty.
func medianOf(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

// cpuPer returns the server CPU-seconds per unit of work and the unit.
func cpuPer(r *Result) (float64, string) {
	if r == nil || r.Server == nil {
		return 0, ""
	}
	switch {
	case r.Server.CPUPerGiB != nil:
		return *r.Server.CPUPerGiB, "s/GiB"
	case r.Server.CPUPer1kConn != nil:
		return *r.Server.CPUPer1kConn, "s/1k conn"
	case r.Server.CPUPerMDgram != nil:
		return *r.Server.CPUPerMDgram, "s/M dgram"
	}
	return 0, ""
}
