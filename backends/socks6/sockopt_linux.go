//go:build linux

package socks6

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// tfoControl turns on TCP_FASTOPEN_CONNECT on the socket to the proxy, so
// that connect(2) returns at once and the first write (the Request, or the
// TLS ClientHello) goes out in the SYN. A kernel that refuses the option
// connects normally: TFO is a wish, never a reason to fail.
func tfoControl(network, address string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1)
	})
}
