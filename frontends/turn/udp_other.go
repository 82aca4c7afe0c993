//go:build !linux

package turn

import (
	"net"
	"net/netip"
)

// udpEndpoint is the client-facing UDP socket. This OS reports neither the
// local address of a datagram nor its TTL and TOS: bind listen to a specific
// address.
type udpEndpoint struct {
	pc       *net.UDPConn
	wildcard bool
	v6       bool
	local    netip.Addr
	port     uint16
}

func newUDPEndpoint(pc *net.UDPConn) *udpEndpoint {
	la := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return &udpEndpoint{pc: pc, local: la.Addr().Unmap(), port: la.Port(), v6: la.Addr().Is6() && !la.Addr().Is4In6()}
}

func parseCmsgs([]byte) (netip.Addr, int, int) { return netip.Addr{}, -1, -1 }

// oob appends no control messages: this OS cannot set a source address.
func (e *udpEndpoint) oob(b []byte, _ netip.Addr) []byte { return b }

func (e *udpEndpoint) writeTo(b []byte, to netip.AddrPort, _ netip.Addr) error {
	if e.v6 && to.Addr().Is4() {
		to = netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
	}
	_, err := e.pc.WriteToUDPAddrPort(b, to)
	return err
}
