//go:build !linux

package socks6

import "syscall"

// tfoControl does nothing: TCP_FASTOPEN_CONNECT is Linux-only, and the
// connection to the proxy is made without TCP Fast Open.
func tfoControl(network, address string, c syscall.RawConn) error { return nil }
