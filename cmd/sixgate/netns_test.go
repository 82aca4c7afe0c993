package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netns is a network namespace created for one test.
type netns struct {
	t    testing.TB
	name string
}

// newNetns creates a fresh network namespace with lo up, removed when the
// test ends. The tests run as root (CI does); elsewhere they fail loudly.
func newNetns(t testing.TB) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("network namespace tests need root (CI runs as root)")
	}
	b := make([]byte, 4)
	rand.Read(b)
	n := &netns{t: t, name: "sg-" + hex.EncodeToString(b)}
	n.ip("netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	n.ip("-n", n.name, "link", "set", "lo", "up")
	return n
}

// ip runs an ip(8) command and fails the test on error.
func (n *netns) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs ip(8) inside the namespace.
func (n *netns) in(args ...string) { n.t.Helper(); n.ip(append([]string{"-n", n.name}, args...)...) }

// sh runs a command inside the namespace.
func (n *netns) sh(cmd ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, cmd...)...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
	}
}

// prefix is the command prefix that runs a program inside the namespace.
func (n *netns) prefix() []string { return []string{"ip", "netns", "exec", n.name} }

// do runs f on an OS thread switched into the namespace; sockets f creates
// stay in the namespace after f returns.
func (n *netns) do(f func()) {
	n.t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: it dies with this goroutine
		// instead of returning to the pool in the wrong namespace.
		target, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		n.t.Fatal(err)
	}
}
