//go:build linux

package gateway

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reading datagrams in batches, inside the poller's read callback.
//
// A plain ReadFrom loop makes one system call too many per wake-up: Go's
// poller forgets the socket's readiness at the start of every read, so each
// read that returns a datagram is followed by one that finds the queue empty
// before the goroutine can wait. ServeUDP and MsgBatch avoid it: recvmmsg(2)
// reads up to a batch of datagrams and stops at the first "would block", so
// a batch shorter than its capacity has drained the queue, and the reader
// waits at once, still inside the same RawConn.Read. The kernel signals a
// UDP socket when its queue turns non-empty (and on every error), so a
// drained queue that fills again always wakes the reader.

// mmsghdr is struct mmsghdr of recvmmsg(2); Go pads it as C does.
type mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
}

// MsgBatch holds the message headers, source addresses and control buffers
// of one recvmmsg(2) of up to its capacity datagrams. Not for concurrent use.
type MsgBatch struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	oob   []byte
	oobN  int
}

// NewMsgBatch makes headers for batches of up to n datagrams, each with
// oobSize bytes for control messages.
func NewMsgBatch(n, oobSize int) *MsgBatch {
	oobSize = (oobSize + 7) &^ 7
	return &MsgBatch{
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		oob:   make([]byte, max(n*oobSize, 8)),
		oobN:  oobSize,
	}
}

// Cap is the most datagrams one Recv reads.
func (m *MsgBatch) Cap() int { return len(m.hdrs) }

// Recv is one recvmmsg(2) on fd into bufs (at most Cap of them) with
// flags (MSG_DONTWAIT is added). It returns how many datagrams it read; a
// count below len(bufs) means the queue was empty (or an error is pending,
// which the kernel reports on the next read).
func (m *MsgBatch) Recv(fd uintptr, bufs [][]byte, flags int) (int, syscall.Errno) {
	k := min(len(bufs), len(m.hdrs))
	if k == 0 {
		return 0, unix.EINVAL
	}
	for i := 0; i < k; i++ {
		h := &m.hdrs[i]
		h.Hdr = unix.Msghdr{
			Name:    (*byte)(unsafe.Pointer(&m.names[i])),
			Namelen: unix.SizeofSockaddrInet6,
			Iov:     &m.iovs[i],
		}
		h.Hdr.SetIovlen(1)
		h.Len = 0
		if m.oobN > 0 {
			h.Hdr.Control = &m.oob[i*m.oobN]
			h.Hdr.SetControllen(m.oobN)
		}
		m.iovs[i].Base = nil
		if len(bufs[i]) > 0 {
			m.iovs[i].Base = &bufs[i][0]
		}
		m.iovs[i].SetLen(len(bufs[i]))
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(k), uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	for i := 0; i < k; i++ {
		m.iovs[i].Base = nil // keep no lent buffer alive
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// N is the length of datagram i of the last Recv (truncated to its buffer).
func (m *MsgBatch) N(i int) int { return int(m.hdrs[i].Len) }

// From is the source of datagram i of the last Recv.
func (m *MsgBatch) From(i int) netip.AddrPort { return SockaddrAddrPort(&m.names[i]) }

// OOB is the control messages of datagram i of the last Recv.
func (m *MsgBatch) OOB(i int) []byte {
	if m.oobN == 0 {
		return nil
	}
	l := min(int(m.hdrs[i].Hdr.Controllen), m.oobN)
	return m.oob[i*m.oobN : i*m.oobN+l]
}

// SockaddrAddrPort reads a sockaddr_in or sockaddr_in6 (IPv4-mapped
// addresses unmapped, no zone); the zero AddrPort for other families.
func SockaddrAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := func(p *uint16) uint16 {
		b := (*[2]byte)(unsafe.Pointer(p))
		return uint16(b[0])<<8 | uint16(b[1])
	}
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port(&sa.Port))
	}
	return netip.AddrPort{}
}

// ServeUDP reads c's datagrams in batches into buffers from get, and calls
// fn for each with the index of its buffer, the part of it the datagram
// filled, its source and its control messages (up to oobSize bytes), until
// reading fails: c closed (net.ErrClosed), its read deadline expired, or ctx
// done. get lends the buffers while the socket is readable; put takes them
// back before the reader waits. Every call runs inside one read of the
// poller (see MsgBatch): fn must not wait for long, and must not close c.
func ServeUDP(ctx context.Context, c *net.UDPConn, get func() [][]byte, put func(), oobSize int, fn func(i int, b []byte, from netip.AddrPort, oob []byte)) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var m *MsgBatch
	var rerr error
	read := func(fd uintptr) bool {
		for {
			if rerr = ctx.Err(); rerr != nil {
				return true
			}
			bufs := get()
			if m == nil || m.Cap() < len(bufs) {
				m = NewMsgBatch(len(bufs), oobSize)
			}
			n, errno := m.Recv(fd, bufs, 0)
			for i := 0; i < n; i++ {
				fn(i, bufs[i][:min(m.N(i), len(bufs[i]))], m.From(i), m.OOB(i))
			}
			put()
			switch errno {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			default:
				rerr = os.NewSyscallError("recvmmsg", errno)
				return true
			}
			if n < len(bufs) {
				return false // drained: wait for the next datagram
			}
		}
	}
	if err := rc.Read(read); err != nil {
		return err
	}
	return rerr
}

// SendBatch gathers datagrams to one destination, with the same control
// messages, and sends them with one sendmmsg(2). Not for concurrent use.
type SendBatch struct {
	sendQueue
	hdrs []mmsghdr
	iovs []unix.Iovec
	name unix.RawSockaddrInet6
}

// NewSendBatch makes a batch of up to n datagrams.
func NewSendBatch(n int) *SendBatch {
	return &SendBatch{sendQueue: newSendQueue(n), hdrs: make([]mmsghdr, n), iovs: make([]unix.Iovec, n)}
}

// Send sends the waiting datagrams to dst (an IPv4 dst of an IPv6 socket
// IPv4-mapped) with control messages oob, waiting for
// room in the send buffer like a UDPConn write. It returns how many it sent:
// on an error, datagrams from that one on were not sent, and stay in the
// batch until Reset.
func (s *SendBatch) Send(c *net.UDPConn, dst netip.AddrPort, oob []byte) (int, error) {
	k := len(s.msgs)
	if k == 0 {
		return 0, nil
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil && dst.Addr().Is4() {
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	}
	namelen := putSockaddr(&s.name, dst)
	for i, b := range s.msgs {
		h := &s.hdrs[i]
		h.Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.name)), Namelen: namelen, Iov: &s.iovs[i]}
		h.Hdr.SetIovlen(1)
		if len(oob) > 0 {
			h.Hdr.Control = &oob[0]
			h.Hdr.SetControllen(len(oob))
		}
		s.iovs[i].Base = nil
		if len(b) > 0 {
			s.iovs[i].Base = &b[0]
		}
		s.iovs[i].SetLen(len(b))
	}
	sent := 0
	var errno syscall.Errno
	werr := rc.Write(func(fd uintptr) bool {
		for sent < k {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[sent])), uintptr(k-sent), 0, 0, 0)
			switch e {
			case 0:
				sent += int(n)
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				errno = e
				return true
			}
		}
		return true
	})
	for i := range k {
		s.iovs[i].Base = nil
		s.hdrs[i].Hdr.Control = nil
	}
	if werr != nil {
		return sent, werr
	}
	if errno != 0 {
		return sent, &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(dst), Err: os.NewSyscallError("sendmmsg", errno)}
	}
	return sent, nil
}

// putSockaddr writes dst to sa: a sockaddr_in for IPv4, else a
// sockaddr_in6; it returns the length.
func putSockaddr(sa *unix.RawSockaddrInet6, dst netip.AddrPort) uint32 {
	port := [2]byte{byte(dst.Port() >> 8), byte(dst.Port())}
	if dst.Addr().Is4() {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().As4()}
		*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = port
		return unix.SizeofSockaddrInet4
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
	*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
	return unix.SizeofSockaddrInet6
}

// SendEach gathers datagrams, each to its own destination and with its own
// control messages (TTL, TOS, ...), to send them
// with one sendmmsg(2) that never waits for room. Not for concurrent use.
type SendEach struct {
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	msgs  [][]byte
	dsts  []netip.AddrPort
	// ctls holds each datagram's control messages, ctlN their lengths.
	ctls []sendCtl
	ctlN []uint8
}

// sendCtl is room for the control messages of one datagram: up to four
// int-valued ones (TTL, TOS, IPV6_DONTFRAG), 8-byte aligned.
type sendCtl [SendCtlSize / 8]uint64

// SendCtlSize is the most bytes of control messages SendEach keeps for one
// datagram.
const SendCtlSize = 64

// NewSendEach makes a batch of up to n datagrams.
func NewSendEach(n int) *SendEach {
	return &SendEach{
		hdrs:  make([]mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		msgs:  make([][]byte, 0, n),
		dsts:  make([]netip.AddrPort, 0, n),
		ctls:  make([]sendCtl, n),
		ctlN:  make([]uint8, 0, n),
	}
}

// Add adds b (kept until Reset) to dst, with control messages ctl (copied;
// at most SendCtlSize bytes, else Add panics), and reports whether the
// batch is now full.
func (s *SendEach) Add(b []byte, dst netip.AddrPort, ctl []byte) (full bool) {
	i := len(s.msgs)
	if len(ctl) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&s.ctls[i][0])), SendCtlSize), ctl)
	}
	s.msgs = append(s.msgs, b)
	s.dsts = append(s.dsts, dst)
	s.ctlN = append(s.ctlN, uint8(len(ctl)))
	return len(s.msgs) == cap(s.msgs)
}

// Len is how many datagrams wait.
func (s *SendEach) Len() int { return len(s.msgs) }

// Msg is waiting datagram i and its destination.
func (s *SendEach) Msg(i int) ([]byte, netip.AddrPort) { return s.msgs[i], s.dsts[i] }

// Reset forgets the waiting datagrams.
func (s *SendEach) Reset() {
	clear(s.msgs)
	s.msgs, s.dsts, s.ctlN = s.msgs[:0], s.dsts[:0], s.ctlN[:0]
}

// Send sends the waiting datagrams from datagram from on, with one
// sendmmsg(2) on fd that does not wait: fd is an AF_INET socket when
// v4sock, else AF_INET6 (IPv4 destinations are sent IPv4-mapped). It
// returns how many went out; when that is not all of them, errno is why the
// next one did not (EAGAIN: no room in the send buffer).
func (s *SendEach) Send(fd uintptr, from int, v4sock bool) (int, syscall.Errno) {
	k := len(s.msgs) - from
	if k <= 0 {
		return 0, 0
	}
	for i := from; i < len(s.msgs); i++ {
		dst := s.dsts[i]
		if !v4sock && dst.Addr().Is4() {
			dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
		}
		h := &s.hdrs[i]
		h.Hdr = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&s.names[i])), Namelen: putSockaddr(&s.names[i], dst), Iov: &s.iovs[i]}
		h.Hdr.SetIovlen(1)
		if n := s.ctlN[i]; n > 0 {
			h.Hdr.Control = (*byte)(unsafe.Pointer(&s.ctls[i][0]))
			h.Hdr.SetControllen(int(n))
		}
		b := s.msgs[i]
		s.iovs[i].Base = nil
		if len(b) > 0 {
			s.iovs[i].Base = &b[0]
		}
		s.iovs[i].SetLen(len(b))
	}
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[from])), uintptr(k), unix.MSG_DONTWAIT, 0, 0)
	for i := from; i < len(s.msgs); i++ {
		s.iovs[i].Base = nil
	}
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}
