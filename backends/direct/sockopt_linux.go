//go:build linux

package direct

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

// haveTFO reports whether TCP Fast Open (TCP_FASTOPEN_CONNECT) can be asked
// for on this OS.
const haveTFO = true

// TCP states and TCP_INFO option bits from include/net/tcp_states.h and
// include/uapi/linux/tcp.h that x/sys/unix does not name.
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpCloseWait   = 8
	tcpiOptSynData = 0x20
)

// applyIPOptions sets TOS, TTL and DF on a socket of the given family and
// records each wanted option's outcome (gateway.ApplyIPOptions).
func applyIPOptions(fd uintptr, v6 bool, o *gateway.StackOptions) { gateway.ApplyIPOptions(fd, v6, o) }

// setFastOpenConnect turns on TCP_FASTOPEN_CONNECT so that the first write
// goes out in the SYN, and reports whether the option reads back as set.
func setFastOpenConnect(fd uintptr) bool {
	if unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT, 1) != nil {
		return false
	}
	v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT)
	return err == nil && v == 1
}

// setBindNoPort defers the choice of the source port to connect(2) when the
// source address is bound, so a busy source address does not run out of
// ephemeral ports for bind(2). Failure is harmless.
func setBindNoPort(fd uintptr) {
	_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
}

// setBacklog changes the accept queue length of a listening socket and
// returns the length in effect (the kernel caps it at net.core.somaxconn).
func setBacklog(c syscall.RawConn, n int) (int, error) {
	var got int
	var err error
	cerr := c.Control(func(fd uintptr) {
		if err = unix.Listen(int(fd), n); err != nil {
			return
		}
		var info *unix.TCPInfo
		if info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			got = int(info.Sacked) // sk_max_ack_backlog for a listener
		}
	})
	if cerr != nil {
		return 0, cerr
	}
	return got, err
}

// isMPTCP reports whether a socket is a Multipath TCP socket.
func isMPTCP(c syscall.RawConn) bool {
	var proto int
	var err error
	if cerr := c.Control(func(fd uintptr) {
		proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); cerr != nil || err != nil {
		return false
	}
	return proto == unix.IPPROTO_MPTCP
}

// waitEstablished waits until a connection whose SYN may still be in flight
// (TCP Fast Open defers connect(2) to the first write) is established, and
// returns the connection error if the handshake failed. It honours the write
// deadline of conn.
func waitEstablished(conn *net.TCPConn) (synData bool, err error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false, err
	}
	var serr error
	werr := rc.Write(func(fd uintptr) bool {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			serr = err
			return true
		}
		if info.State == tcpSynSent {
			return false // wait for EPOLLOUT (established) or EPOLLERR
		}
		if info.State != tcpEstablished && info.State != tcpCloseWait {
			serr = unix.ECONNRESET
			if e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
				serr = syscall.Errno(e)
			}
			return true
		}
		synData = info.Options&tcpiOptSynData != 0
		return true
	})
	if werr != nil {
		return false, werr
	}
	if serr != nil {
		return false, &net.OpError{Op: "dial", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(),
			Err: os.NewSyscallError("connect", serr)}
	}
	return synData, nil
}

// udpSockState is what setupUDP leaves on an association socket, for the
// send path to compare per-datagram wishes against.
type udpSockState struct {
	// recvErr says ICMP errors are queued on the socket (IP_RECVERR /
	// IPV6_RECVERR).
	recvErr bool
	// pmtu4 is the IP_MTU_DISCOVER mode for IPv4 datagrams in effect when
	// no datagram asks for DF.
	pmtu4 int
	// df6 says IPv6 datagrams leave with IPV6_DONTFRAG.
	df6 bool
}

// setupUDP prepares an association socket: ICMP errors queued on the error
// queue (IP_RECVERR / IPV6_RECVERR), the TTL and TOS of received datagrams
// reported (IP_RECVTTL, IP_RECVTOS, IPV6_RECVHOPLIMIT, IPV6_RECVTCLASS), and
// the TOS, TTL and DF stack options applied and recorded in o. A dual-stack
// socket gets the options at both levels (IPv4-mapped traffic uses the IPv4
// ones); the outcome recorded is that of the relay family. UDPError is
// Applied with the value asked when the error queue is on (ICMP errors are
// always read; the frontend decides whether to report them), else Declined.
func setupUDP(fd uintptr, fam sockFam, relayV6 bool, o *gateway.StackOptions) udpSockState {
	s := int(fd)
	st := udpSockState{recvErr: true, pmtu4: unix.IP_PMTUDISC_WANT}
	if fam.has4() {
		if unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVERR, 1) != nil {
			st.recvErr = false
		}
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
	}
	if fam.has6() {
		if unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1) != nil {
			st.recvErr = false
		}
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
		_ = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1)
	}
	switch fam {
	case fam4:
		applyIPOptions(fd, false, o)
	case fam6:
		applyIPOptions(fd, true, o)
	default:
		o4, o6 := *o, *o
		applyIPOptions(fd, false, &o4)
		applyIPOptions(fd, true, &o6)
		if relayV6 {
			o.TOS, o.TTL, o.DF = o6.TOS, o6.TTL, o6.DF
		} else {
			o.TOS, o.TTL, o.DF = o4.TOS, o4.TTL, o4.DF
		}
	}
	if fam.has4() {
		if v, err := unix.GetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER); err == nil {
			st.pmtu4 = v
		}
	}
	if fam.has6() {
		v, err := unix.GetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG)
		st.df6 = err == nil && v != 0
	}
	if o.UDPError.Pending() {
		switch {
		case !o.UDPError.Value:
			o.UDPError.Apply(false)
		case st.recvErr:
			o.UDPError.Apply(true)
		default:
			o.UDPError.Decline(false)
		}
	}
	return st
}
