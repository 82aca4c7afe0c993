package socks6

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUDPIdleTimeout: an association whose datagrams stop for
// udp_idle_timeout ends (the proxy closes the control connection).
func TestUDPIdleTimeout(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true, limits: `  udp_idle_timeout = "400ms"`})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
	u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	echoDatagrams(t, u, echo.gatewayAddr(), 5)
	start := time.Now()
	u.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = u.ReadFrom(make([]byte, 64))
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadFrom: %v, want net.ErrClosed", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("idle association closed after %v", took)
	}
}

// serverCPU returns the utime+stime of a process in seconds.
func serverCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// BenchmarkUDPEcho measures round trips of 200-byte datagrams to a UDP echo
// server through one SOCKS 6 association over UDP, against the same traffic
// sent directly, in one run; the association case also reports the
// gateway's CPU per datagram relayed (both directions counted).
func BenchmarkUDPEcho(b *testing.B) {
	echo := newUDPPeer(b, "127.0.0.1:0", true)
	payload := make([]byte, 200)
	buf := make([]byte, 2048)
	b.Run("direct", func(b *testing.B) {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(echo.addr))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		for b.Loop() {
			c.Write(payload)
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	up := startUpstream(b, upstreamOpts{users: true, udp: true})
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		b.Run("socks6-"+over.String(), func(b *testing.B) {
			c := mustClient(b, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
			u, err := c.UDPAssociate(testCtx(b, 10*time.Second), &UDPOptions{Over: over})
			if err != nil {
				b.Fatal(err)
			}
			defer u.Close()
			dst := echo.gatewayAddr()
			pid := up.cmd.Process.Pid
			cpu0 := serverCPU(pid)
			n := 0
			for b.Loop() {
				if err := u.WriteTo(payload, dst); err != nil {
					b.Fatal(err)
				}
				u.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := u.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if cpu := serverCPU(pid) - cpu0; n > 0 && cpu > 0 {
				b.ReportMetric(cpu/float64(2*n)*1e6, "gw-µs/dgram")
			}
		})
	}
}

// TestUDPTimeoutsWhileParked: timeouts longer than the gateway's parking
// delay (a second) are kept while the association's readers are parked:
// an association that never sends is closed after first_datagram_timeout,
// one that went quiet after udp_idle_timeout, over UDP and over TCP.
func TestUDPTimeoutsWhileParked(t *testing.T) {
	up := startUpstream(t, upstreamOpts{users: true, udp: true, limits: `  first_datagram_timeout = "1800ms"
  udp_idle_timeout = "2500ms"`})
	echo := newUDPPeer(t, "127.0.0.1:0", true)
	for _, over := range []UDPTransport{UDPOverUDP, UDPOverTCP} {
		for _, quiet := range []bool{false, true} {
			name := over.String() + "/first-datagram"
			want := 1800 * time.Millisecond
			if quiet {
				name = over.String() + "/idle"
				want = 2500 * time.Millisecond
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := mustClient(t, ClientConfig{Server: up.Addr, Username: testUser, Password: testPass})
				start := time.Now()
				u, err := c.UDPAssociate(testCtx(t, 10*time.Second), &UDPOptions{Over: over})
				if err != nil {
					t.Fatal(err)
				}
				defer u.Close()
				if quiet {
					echoDatagrams(t, u, echo.gatewayAddr(), 3)
					start = time.Now()
				}
				u.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = u.ReadFrom(make([]byte, 64))
				took := time.Since(start)
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("ReadFrom: %v, want net.ErrClosed", err)
				}
				if took < want-200*time.Millisecond || took > want+2*time.Second {
					t.Fatalf("closed after %v, want about %v", took, want)
				}
			})
		}
	}
}
