package gateway

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAcceptedKeepAlive: a connection accepted from a gateway listener has
// TCP keepalive on (inherited from the listening socket, not set per
// connection) and TCP_NODELAY.
func TestAcceptedKeepAlive(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ka, nd int
	var kerr, nerr error
	rc.Control(func(fd uintptr) {
		ka, kerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		nd, nerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
	})
	if kerr != nil || ka != 1 {
		t.Errorf("SO_KEEPALIVE on the accepted socket = %d, %v; want 1", ka, kerr)
	}
	if nerr != nil || nd != 1 {
		t.Errorf("TCP_NODELAY on the accepted socket = %d, %v; want 1", nd, nerr)
	}
}
