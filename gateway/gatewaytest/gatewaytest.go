// Package gatewaytest has helpers for tests that run gateways on loopback.
package gatewaytest

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// FreePort returns a port free on 127.0.0.1 now for both TCP and UDP (a
// frontend may listen on both), or fails t. It never returns the same port
// twice in one process: the kernel may hand a port just closed out again,
// and two listeners of one configuration must not get the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if PortFree(p) && claim(p) {
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// PortFree reports whether port p on 127.0.0.1 can be bound now for both
// TCP and UDP.
func PortFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

var (
	givenMu sync.Mutex
	given   = map[int]bool{}
)

// ClaimPort records p, a port a test chose itself, as handed out: false if
// FreePort or ClaimPort already gave it to someone in this process.
func ClaimPort(p int) bool { return claim(p) }

// claim records p as handed out; false if it was already.
func claim(p int) bool {
	givenMu.Lock()
	defer givenMu.Unlock()
	if given[p] {
		return false
	}
	given[p] = true
	return true
}

// WaitParked waits up to 5 s until exactly parked readers wait in the
// gateway's park set (gateway.ParkedReaders) and at most goroutines run in
// this process, or fails t: the check that idle readers gave their
// goroutines up.
func WaitParked(t testing.TB, parked, goroutines int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines || gateway.ParkedReaders() != parked {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines (want at most %d), %d readers parked (want %d): the readers did not park",
				runtime.NumGoroutine(), goroutines, gateway.ParkedReaders(), parked)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CloseWithin closes c and fails t when Close takes longer than d.
func CloseWithin(t testing.TB, c io.Closer, d time.Duration) {
	t.Helper()
	closed := make(chan struct{})
	go func() { c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(d):
		t.Fatalf("Close did not return within %v", d)
	}
}
