package socks6

import (
	"errors"
	"net"
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// udpEndpoint is a UDP relay socket. On a wildcard address it learns, per
// datagram, the local address the client sent to (IP_PKTINFO /
// IPV6_RECVPKTINFO) and answers from that address.
type udpEndpoint struct {
	pc       *net.UDPConn
	wildcard bool
	v6       bool
}

func newUDPEndpoint(pc *net.UDPConn) *udpEndpoint {
	la := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	e := &udpEndpoint{pc: pc, wildcard: la.Addr().IsUnspecified(), v6: la.Addr().Is6() && !la.Addr().Is4In6()}
	if e.wildcard {
		if rc, err := pc.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				if e.v6 {
					unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				}
				unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			})
		}
	}
	return e
}

// readFrom reads one datagram and, on a wildcard socket, the local address
// it was sent to.
func (e *udpEndpoint) readFrom(b, oob []byte) (int, netip.AddrPort, netip.Addr, error) {
	if !e.wildcard {
		n, from, err := e.pc.ReadFromUDPAddrPort(b)
		return n, from, netip.Addr{}, err
	}
	n, oobn, _, from, err := e.pc.ReadMsgUDPAddrPort(b, oob)
	if err != nil {
		return n, from, netip.Addr{}, err
	}
	return n, from, pktDst(oob[:oobn]), nil
}

// oobSize is the control-message room a read needs: a wildcard socket
// learns the local address of each datagram.
func (e *udpEndpoint) oobSize() int {
	if e.wildcard {
		return 256
	}
	return 0
}

// localOf is the local address a datagram with control messages oob was
// sent to (invalid unless the socket is a wildcard).
func (e *udpEndpoint) localOf(oob []byte) netip.Addr {
	if !e.wildcard {
		return netip.Addr{}
	}
	return pktDst(oob)
}

// pktDst extracts the destination address from IP_PKTINFO or
// IPV6_PKTINFO control messages.
func pktDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO:
			var cm ipv4.ControlMessage
			if cm.Parse(unixCmsg(m)) == nil && cm.Dst != nil {
				if a, ok := netip.AddrFromSlice(cm.Dst.To4()); ok {
					return a
				}
			}
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO:
			var cm ipv6.ControlMessage
			if cm.Parse(unixCmsg(m)) == nil && cm.Dst != nil {
				if a, ok := netip.AddrFromSlice(cm.Dst); ok {
					return a.Unmap()
				}
			}
		}
	}
	return netip.Addr{}
}

// unixCmsg re-marshals one parsed control message for x/net's parsers.
func unixCmsg(m unix.SocketControlMessage) []byte {
	b := make([]byte, unix.CmsgSpace(len(m.Data)))
	h := (*unix.Cmsghdr)(cmsgPtr(b))
	h.Level, h.Type = m.Header.Level, m.Header.Type
	h.SetLen(unix.CmsgLen(len(m.Data)))
	copy(b[unix.CmsgLen(0):], m.Data)
	return b
}

// writeTo sends b to a client, from local when the socket is a wildcard,
// with the client–proxy leg TTL/TOS when set (>= 0). An IPv4 client of a
// dual-stack socket gets IPv4 control messages: the kernel ignores the IPv6
// ones (and a v4-mapped IPV6_PKTINFO source) for IPv4 destinations.
func (e *udpEndpoint) writeTo(b []byte, to netip.AddrPort, local netip.Addr, ttl, tos int) error {
	var oobBuf [128]byte
	oob := e.appendOOB(oobBuf[:0], to, local, ttl, tos)
	_, _, err := e.pc.WriteMsgUDPAddrPort(b, oob, e.dest(to))
	if err != nil && errors.Is(err, unix.EINVAL) && len(oob) > 0 {
		_, err = e.pc.WriteToUDPAddrPort(b, e.dest(to))
	}
	return err
}

// appendOOB appends the control messages of a datagram to a client (see
// writeTo).
func (e *udpEndpoint) appendOOB(oob []byte, to netip.AddrPort, local netip.Addr, ttl, tos int) []byte {
	v4 := to.Addr().Unmap().Is4()
	if e.wildcard && local.IsValid() {
		if v4 {
			oob = append(oob, (&ipv4.ControlMessage{Src: local.Unmap().AsSlice()}).Marshal()...)
		} else {
			oob = append(oob, (&ipv6.ControlMessage{Src: local.AsSlice()}).Marshal()...)
		}
	}
	if ttl >= 0 || tos >= 0 {
		oob = gateway.AppendIPCmsg(oob, !v4, ttl, tos)
	}
	return oob
}

// dest is to as the socket addresses it: IPv4-mapped on a dual-stack one.
func (e *udpEndpoint) dest(to netip.AddrPort) netip.AddrPort {
	if e.v6 && to.Addr().Unmap().Is4() {
		return netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
	}
	return to
}
