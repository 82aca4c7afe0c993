//go:build !linux

package direct

import (
	"net"
	"syscall"

	"github.com/sixgate/sixgate/gateway"
)

// haveTFO reports whether TCP Fast Open can be asked for on this OS.
const haveTFO = false

// applyIPOptions is gateway.ApplyIPOptions (which marks the options
// unsupported on this OS).
func applyIPOptions(fd uintptr, v6 bool, o *gateway.StackOptions) { gateway.ApplyIPOptions(fd, v6, o) }

// setFastOpenConnect is never called where haveTFO is false.
func setFastOpenConnect(fd uintptr) bool { return false }

// setBindNoPort does nothing outside Linux.
func setBindNoPort(fd uintptr) {}

// setBacklog cannot change or read the accept queue length outside Linux;
// the backend's own queueing still takes peers one by one, so it reports n.
func setBacklog(c syscall.RawConn, n int) (int, error) { return n, nil }

// isMPTCP reports false: Multipath TCP is Linux-only in Go.
func isMPTCP(c syscall.RawConn) bool { return false }

// waitEstablished is never needed without TCP Fast Open.
func waitEstablished(conn *net.TCPConn) (synData bool, err error) { return false, nil }

// udpSockState is empty outside Linux: no per-datagram IP header control.
type udpSockState struct{}

// setupUDP marks TOS, TTL and DF unsupported and declines UDPError: only
// the Linux build reads ICMP errors (from the socket error queue).
func setupUDP(fd uintptr, fam sockFam, relayV6 bool, o *gateway.StackOptions) udpSockState {
	applyIPOptions(fd, fam == fam6, o)
	if o.UDPError.Pending() {
		if o.UDPError.Value {
			o.UDPError.Decline(false)
		} else {
			o.UDPError.Apply(false)
		}
	}
	return udpSockState{}
}
