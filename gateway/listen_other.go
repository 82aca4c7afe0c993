//go:build !linux

package gateway

import (
	"context"
	"errors"
	"net"
	"syscall"
)

// KeepAlive is the TCP keepalive every gateway socket uses.
var KeepAlive = net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}

func listenTCP(addr string) (net.Listener, error) {
	return (&net.ListenConfig{KeepAliveConfig: KeepAlive}).Listen(context.Background(), "tcp", addr)
}

func listenUDP(addr string) (*net.UDPConn, error) {
	pc, err := (&net.ListenConfig{}).ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func isTemporaryAccept(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED)
}
