//go:build !linux

package socks6

import (
	"net"
	"net/netip"
)

// udpEndpoint is a UDP relay socket (no per-datagram local address on this
// OS: bind udp_listen to a specific address).
type udpEndpoint struct{ pc *net.UDPConn }

func newUDPEndpoint(pc *net.UDPConn) *udpEndpoint { return &udpEndpoint{pc: pc} }

func (e *udpEndpoint) readFrom(b, oob []byte) (int, netip.AddrPort, netip.Addr, error) {
	n, from, err := e.pc.ReadFromUDPAddrPort(b)
	return n, from, netip.Addr{}, err
}

func (e *udpEndpoint) writeTo(b []byte, to netip.AddrPort, local netip.Addr, ttl, tos int) error {
	_, err := e.pc.WriteToUDPAddrPort(b, to)
	return err
}

// oobSize is the control-message room a read needs: none here.
func (e *udpEndpoint) oobSize() int { return 0 }

// localOf is the local address a datagram was sent to: unknown here.
func (e *udpEndpoint) localOf([]byte) netip.Addr { return netip.Addr{} }

// appendOOB appends nothing: no per-datagram control here.
func (e *udpEndpoint) appendOOB(oob []byte, _ netip.AddrPort, _ netip.Addr, _, _ int) []byte {
	return oob
}

// dest is to.
func (e *udpEndpoint) dest(to netip.AddrPort) netip.AddrPort { return to }
