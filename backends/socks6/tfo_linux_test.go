//go:build linux

package socks6

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

// tcpiOptSynData is TCPI_OPT_SYN_DATA from include/uapi/linux/tcp.h: the
// SYN's data was acknowledged.
const tcpiOptSynData = 0x20

// TestTFONetns checks that with TFO the Request and the initial data ride
// in the SYN to the proxy. The namespace lets clients send SYN data without
// a cookie and every listener accept it (net.ipv4.tcp_fastopen = 0x607:
// client, server, no cookie, every listener without TCP_FASTOPEN), so
// the upstream needs no configuration; TCP_INFO on the client's socket must
// report the SYN data acknowledged.
func TestTFONetns(t *testing.T) {
	ns := newNetns(t)
	ns.sysctl("net.ipv4.tcp_fastopen=0x607")
	u := startUpstream(t, upstreamOpts{users: true, prefix: ns.prefix()})
	var echo *echoServer
	var listenErr error
	ns.do(func() {
		var ln net.Listener
		if ln, listenErr = net.Listen("tcp4", "127.0.0.1:0"); listenErr == nil {
			echo = serveEcho(t, ln)
		}
	})
	if listenErr != nil {
		t.Fatal(listenErr)
	}
	for _, tfo := range []bool{true, false} {
		c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, TFO: tfo})
		var conn *Conn
		var err error
		var synData bool
		ns.do(func() {
			conn, err = c.Connect(testCtx(t, 10*time.Second), gateway.Addr{Name: "localhost", Port: echo.port},
				&ConnectOptions{InitialData: []byte("in the SYN")})
			if err == nil {
				synData = tcpInfoOpts(conn.Conn.(*net.TCPConn))&tcpiOptSynData != 0
			}
		})
		if err != nil {
			t.Fatalf("tfo=%v: Connect: %v", tfo, err)
		}
		got := make([]byte, len("in the SYN"))
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(conn, got); err != nil || string(got) != "in the SYN" {
			t.Fatalf("tfo=%v: initial data %q, %v", tfo, got, err)
		}
		conn.Close()
		if synData != tfo {
			t.Errorf("tfo=%v: TCP_INFO reports SYN data acknowledged = %v", tfo, synData)
		}
	}
}

func tcpInfoOpts(c *net.TCPConn) uint8 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var opts uint8
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			opts = info.Options
		}
	})
	return opts
}
