package socks6

import (
	"context"
	"errors"
	"net"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// udpRelay is the frontend's UDP relay state: associations by ID, shared by
// the UDP and DTLS relay endpoints. It lives in the gateway's StateStore.
type udpRelay struct{}

func newUDPRelay() *udpRelay { return &udpRelay{} }

// udpAssociate is not carried yet.
func (cn *conn) udpAssociate(ctx context.Context) {
	err := gateway.NewError(gateway.ReasonCommandNotSupported, "socks6", errors.New("udp associate"))
	cn.opReply(s6.ReplyCommandNotSupported, gateway.Addr{}, nil)
	cn.log(gateway.CmdUDP, nil, gateway.RelayStats{}, err)
}

// ServePacket serves the UDP relay endpoint.
func (f *Frontend) ServePacket(ctx context.Context, pc net.PacketConn, ep gateway.Endpoint) error {
	<-ctx.Done()
	return nil
}
