package main

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"github.com/pion/logging"
	"github.com/pion/turn/v2"
)

// turnAssociator opens TURN allocations (RFC 8656) with pion/turn/v2's
// client, one client with a UDP socket of its own per allocation (an
// allocation belongs to a 5-tuple). Datagrams go to the peer through the
// relayed address; the client creates the permission and binds a channel
// on the first send, as a WebRTC agent's TURN client would.
type turnAssociator struct {
	server     string
	user, pass string
}

// quietPion discards the client's log: a load with thousands of clients
// would otherwise print their retransmissions.
var quietPion = func() *logging.DefaultLoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}()

func (ta turnAssociator) associate(ctx context.Context) (assoc, error) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cl, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: ta.server, TURNServerAddr: ta.server, Conn: conn,
		Username: ta.user, Password: ta.pass, LoggerFactory: quietPion,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if err := cl.Listen(); err != nil {
		cl.Close()
		conn.Close()
		return nil, err
	}
	// pion's transactions are not bound to a context: end the client when
	// ctx ends first, which fails the transaction in flight.
	stop := context.AfterFunc(ctx, cl.Close)
	rc, err := cl.Allocate()
	if !stop() {
		err = errors.Join(err, context.Cause(ctx))
	}
	if err != nil {
		if rc != nil {
			rc.Close()
		}
		cl.Close()
		conn.Close()
		return nil, err
	}
	return &turnAssoc{conn: conn, cl: cl, rc: rc}, nil
}

type turnAssoc struct {
	conn net.PacketConn // the client's socket to the server
	cl   *turn.Client
	rc   net.PacketConn // the relayed address
}

func (a *turnAssoc) send(b []byte, dst netip.AddrPort) error {
	_, err := a.rc.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	return err
}

func (a *turnAssoc) recv(b []byte) (int, error) {
	n, _, err := a.rc.ReadFrom(b)
	return n, err
}

// close deletes the allocation (a Refresh with lifetime 0) and ends the
// client.
func (a *turnAssoc) close() error {
	err := a.rc.Close()
	a.cl.Close()
	return errors.Join(err, a.conn.Close())
}
