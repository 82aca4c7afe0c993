package gateway

import (
	"context"
	"net"
	"time"
)

// Endpoint is a socket a frontend needs. The gateway binds it, keeps it bound
// across reloads, and hands connections or the packet socket to the frontend.
type Endpoint struct {
	// Network is "tcp" or "udp".
	Network string
	// Address is host:port.
	Address string
	// FirstBytes lists the first bytes of a stream this frontend serves when
	// several frontends share one TCP address (SOCKS 5 = 0x05, SOCKS 6 =
	// 0x06); nil serves every stream on the address.
	FirstBytes []byte
	// HandshakeTimeout bounds a stream connection's handshake: the gateway
	// sets the connection's deadline to the accept time plus this before it
	// peeks the first byte or calls ServeConn, and the frontend clears the
	// deadline once the handshake is done (it never extends it).
	HandshakeTimeout time.Duration
}

// Frontend speaks a protocol to clients and turns their sessions into
// associations.
type Frontend interface {
	// Name is the frontend block's name.
	Name() string
	// Endpoints lists the sockets to bind.
	Endpoints() []Endpoint
	// ServeConn serves one accepted stream connection until the session
	// ends; the gateway closes conn afterwards. conn arrives with its
	// handshake deadline set (see Endpoint.HandshakeTimeout).
	ServeConn(ctx context.Context, conn net.Conn, ep Endpoint)
	// ServePacket serves a bound packet socket until ctx is done or the socket
	// is closed.
	ServePacket(ctx context.Context, pc net.PacketConn, ep Endpoint) error
}

// KickOnDone runs kick (typically a read deadline in the past, to unblock a
// read loop) once ctx is done. The returned function cancels it and, if kick
// has started, waits for it to finish: a packet loop that returns must not
// have its kick land later on a socket the next loop now reads (the gateway
// hands the same socket to the new frontend on a reload).
func KickOnDone(ctx context.Context, kick func()) (stop func()) {
	done := make(chan struct{})
	cancel := context.AfterFunc(ctx, func() {
		defer close(done)
		kick()
	})
	return func() {
		if !cancel() {
			<-done
		}
	}
}
