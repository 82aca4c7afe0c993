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
