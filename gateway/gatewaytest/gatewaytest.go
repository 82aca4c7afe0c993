// Package gatewaytest has helpers for tests that run gateways on loopback.
package gatewaytest

import (
	"fmt"
	"net"
	"sync"
	"testing"
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
