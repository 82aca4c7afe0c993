package main

import (
	"os"
	"testing"
)

// A forking server's children count once: while alive as themselves, once
// reaped in their parent's cutime, minus what they had used before the run.
func TestTreeCPUSince(t *testing.T) {
	before := procTree{
		1000: {ppid: 1, own: 100, kids: 0},
		1001: {ppid: 1000, own: 50}, // ends during the run, reaped at 80
		1003: {ppid: 1000, own: 10}, // lives on, to 15
		1005: {ppid: 1003, own: 40}, // ends during the run, not reaped
	}
	after := procTree{
		1000: {ppid: 1, own: 150, kids: 80},
		1003: {ppid: 1000, own: 15},
		1004: {ppid: 1000, own: 20}, // started during the run
	}
	// root 50 + 1001's 30 after the start + 1003's 5 + 1004's 20; 1005's
	// time after the start is lost, and its time before is not taken off
	// anything.
	if got := after.cpuSince(before); got != 1.05 {
		t.Fatalf("cpuSince = %v, want 1.05", got)
	}
	// The live process tree of this test: at least the process itself.
	snap, err := snapshotTree(os.Getpid())
	if err != nil || len(snap) == 0 {
		t.Fatalf("snapshotTree: %v %v", snap, err)
	}
}

// /proc/stat: the per-CPU lines give each CPU's busy share between two
// readings; steal counts as neither busy nor idle.
func TestCoreBusy(t *testing.T) {
	before, err := parseCores([]byte("cpu  10 0 10 100 0 0 0 0 0 0\n" +
		"cpu0 5 0 5 50 0 0 0 0 0 0\ncpu1 5 0 5 50 0 0 0 7 0 0\nintr 1 2 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	// CPU 0: 90 busy (user 40, nice 10, system 20, irq 10, softirq 10),
	// 10 idle (idle 6, iowait 4); CPU 1: 25 busy, 75 idle, 50 steal.
	after, err := parseCores([]byte("cpu0 45 10 25 56 4 10 10 0 0 0\n" +
		"cpu1 20 0 15 125 0 0 0 57 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := coreBusy(before, after)
	if len(got) != 2 || got[0] != 0.9 || got[1] != 0.25 {
		t.Fatalf("busy %v, want [0.9 0.25]", got)
	}
	if got := busyText([]float64{0.9, -1, 0.254}); got != "90% / ? / 25%" {
		t.Errorf("busyText %q", got)
	}
	if _, err := parseCores([]byte("cpu  1 2 3 4 5 6 7\n")); err == nil {
		t.Error("no per-CPU line: want an error")
	}
	if cores, err := readCores(); err != nil || len(cores) == 0 {
		t.Errorf("this machine's /proc/stat: %v, %v", cores, err)
	}
}
