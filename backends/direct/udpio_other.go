//go:build !linux

package direct

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
)

// sockIO is the per-association state of the portable data path: plain
// net.UDPConn calls, no ICMP errors and no per-datagram IP header control.
type sockIO struct {
	st udpSockState
}

func (a *association) initIO() {}

// ReadFrom reads the next datagram into b. Outside Linux no ICMP errors are
// reported. After Close it returns net.ErrClosed.
func (a *association) ReadFrom(b []byte) (gateway.Packet, error) {
	n, _, _, from, err := a.pc.ReadMsgUDPAddrPort(b, nil)
	if err != nil {
		if a.closed.Load() || errors.Is(err, net.ErrClosed) {
			return gateway.Packet{}, closedErr("read")
		}
		return gateway.Packet{}, fmt.Errorf("direct: read: %w", err)
	}
	return gateway.Packet{
		Kind: gateway.PacketData,
		N:    n,
		From: gateway.Addr{IP: from.Addr().Unmap(), Port: from.Port()},
	}, nil
}

// holdLocked is sendLocked: this OS has no batches (write never holds).
func (a *association) holdLocked(b []byte, dst netip.AddrPort, meta gateway.DatagramMeta) error {
	return a.sendLocked(b, dst, meta)
}

// sendLocked sends one datagram; meta is ignored. Called with wmu held.
func (a *association) sendLocked(b []byte, dst netip.AddrPort, meta gateway.DatagramMeta) error {
	if _, err := a.pc.WriteToUDPAddrPort(b, dst); err != nil {
		if a.closed.Load() || errors.Is(err, net.ErrClosed) {
			return closedErr("send")
		}
		return gateway.NewError(gateway.ReasonOf(err), "direct: send", err)
	}
	return nil
}
