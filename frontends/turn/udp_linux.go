package turn

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpEndpoint is the client-facing UDP socket. It asks the kernel for each
// datagram's TTL and TOS (RFC 8656 §14 copies them to the relayed datagram)
// and, on a wildcard address, for the local address the client sent to
// (IP_PKTINFO / IPV6_RECVPKTINFO), so replies leave from that address.
type udpEndpoint struct {
	pc       *net.UDPConn
	wildcard bool
	v6       bool // an AF_INET6 socket (IPv4 clients appear IPv4-mapped)
	local    netip.Addr
	port     uint16
}

func newUDPEndpoint(pc *net.UDPConn) *udpEndpoint {
	la := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	e := &udpEndpoint{pc: pc, wildcard: la.Addr().IsUnspecified(), local: la.Addr().Unmap(), port: la.Port()}
	e.v6 = la.Addr().Is6() && !la.Addr().Is4In6()
	if rc, err := pc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			s := int(fd)
			unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
			unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
			if e.v6 {
				unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
				unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1)
			}
			if e.wildcard {
				unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
				if e.v6 {
					unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				}
			}
		})
	}
	return e
}

// parseCmsgs reads the destination address, TTL (hop limit) and TOS
// (traffic class) from a datagram's control messages without allocating;
// missing values are the zero Addr and -1.
func parseCmsgs(oob []byte) (dst netip.Addr, ttl, tos int) {
	ttl, tos = -1, -1
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= 12:
			dst = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 16:
			dst = netip.AddrFrom16([16]byte(data[:16])).Unmap()
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4:
			ttl = int(binary.NativeEndian.Uint32(data))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TOS && len(data) >= 1:
			tos = int(data[0])
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
			ttl = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_TCLASS && len(data) >= 4:
			tos = int(int32(binary.NativeEndian.Uint32(data)))
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return dst, ttl, tos
}

// writeTo sends b to a client, from local when the socket is a wildcard.
func (e *udpEndpoint) writeTo(b []byte, to netip.AddrPort, local netip.Addr) error {
	if e.v6 && to.Addr().Is4() {
		to = netip.AddrPortFrom(netip.AddrFrom16(to.Addr().As16()), to.Port())
	}
	var oobBuf [64]byte
	oob := e.oob(oobBuf[:0], local)
	if len(oob) == 0 {
		_, err := e.pc.WriteToUDPAddrPort(b, to)
		return err
	}
	_, _, err := e.pc.WriteMsgUDPAddrPort(b, oob, to)
	if err != nil && errors.Is(err, unix.EINVAL) {
		_, err = e.pc.WriteToUDPAddrPort(b, to)
	}
	return err
}

// oob appends to b the control messages of a datagram to a client: its
// source address, local, when the socket is a wildcard.
func (e *udpEndpoint) oob(b []byte, local netip.Addr) []byte {
	if !e.wildcard || !local.IsValid() {
		return b
	}
	return appendPktinfo(b, e.v6, local)
}

// appendPktinfo appends the control message that sets a datagram's source
// address.
func appendPktinfo(oob []byte, v6 bool, src netip.Addr) []byte {
	level, typ, size := unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo
	if v6 {
		level, typ, size = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo
	}
	start := len(oob)
	oob = append(oob, make([]byte, unix.CmsgSpace(size))...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[start]))
	h.Level, h.Type = int32(level), int32(typ)
	h.SetLen(unix.CmsgLen(size))
	data := oob[start+unix.CmsgLen(0):]
	if v6 {
		a := src.As16() // IPv4 sources IPv4-mapped
		copy(data[:16], a[:])
	} else {
		a := src.Unmap().As4()
		copy(data[4:8], a[:]) // ipi_spec_dst
	}
	return oob
}
