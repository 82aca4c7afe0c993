package gateway

import (
	"errors"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ApplyIPOptions sets the pending TOS, TTL and DF options of o on a socket of
// the given family and records each outcome with the value read back: Applied
// with the value in effect, Declined when the kernel refused the value (with
// the value still in effect), Unsupported when the socket knows neither.
// Frontends use it on the client–proxy leg, backends on the proxy–remote leg.
func ApplyIPOptions(fd uintptr, v6 bool, o *StackOptions) {
	s := int(fd)
	level, tosOpt, ttlOpt := unix.IPPROTO_IP, unix.IP_TOS, unix.IP_TTL
	if v6 {
		level, tosOpt, ttlOpt = unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.IPV6_UNICAST_HOPS
	}
	if o.TOS.Pending() {
		err := unix.SetsockoptInt(s, level, tosOpt, int(o.TOS.Value))
		v, gerr := unix.GetsockoptInt(s, level, tosOpt)
		recordOpt(&o.TOS, uint8(v), err, gerr)
	}
	if o.TTL.Pending() {
		var err error = unix.EINVAL // TTL 0 is not a valid hop limit
		if o.TTL.Value != 0 {
			err = unix.SetsockoptInt(s, level, ttlOpt, int(o.TTL.Value))
		}
		v, gerr := unix.GetsockoptInt(s, level, ttlOpt)
		recordOpt(&o.TTL, uint8(v), err, gerr)
	}
	if o.DF.Pending() {
		var err, gerr error
		var df bool
		if v6 {
			on := 0
			if o.DF.Value {
				on = 1
			}
			err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, on)
			if err == nil && o.DF.Value {
				err = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO)
			}
			var v int
			v, gerr = unix.GetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG)
			df = v != 0
		} else {
			mode := unix.IP_PMTUDISC_DONT
			if o.DF.Value {
				mode = unix.IP_PMTUDISC_DO
			}
			err = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, mode)
			var v int
			v, gerr = unix.GetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
			df = v == unix.IP_PMTUDISC_DO || v == unix.IP_PMTUDISC_PROBE
		}
		recordOpt(&o.DF, df, err, gerr)
	}
}

// ApplyConnIPOptions is ApplyIPOptions on a connection's socket (a TLS
// connection's underlying socket). Options stay pending when the connection
// has no socket.
func ApplyConnIPOptions(c syscall.Conn, v6 bool, o *StackOptions) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { ApplyIPOptions(fd, v6, o) })
}

func recordOpt[T comparable](o *Opt[T], v T, setErr, getErr error) {
	switch {
	case setErr == nil && getErr == nil:
		o.Apply(v)
	case setErr == nil:
		o.Apply(o.Value)
	case getErr == nil && !errors.Is(setErr, unix.ENOPROTOOPT) && !errors.Is(setErr, unix.EOPNOTSUPP):
		o.Decline(v)
	default:
		o.Unsupport()
	}
}

// AppendIPCmsg appends control messages that set the TTL (hop limit) and
// the TOS (traffic class) of one outgoing datagram; a negative value leaves
// that field alone. It is for sendmsg on a UDP socket of the given family.
func AppendIPCmsg(oob []byte, v6 bool, ttl, tos int) []byte {
	level, ttlType, tosType := unix.IPPROTO_IP, unix.IP_TTL, unix.IP_TOS
	if v6 {
		level, ttlType, tosType = unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT, unix.IPV6_TCLASS
	}
	if ttl >= 0 {
		oob = appendIntCmsg(oob, level, ttlType, ttl)
	}
	if tos >= 0 {
		oob = appendIntCmsg(oob, level, tosType, tos)
	}
	return oob
}

func appendIntCmsg(oob []byte, level, typ, v int) []byte {
	start := len(oob)
	space := unix.CmsgSpace(4)
	oob = append(oob, make([]byte, space)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[start]))
	h.Level = int32(level)
	h.Type = int32(typ)
	h.SetLen(unix.CmsgLen(4))
	*(*int32)(unsafe.Pointer(&oob[start+unix.CmsgLen(0)])) = int32(v)
	return oob
}
