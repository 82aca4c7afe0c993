//go:build linux

package direct

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

// The data path of a UDP association on Linux talks to the socket with
// recvmsg(2) and sendmsg(2) on pre-built message headers (no allocation per
// datagram) through syscall.RawConn, so that one read can look at both the
// data queue and the error queue (MSG_ERRQUEUE) where IP_RECVERR puts ICMP
// errors.
//
// The netpoller needs care. The kernel reports a queued error as EPOLLERR,
// and a pending socket error (sk_err, which IP_RECVERR sets for every ICMP)
// makes the next recvmsg or sendmsg fail once. A read therefore checks the
// error queue whenever the data queue is empty (before it waits), when
// recvmsg reports a socket error, and first thing while an earlier read or a
// send hinted that entries may be queued; so an error is never left behind
// with nobody woken to drain it, and a pending error never makes the reader
// spin. An EPOLLERR event that comes without EPOLLIN or EPOLLOUT makes Go's
// poller fail reads with "not pollable" until the next event; ReadFrom then
// reads without the poller and backs off briefly instead of failing.

// oobSize is the control buffer of a read: the sock_extended_err with its
// offender address, plus the TTL/hop limit and TOS/traffic class of the
// packet, with room to spare.
const oobSize = 256

// cmsgHdrLen is the aligned size of a control message header.
var cmsgHdrLen = unix.CmsgLen(0)

// sockIO is the per-association state of the Linux data path.
type sockIO struct {
	st udpSockState

	// The reader's state, owned by the one goroutine in ReadFrom.
	rmsg   unix.Msghdr
	riov   unix.Iovec
	rname  unix.RawSockaddrInet6
	roob   [oobSize / 8]uint64 // 8-byte aligned for the headers
	rbuf   []byte
	rpkt   gateway.Packet
	rerr   error
	readFn func(fd uintptr) bool
	// ServePackets' batch: buffers from bget until bput, each datagram
	// and ICMP error handed to serve.
	bget    func() [][]byte
	bput    func()
	serve   func(i int, pkt gateway.Packet)
	serveFn func(fd uintptr) bool
	// errHint says the error queue may hold entries: read it first.
	errHint atomic.Bool

	// ServePacketsIdle: idle is how long the reader may wait for nothing
	// (0: for ever), idleAt when its read deadline looks next, and active
	// whether anything was read since the last look (the reader's
	// goroutine only).
	idle   time.Duration
	idleAt time.Time
	active bool

	// The writer's state, under association.wmu.
	wmsg    unix.Msghdr
	wiov    unix.Iovec
	wname   unix.RawSockaddrInet6
	woob    [12]uint64
	wpmtu   int // IP_MTU_DISCOVER this datagram needs
	curPMTU int // IP_MTU_DISCOVER set on the socket
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
	// later holds what WriteToLater keeps until Flush (nil when empty).
	later *gateway.SendEach
	// laterMeta is the wishes of each datagram in later, for a resend.
	laterMeta []gateway.DatagramMeta

	// lastDF4 is the IPv4 destination (address and port, packed) of the
	// last datagram sent with DF: the kernel's local "too big" error
	// about it carries no port. It is stored before the send, since the
	// reader may see the error before sendmsg returns.
	lastDF4 atomic.Uint64
}

func (a *association) initIO() {
	a.io.readFn = a.readOnce
	a.io.serveFn = a.serveOnce
	a.io.writeFn = a.io.sendOnce
	a.io.curPMTU = a.io.st.pmtu4
}

// ReadFrom reads the next datagram into b (a longer datagram is truncated to
// len(b)) or the next ICMP error about a datagram the association sent.
// Datagrams report their source and, in Meta, the TTL (hop limit) and TOS
// (traffic class) they arrived with. ICMP errors report every type and code
// the kernel queued, the destination of the failed datagram, and the ICMP
// packet's source as Reporter; errors the local stack raised (a datagram
// larger than the known path MTU with DF) are reported as the ICMP error
// they stand for (IPv4 3/4, ICMPv6 2, with the MTU) with Local set and the
// local address as Reporter. After Close it returns net.ErrClosed.
func (a *association) ReadFrom(b []byte) (gateway.Packet, error) {
	s := &a.io
	s.rbuf = b
	defer func() { s.rbuf = nil }()
	return a.read()
}

func (a *association) read() (gateway.Packet, error) {
	if err := a.readLoop(a.io.readFn); err != nil {
		return gateway.Packet{}, err
	}
	return a.io.rpkt, nil
}

// readLoop runs the read callback f in the poller until it returns true
// (a datagram, an ICMP error or an error), and returns that error.
func (a *association) readLoop(f func(fd uintptr) bool) error {
	s := &a.io
	s.rerr = nil
	backoff := time.Millisecond
	for {
		err := a.rc.Read(f)
		if err == nil {
			break
		}
		if a.closed.Load() || errors.Is(err, net.ErrClosed) {
			return closedErr("read")
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if s.idle <= 0 {
				// kickReader: the error queue has something.
				a.pc.SetReadDeadline(time.Time{})
				continue
			}
			// The idle deadline, or kickReader (the error queue has
			// something: the callback looks). Idle is when the deadline
			// passed without a kick and nothing was read since the last
			// look; the deadline is not moved per datagram.
			if now := time.Now(); !now.Before(s.idleAt) {
				if !s.active && !s.errHint.Load() {
					return gateway.ErrReaderIdle
				}
				s.active = false
				s.idleAt = now.Add(s.idle)
			}
			a.pc.SetReadDeadline(s.idleAt)
			continue
		}
		// The poller refuses to wait (an error-only event): read
		// directly, and wait a little when nothing is there.
		got := false
		if cerr := a.rc.Control(func(fd uintptr) { got = f(fd) }); cerr != nil {
			return closedErr("read")
		}
		if got {
			break
		}
		select {
		case <-a.done:
			return closedErr("read")
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 50*time.Millisecond)
	}
	if s.rerr != nil {
		return fmt.Errorf("direct: read: %w", s.rerr)
	}
	return nil
}

// ServePackets reads datagrams and ICMP errors until the association is
// closed or a read fails, and calls fn for each inside the poller's read
// (gateway.PacketServer): recvmmsg(2) fills a batch of buffers from get,
// taken only while the socket is readable and given back to put before the
// reader waits; a batch that comes back short drained the queue, so the
// reader waits without another read (see gateway.MsgBatch). i is the index
// of a datagram's buffer in the batch, -1 for an ICMP error.
func (a *association) ServePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet)) error {
	return a.servePackets(get, put, fn, 0)
}

// ServePacketsIdle is ServePackets that also returns gateway.ErrReaderIdle
// once nothing arrived for about idle (gateway.IdlePacketServer): the read
// deadline is set idle ahead and, when it passes, moved on if something
// was read meanwhile.
func (a *association) ServePacketsIdle(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	return a.servePackets(get, put, fn, idle)
}

// ReadConn is the socket the association's reads wait on.
func (a *association) ReadConn() syscall.RawConn { return a.rc }

func (a *association) servePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	s := &a.io
	a.serveMu.Lock()
	if a.closed.Load() {
		a.serveMu.Unlock()
		return closedErr("read")
	}
	a.serving = true
	a.serveMu.Unlock()
	s.bget, s.bput, s.serve = get, put, fn
	if idle > 0 {
		s.serve = func(i int, pkt gateway.Packet) {
			s.active = true
			fn(i, pkt)
		}
		s.idle, s.active, s.idleAt = idle, false, time.Now().Add(idle)
		// Before the first wait: a Close from here on sets closed first,
		// which the callback sees before it waits.
		a.pc.SetReadDeadline(s.idleAt)
	}
	defer func() {
		s.idle = 0
		s.bget, s.bput, s.serve = nil, nil, nil
		a.serveMu.Lock()
		a.serving = false
		left := a.closeLeft
		a.serveMu.Unlock()
		if left {
			a.finishClose()
		}
	}()
	err := a.readLoop(s.serveFn)
	if err == nil && a.closed.Load() {
		err = closedErr("read")
	}
	return err
}

// msgBatches holds the recvmmsg headers of batches being read.
var msgBatches = sync.Pool{New: func() any { return gateway.NewMsgBatch(serveBatch, oobSize) }}

// serveBatch is the most datagrams ServePackets reads at once.
const serveBatch = gateway.ReadBatch

// serveOnce is ServePackets' RawConn.Read callback: it hands over what the
// socket has and returns false to wait when the queue is drained, true when
// reading must end (closed, or a persistent error in s.rerr).
func (a *association) serveOnce(fd uintptr) bool {
	s := &a.io
	fails := 0
	for !a.closed.Load() {
		if s.errHint.Load() && a.readErrQueue(fd) {
			s.serve(-1, s.rpkt)
			continue
		}
		bufs := s.bget()
		m := msgBatches.Get().(*gateway.MsgBatch)
		n, errno := m.Recv(fd, bufs, 0)
		for i := 0; i < n; i++ {
			s.serve(i, dataPacket(m.N(i), len(bufs[i]), m.From(i), m.OOB(i)))
		}
		msgBatches.Put(m)
		s.bput()
		switch errno {
		case 0:
			fails = 0
			if n < len(bufs) {
				return false // drained: wait for the next datagram
			}
			continue
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// As in readOnce: the error queue needs a look only when a
			// send hinted at it.
			if s.errHint.Load() && a.readErrQueue(fd) {
				s.serve(-1, s.rpkt)
				continue
			}
			return false
		}
		// A pending socket error (reading cleared it): normally an ICMP
		// error whose details wait in the error queue.
		if a.readErrQueue(fd) {
			s.serve(-1, s.rpkt)
			continue
		}
		if fails++; fails > 16 || errno == unix.EBADF || errno == unix.ENOTSOCK || errno == unix.EINVAL || errno == unix.EFAULT {
			s.rerr = os.NewSyscallError("recvmmsg", errno)
			return true
		}
	}
	return true
}

// readOnce is the reader's RawConn.Read callback: true when it produced a
// datagram, an ICMP error or an error, false to wait for the socket.
func (a *association) readOnce(fd uintptr) bool {
	s := &a.io
	if s.errHint.Load() && a.readErrQueue(fd) {
		return true
	}
	for i := 0; ; i++ {
		n, errno := s.recv(fd, 0)
		switch errno {
		case 0:
			a.fillData(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// Nothing queued. The error queue needs a look only when a
			// send hinted at it (a send that consumed the socket error
			// also kicks a waiting reader, see kickReader); otherwise an
			// ICMP error arriving later wakes the poller and fails the
			// next recvmsg, which sends us to the queue.
			if s.errHint.Load() {
				return a.readErrQueue(fd)
			}
			return false
		}
		// A pending socket error: normally an ICMP error whose details
		// wait in the error queue. Reading it cleared it.
		if a.readErrQueue(fd) {
			return true
		}
		if i >= 16 || errno == unix.EBADF || errno == unix.ENOTSOCK || errno == unix.EINVAL || errno == unix.EFAULT {
			s.rerr = os.NewSyscallError("recvmsg", errno)
			return true
		}
	}
}

// recv is one recvmsg(2) into the caller's buffer (flags 0) or with no
// buffer (MSG_ERRQUEUE).
func (s *sockIO) recv(fd uintptr, flags int) (int, syscall.Errno) {
	s.rmsg = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&s.rname)),
		Namelen: unix.SizeofSockaddrInet6,
		Control: (*byte)(unsafe.Pointer(&s.roob[0])),
	}
	s.rmsg.SetControllen(oobSize)
	if flags == 0 {
		s.riov.Base = nil
		if len(s.rbuf) > 0 {
			s.riov.Base = &s.rbuf[0]
		}
		s.riov.SetLen(len(s.rbuf))
		s.rmsg.Iov = &s.riov
		s.rmsg.SetIovlen(1)
	}
	n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&s.rmsg)), uintptr(flags))
	return int(n), errno
}

func (s *sockIO) oob() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&s.roob[0])), oobSize)[:min(int(s.rmsg.Controllen), oobSize)]
}

// fillData makes the packet for a datagram of n bytes just read.
func (a *association) fillData(n int) {
	s := &a.io
	s.rpkt = dataPacket(n, len(s.rbuf), gateway.SockaddrAddrPort(&s.rname), s.oob())
}

// dataPacket is the packet for a datagram of n bytes read into a buffer of
// size bytes, from from, with control messages oob.
func dataPacket(n, size int, from netip.AddrPort, oob []byte) gateway.Packet {
	p := gateway.Packet{Kind: gateway.PacketData, N: min(n, size), From: gateway.Addr{IP: from.Addr(), Port: from.Port()}}
	for level, typ, data, rest := nextCmsg(oob); data != nil; level, typ, data, rest = nextCmsg(rest) {
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_TTL && len(data) >= 4,
			level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			p.Meta.TTL = uint8(binary.NativeEndian.Uint32(data))
		case level == unix.IPPROTO_IP && typ == unix.IP_TOS && len(data) >= 1:
			p.Meta.TOS, p.Meta.HasTOS = data[0], true
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_TCLASS && len(data) >= 4:
			p.Meta.TOS, p.Meta.HasTOS = uint8(binary.NativeEndian.Uint32(data)), true
		}
	}
	return p
}

// readErrQueue reads the error queue until it yields an ICMP error (true)
// or is empty (false). Entries that are not about a sent datagram are
// dropped.
func (a *association) readErrQueue(fd uintptr) bool {
	s := &a.io
	s.errHint.Store(false)
	for {
		_, errno := s.recv(fd, unix.MSG_ERRQUEUE)
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		default:
			return false
		}
		s.errHint.Store(true) // more may follow
		if e, ok := a.parseErr(); ok {
			s.rpkt = gateway.Packet{Kind: gateway.PacketICMP, ICMP: e}
			return true
		}
	}
}

// parseErr turns the error queue entry just read into an ICMPError.
func (a *association) parseErr() (gateway.ICMPError, bool) {
	s := &a.io
	dest := gateway.SockaddrAddrPort(&s.rname)
	for level, typ, data, rest := nextCmsg(s.oob()); data != nil; level, typ, data, rest = nextCmsg(rest) {
		if !(level == unix.IPPROTO_IP && typ == unix.IP_RECVERR) && !(level == unix.IPPROTO_IPV6 && typ == unix.IPV6_RECVERR) {
			continue
		}
		const eeLen = int(unsafe.Sizeof(unix.SockExtendedErr{}))
		if len(data) < eeLen {
			return gateway.ICMPError{}, false
		}
		ee := unix.SockExtendedErr{
			Errno:  binary.NativeEndian.Uint32(data[0:]),
			Origin: data[4],
			Type:   data[5],
			Code:   data[6],
			Info:   binary.NativeEndian.Uint32(data[8:]),
		}
		return a.icmpFrom(&ee, dest, offender(data[eeLen:]))
	}
	return gateway.ICMPError{}, false
}

// icmpFrom maps a sock_extended_err to the neutral ICMP error.
func (a *association) icmpFrom(ee *unix.SockExtendedErr, dest netip.AddrPort, from netip.Addr) (gateway.ICMPError, bool) {
	e := gateway.ICMPError{Dest: dest, Type: ee.Type, Code: ee.Code, Reporter: from}
	switch ee.Origin {
	case unix.SO_EE_ORIGIN_ICMP:
		if e.Type == gateway.ICMPv4DestUnreachable && e.Code == icmpFragNeeded {
			e.MTU = ee.Info
		}
	case unix.SO_EE_ORIGIN_ICMP6:
		e.V6 = true
		if e.Type == gateway.ICMPv6PacketTooBig {
			e.MTU = ee.Info
		}
	case unix.SO_EE_ORIGIN_LOCAL:
		if syscall.Errno(ee.Errno) != unix.EMSGSIZE {
			return gateway.ICMPError{}, false
		}
		e.V6, e.Local, e.MTU = dest.Addr().Is6(), true, ee.Info
		if e.V6 {
			e.Type, e.Code, e.Reporter = gateway.ICMPv6PacketTooBig, 0, a.src6
		} else {
			e.Type, e.Code, e.Reporter = gateway.ICMPv4DestUnreachable, icmpFragNeeded, a.src4
			if last := unpackAddrPort4(a.io.lastDF4.Load()); dest.Port() == 0 && last.Addr() == dest.Addr() {
				e.Dest = last
			}
		}
	default:
		return gateway.ICMPError{}, false
	}
	return e, true
}

// icmpFragNeeded is the ICMPv4 destination-unreachable code "fragmentation
// needed and DF set".
const icmpFragNeeded = 4

// offender returns the address of a sockaddr_in or sockaddr_in6 that
// follows a sock_extended_err; invalid for AF_UNSPEC (local errors).
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		}
	}
	return netip.Addr{}
}

// nextCmsg returns the first control message in b and what follows it; data
// is nil when there is none.
func nextCmsg(b []byte) (level, typ int32, data, rest []byte) {
	if len(b) < cmsgHdrLen {
		return 0, 0, nil, nil
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	l := int(h.Len)
	if l < cmsgHdrLen || l > len(b) {
		return 0, 0, nil, nil
	}
	next := min(len(b), (l+int(unsafe.Sizeof(uintptr(0)))-1)&^(int(unsafe.Sizeof(uintptr(0)))-1))
	return h.Level, h.Type, b[cmsgHdrLen:l], b[next:]
}

// putCmsgInt writes a control message carrying one int at the start of b and
// returns its space.
func putCmsgInt(b []byte, level, typ int32, v int) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(4))
	binary.NativeEndian.PutUint32(b[cmsgHdrLen:], uint32(int32(v)))
	return unix.CmsgSpace(4)
}

// sendLocked sends one datagram to dst with the per-datagram wishes of meta
// as control messages: TTL (IP_TTL / IPV6_HOPLIMIT) and TOS (IP_TOS /
// IPV6_TCLASS); DF is IPV6_DONTFRAG for IPv6 and, for IPv4, the socket's
// IP_MTU_DISCOVER switched to IP_PMTUDISC_DO and back only when the datagram
// needs another mode than the one set. It never waits for the socket: a full
// send buffer drops the datagram. A socket error left by an earlier ICMP
// error (sendmsg reports it once instead of sending) is retried: once, or a
// few times for "connection refused", which only ever comes from ICMP.
// Called with wmu held.
func (a *association) sendLocked(b []byte, dst netip.AddrPort, meta gateway.DatagramMeta) error {
	s := &a.io
	v4 := dst.Addr().Is4()
	s.wmsg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.wname)), Iov: &s.wiov}
	s.wmsg.Namelen = s.putName(dst, a.fam == fam4)
	s.wiov.Base = nil
	if len(b) > 0 {
		s.wiov.Base = &b[0]
	}
	s.wiov.SetLen(len(b))
	s.wmsg.SetIovlen(1)

	oob := unsafe.Slice((*byte)(unsafe.Pointer(&s.woob[0])), len(s.woob)*8)
	var n int
	n, s.wpmtu = s.control(oob, v4, meta)
	if v4 && s.wpmtu == unix.IP_PMTUDISC_DO {
		s.lastDF4.Store(packAddrPort4(dst))
	}
	if n > 0 {
		s.wmsg.Control = &oob[0]
		s.wmsg.SetControllen(n)
	}
	defer func() { s.wiov.Base = nil }()

	for attempt := 0; ; attempt++ {
		if err := a.rc.Write(s.writeFn); err != nil {
			if a.closed.Load() || errors.Is(err, net.ErrClosed) {
				return closedErr("send")
			}
			return gateway.NewError(gateway.ReasonGeneral, "direct: send", err)
		}
		errno := s.werr
		switch errno {
		case 0:
			return nil
		case unix.EAGAIN, unix.ENOBUFS:
			return sendErr(dst, errno)
		case unix.EINVAL, unix.EAFNOSUPPORT, unix.EDESTADDRREQ, unix.ENOTCONN:
			return sendErr(dst, errno) // about this datagram itself
		}
		// An ICMP error queued, or an error an earlier ICMP error left
		// pending, which this send consumed: the reader should look at
		// the queue.
		a.kickReader()
		retry := attempt == 0
		switch errno {
		case unix.ECONNREFUSED:
			// Only ever a pending error (port unreachable): retry
			// while a burst of them keeps arriving.
			retry = attempt < 4
		case unix.EMSGSIZE:
			// Too big for the known path MTU (the kernel queued a
			// local error, and would queue another on a retry), or
			// a pending error from an ICMP "too big" about an
			// earlier datagram. Only the second can happen to a
			// datagram no path MTU is too small for.
			retry = retry && len(b) <= minPayload(v4)
		}
		if !retry {
			return sendErr(dst, errno)
		}
	}
}

// control writes the per-datagram wishes of meta to oob as control
// messages, and returns their length and the IP_MTU_DISCOVER mode the
// datagram needs (for IPv6, the socket's). TTL is IP_TTL / IPV6_HOPLIMIT,
// TOS is IP_TOS / IPV6_TCLASS; DF is IPV6_DONTFRAG for IPv6 and, for IPv4,
// IP_PMTUDISC_DO as the mode.
func (s *sockIO) control(oob []byte, v4 bool, meta gateway.DatagramMeta) (n, pmtu int) {
	level, ttlOpt, tosOpt := int32(unix.IPPROTO_IPV6), int32(unix.IPV6_HOPLIMIT), int32(unix.IPV6_TCLASS)
	if v4 {
		level, ttlOpt, tosOpt = unix.IPPROTO_IP, unix.IP_TTL, unix.IP_TOS
	}
	if meta.TTL != 0 {
		n += putCmsgInt(oob[n:], level, ttlOpt, int(meta.TTL))
	}
	if meta.HasTOS {
		n += putCmsgInt(oob[n:], level, tosOpt, int(meta.TOS))
	}
	pmtu = s.curPMTU
	switch {
	case v4 && meta.DF:
		pmtu = unix.IP_PMTUDISC_DO
	case v4:
		pmtu = s.st.pmtu4
	case meta.DF && !s.st.df6:
		n += putCmsgInt(oob[n:], unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
	}
	return n, pmtu
}

// WriteToLater is WriteTo that may hold b until Flush (gateway.BatchWriter),
// to send the datagrams of a batch with one sendmmsg(2), each with its own
// control messages (TTL, TOS, IPv6 DF). An IPv4 datagram that needs the
// socket's DF mode switched is sent at once, after what waits.
func (a *association) WriteToLater(b []byte, dst gateway.Addr, meta gateway.DatagramMeta) error {
	return a.write(b, dst, meta, true)
}

// holdLocked holds b for Flush, or sends it at once (see WriteToLater).
// Called with wmu held.
func (a *association) holdLocked(b []byte, ap netip.AddrPort, meta gateway.DatagramMeta) error {
	s := &a.io
	var ctl [gateway.SendCtlSize]byte
	v4 := ap.Addr().Is4()
	n, pmtu := s.control(ctl[:], v4, meta)
	if v4 && pmtu != s.curPMTU {
		a.flushLocked()
		return a.sendLocked(b, ap, meta)
	}
	if v4 && pmtu == unix.IP_PMTUDISC_DO {
		s.lastDF4.Store(packAddrPort4(ap))
	}
	if s.later == nil {
		s.later = laterBatches.Get().(*gateway.SendEach)
	}
	s.laterMeta = append(s.laterMeta, meta)
	if s.later.Add(b, ap, ctl[:n]) {
		a.flushLocked()
	}
	return nil
}

// Flush sends what WriteToLater holds.
func (a *association) Flush() {
	a.wmu.Lock()
	a.flushLocked()
	a.wmu.Unlock()
}

// laterBatches are the batches WriteToLater fills.
var laterBatches = sync.Pool{New: func() any { return gateway.NewSendEach(16) }}

// flushLocked sends what WriteToLater holds: one sendmmsg(2) for all of it
// unless one is refused. A refused datagram is dropped as sendLocked would
// drop it; a pending socket error that the batch consumed (an ICMP error) is
// handled as sendLocked handles it: the reader is told to look at the error
// queue, and the datagram sent again. Called with wmu held.
func (a *association) flushLocked() {
	l := a.io.later
	if l == nil {
		return
	}
	metas := a.io.laterMeta
	defer func() {
		l.Reset()
		laterBatches.Put(l)
		a.io.later = nil
		a.io.laterMeta = metas[:0]
	}()
	v4 := a.fam == fam4
	for from := 0; from < l.Len(); {
		var n int
		var errno syscall.Errno
		if err := a.rc.Write(func(fd uintptr) bool { n, errno = l.Send(fd, from, v4); return true }); err != nil {
			return // closed: the datagrams are dropped
		}
		from += n
		if from >= l.Len() || errno == unix.EINTR {
			continue
		}
		if errno == 0 {
			// sendmmsg stopped early and dropped the error of the one
			// that failed: normally a pending socket error (an ICMP
			// error) it consumed. Tell the reader; the next call sends
			// that datagram again.
			a.kickReader()
			continue
		}
		switch errno {
		case unix.EAGAIN, unix.ENOBUFS, unix.EINVAL, unix.EAFNOSUPPORT, unix.EDESTADDRREQ, unix.ENOTCONN:
			// About this datagram, or no room: dropped.
		default:
			a.kickReader()
			b, dst := l.Msg(from)
			a.sendLocked(b, dst, metas[from])
		}
		from++
	}
}

func packAddrPort4(ap netip.AddrPort) uint64 {
	a := ap.Addr().As4()
	return uint64(a[0])<<40 | uint64(a[1])<<32 | uint64(a[2])<<24 | uint64(a[3])<<16 | uint64(ap.Port())
}

func unpackAddrPort4(v uint64) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16)}), uint16(v))
}

// minPayload is the largest UDP payload no path MTU the kernel accepts
// (net.ipv4.route.min_pmtu, 552 by default, and the IPv6 minimum of 1280)
// is too small for.
func minPayload(v4 bool) int {
	if v4 {
		return 552 - 20 - 8
	}
	return 1280 - 40 - 8
}

// sendOnce is the writer's RawConn.Write callback: one sendmsg(2) of the
// prepared message, after switching the IPv4 DF mode when needed. It never
// asks to wait.
func (s *sockIO) sendOnce(fd uintptr) bool {
	if s.wpmtu != s.curPMTU {
		if unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, s.wpmtu) == nil {
			s.curPMTU = s.wpmtu
		}
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&s.wmsg)), 0)
		if errno != unix.EINTR {
			s.werr = errno
			return true
		}
	}
}

// kickReader makes the reader look at the error queue: the hint, then an
// expired read deadline to wake a reader waiting in the poller (no event
// will: the socket error that would have failed its next recvmsg was
// consumed by a send). ReadFrom clears the deadline and reads on.
func (a *association) kickReader() {
	a.io.errHint.Store(true)
	a.pc.SetReadDeadline(aLongTimeAgo)
}

// putName writes dst as the message's destination: a sockaddr_in for an
// IPv4 socket, else a sockaddr_in6 (IPv4 as IPv4-mapped).
func (s *sockIO) putName(dst netip.AddrPort, v4sock bool) uint32 {
	port := [2]byte{byte(dst.Port() >> 8), byte(dst.Port())}
	if v4sock {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.wname))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().As4()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
		return unix.SizeofSockaddrInet4
	}
	s.wname = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
	*(*[2]byte)(unsafe.Pointer(&s.wname.Port)) = port
	return unix.SizeofSockaddrInet6
}

// sendErr is the error of a datagram the kernel refused; a full buffer is
// reported as a drop.
func sendErr(dst netip.AddrPort, errno syscall.Errno) error {
	err := error(&net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(dst),
		Err: os.NewSyscallError("sendmsg", errno)})
	if errno == unix.EAGAIN || errno == unix.ENOBUFS {
		err = fmt.Errorf("%w: %w", gateway.ErrDropped, err)
	}
	return gateway.NewError(gateway.Classify(errno), "direct: send", err)
}
