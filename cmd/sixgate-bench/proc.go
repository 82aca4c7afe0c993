package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat; it is 100
// on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what the tool needs from /proc/PID/stat.
type procStat struct {
	ppid int
	own  uint64 // utime + stime
	kids uint64 // cutime + cstime: children reaped
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var st procStat
	st.ppid, _ = strconv.Atoi(f[1])
	num := func(k int) uint64 { v, _ := strconv.ParseUint(f[k], 10, 64); return v }
	st.own = num(11) + num(12)  // utime stime
	st.kids = num(13) + num(14) // cutime cstime
	return st, nil
}

// procTree is a snapshot of a server process and its live descendants.
type procTree map[int]procStat

// snapshotTree reads pid and every live descendant.
func snapshotTree(pid int) (procTree, error) {
	root, err := readStat(pid)
	if err != nil {
		return nil, fmt.Errorf("server pid %d: %w", pid, err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	all := map[int]procStat{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, err := readStat(p); err == nil {
			all[p] = st
		}
	}
	t := procTree{pid: root}
	for p, st := range all {
		for q, hops := st.ppid, 0; q > 1 && hops < 64; q, hops = all[q].ppid, hops+1 {
			if q == pid {
				t[p] = st
				break
			}
		}
	}
	return t, nil
}

// cpuSince returns the CPU-seconds the tree used between before and t: each
// live process's own time and the time of the children it reaped, so that a
// forking server (danted) is counted whole. A child that ended in between
// was normally reaped by its parent (its whole life moved into the parent's
// cutime/cstime), so what it had used before is taken off again, up to what
// the parent reaped; one that ended unreaped is missed. Never negative.
func (t procTree) cpuSince(before procTree) float64 {
	var total int64
	reaped := map[int]int64{} // per parent, reaped time not yet matched
	for p, st := range t {
		b := before[p]
		kids := int64(st.kids - min(st.kids, b.kids))
		total += int64(st.own-min(st.own, b.own)) + kids
		reaped[p] = kids
	}
	for p, b := range before {
		if _, alive := t[p]; alive {
			continue
		}
		if left, ok := reaped[b.ppid]; ok {
			took := min(int64(b.own+b.kids), left)
			reaped[b.ppid] -= took
			total -= took
		}
	}
	return float64(max(total, 0)) / clockTicks
}

type memUse struct {
	RSS int64 // bytes
	FDs int
}

// readMem returns pid's resident set size and open descriptors.
func readMem(pid int) (memUse, error) {
	var m memUse
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			m.RSS = kb << 10
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return m, err
	}
	m.FDs = len(ents)
	return m, nil
}

// coreTicks is one CPU's time from /proc/stat, in clock ticks: busy is
// user, nice, system, irq and softirq; idle is idle and iowait. Steal (time
// the host gave to others) is in neither, so busy/(busy+idle) is the share
// of the time the CPU was there that it worked.
type coreTicks struct {
	busy, idle uint64
}

// readCores returns every CPU's ticks, indexed by CPU number.
func readCores() ([]coreTicks, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCores(b)
}

// parseCores reads the "cpuN" lines of a /proc/stat text.
func parseCores(b []byte) ([]coreTicks, error) {
	var cores []coreTicks
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n > 4096 {
			return nil, fmt.Errorf("/proc/stat: bad line %q", line)
		}
		var v [7]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/stat: bad line %q", line)
			}
		}
		for len(cores) <= n {
			cores = append(cores, coreTicks{})
		}
		// user nice system idle iowait irq softirq
		cores[n] = coreTicks{busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4]}
	}
	if len(cores) == 0 {
		return nil, fmt.Errorf("/proc/stat: no cpuN lines")
	}
	return cores, nil
}

// coreBusy is the busy share of each CPU between two readings (-1 for a CPU
// that had no ticks in between, or that is missing from one of them).
func coreBusy(before, after []coreTicks) []float64 {
	out := make([]float64, len(after))
	for i, a := range after {
		out[i] = -1
		if i >= len(before) {
			continue
		}
		busy, idle := a.busy-min(a.busy, before[i].busy), a.idle-min(a.idle, before[i].idle)
		if busy+idle > 0 {
			out[i] = round(float64(busy)/float64(busy+idle), 3)
		}
	}
	return out
}
