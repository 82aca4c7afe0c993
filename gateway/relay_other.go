//go:build !linux

package gateway

import "net"

// waitReadable cannot wait without reading on this OS: the relay falls back
// to buffered copies.
func waitReadable(net.Conn) (int, error) { return -1, nil }
