package main

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestTURNDrain: while the gateway drains, an allocation keeps working, a
// Refresh is not granted past the grace period, a new Allocate gets 508, and
// the process exits 0 when the grace period ends.
func TestTURNDrain(t *testing.T) {
	be := turnBackends[0]
	port := gatewaytest.FreePort(t)
	g := startGateway(t, turnConfig(port, be.hcl(t), "")+"\nshutdown_grace = \"3s\"\n")
	srv := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	a := newRawTURN(t, srv, "alice", "s3cret")
	a.allocate()
	g.Signal(syscall.SIGTERM)
	waitFor(t, "readyz 503", func() bool { code, _ := g.get("/readyz"); return code == 503 })
	resp := a.mustDo(0, tt.TypeRefreshRequest, tt.LifetimeOf(600*time.Second))
	var life tt.Lifetime
	if err := life.GetFrom(resp); err != nil {
		t.Fatal(err)
	}
	if d := life.Duration(); d > 3*time.Second {
		t.Fatalf("refresh during the drain granted %v, past the 3s grace", d)
	}
	b := newRawTURN(t, srv, "bob", "hunter2")
	b.mustDo(stun.CodeInsufficientCapacity, tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoUDP})
	exit, ok := g.Wait(10 * time.Second)
	if !ok || exit != 0 {
		t.Fatalf("exit %d ok=%v", exit, ok)
	}
}

// TestTURNReloadRevokesRemovedUser: a reload that removes a user ends that
// user's allocation; another user's stays.
func TestTURNReloadRevokesRemovedUser(t *testing.T) {
	be := turnBackends[0]
	port := gatewaytest.FreePort(t)
	cfg := turnConfig(port, be.hcl(t), "")
	g := startGateway(t, cfg)
	srv := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	bob := newRawTURN(t, srv, "bob", "hunter2")
	bob.allocate()
	alice := newRawTURN(t, srv, "alice", "s3cret")
	alice.allocate()
	g.rewriteConfig(strings.Replace(cfg, "  user \"bob\" {\n    password = \"hunter2\"\n  }\n", "", 1))
	g.Signal(syscall.SIGHUP)
	waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == 1 })
	waitFor(t, "bob's allocation ended", func() bool {
		return g.metric(`sixgate_associations_active{frontend="turn",kind="turn"}`) == 1
	})
	alice.mustDo(0, tt.TypeRefreshRequest)
}

// TestTURNReloadKeepsAllocation: a reload hands the TURN socket to the new
// frontend, which keeps serving the allocations made before it.
func TestTURNReloadKeepsAllocation(t *testing.T) {
	be := turnBackends[0]
	port := gatewaytest.FreePort(t)
	g := startGateway(t, turnConfig(port, be.hcl(t), ""))
	srv := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	alice := newRawTURN(t, srv, "alice", "s3cret")
	alice.allocate()
	for i := range 3 {
		g.Signal(syscall.SIGHUP)
		waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == float64(i+1) })
		alice.mustDo(0, tt.TypeRefreshRequest)
	}
}
