package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestSOCKS6UDPAcrossReload: a SOCKS 6 association mapped on the shared UDP
// relay endpoint keeps relaying across reloads (the new frontend takes the
// socket and finds the association in the gateway's state store).
func TestSOCKS6UDPAcrossReload(t *testing.T) {
	echo := echoAddr(t)
	port := gatewaytest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	g := startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "main" {
  listen     = %[1]q
  udp_listen = %[1]q
}
backend "direct" "out" {}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "out"
}
`, addr))
	c, err := bsocks6.NewClient(bsocks6.ClientConfig{Server: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u, err := c.UDPAssociate(ctx, &bsocks6.UDPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	dst := gateway.AddrFromAddrPort(echo)
	roundTrip := func(msg string) {
		t.Helper()
		buf := make([]byte, 256)
		for range 5 { // UDP: resend if one is lost
			if err := u.WriteTo([]byte(msg), dst); err != nil {
				t.Fatal(err)
			}
			u.SetReadDeadline(time.Now().Add(time.Second))
			pkt, err := u.ReadFrom(buf)
			if err == nil && string(buf[:pkt.N]) == msg {
				return
			}
		}
		t.Fatalf("no echo of %q (transport %v)", msg, u.Transport())
	}
	roundTrip("before")
	if u.Transport() != bsocks6.UDPOverUDP {
		t.Fatalf("transport %v, want UDP", u.Transport())
	}
	for i := range 2 {
		g.Signal(syscall.SIGHUP)
		waitFor(t, "reload", func() bool { return g.metric(`sixgate_config_reloads_total{result="success"}`) == float64(i+1) })
		roundTrip(fmt.Sprint("after reload ", i+1))
	}
}
