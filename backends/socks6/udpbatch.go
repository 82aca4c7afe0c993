package socks6

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Batched datagram I/O over a plain UDP data channel: WriteToLater and
// Flush send what a caller's read batch produced with one sendmmsg(2), and
// ServePackets reads with recvmmsg(2) (see gateway.ServeUDP). Over the
// control connection or DTLS, and before the first datagram mapped the
// association, they fall back to one datagram at a time.

// WriteToLater is WriteTo that may hold the datagram until Flush, to send
// several with one system call; b is copied at once, not kept. Over the
// control connection or DTLS, for the datagram that maps the association,
// and for a datagram too large to hold, it is WriteTo (after what waits).
func (u *UDPAssoc) WriteToLater(b []byte, dst gateway.Addr) error {
	pc, ok := u.data.(*net.UDPConn)
	h, err := s6.DatagramHeaderLen(dst)
	if err != nil || !ok {
		return u.WriteTo(b, dst)
	}
	need := h + len(b)
	u.wmu.Lock()
	if u.closed || !u.started || u.Transport() != UDPOverUDP || need > gateway.PackedBytes {
		u.flushLocked(pc)
		u.wmu.Unlock()
		return u.WriteTo(b, dst)
	}
	w := u.allocLocked(pc, need)
	copy(w[h:], b)
	if _, err := s6.PutDatagramHeader(w, u.ID, dst, len(b)); err != nil {
		u.wmu.Unlock()
		return fail(gateway.ReasonGeneral, "send", err)
	}
	if u.held.Add(w) {
		u.flushLocked(pc)
	}
	u.wmu.Unlock()
	return nil
}

// allocLocked returns n bytes of the held batch for the next message,
// sending the batch first when it has no room; called with wmu held.
func (u *UDPAssoc) allocLocked(pc *net.UDPConn, n int) []byte {
	if u.held != nil {
		if w := u.held.Alloc(n); w != nil {
			return w
		}
		u.flushLocked(pc)
	}
	u.held = gateway.GetPackedBatch()
	return u.held.Alloc(n)
}

// Flush sends what WriteToLater holds. Datagrams the kernel refuses are
// dropped (and counted as such).
func (u *UDPAssoc) Flush() {
	pc, ok := u.data.(*net.UDPConn)
	if !ok {
		return
	}
	u.wmu.Lock()
	u.flushLocked(pc)
	u.wmu.Unlock()
}

// flushLocked sends the held batch; called with wmu held.
func (u *UDPAssoc) flushLocked(pc *net.UDPConn) {
	hb := u.held
	if hb == nil {
		return
	}
	u.held = nil
	k := hb.Len()
	n := 0
	var err error
	if !u.closed {
		n, err = hb.Send(pc, gateway.AddrPortOf(pc.RemoteAddr()), nil)
	}
	u.sent.Add(uint64(n))
	if n < k {
		u.droppedOut.Add(uint64(k - n))
		if errors.Is(err, syscall.ECONNREFUSED) && !u.isConfirmed() {
			u.signalRefused()
		}
	}
	hb.Release()
}

// ServePackets reads datagrams and Error messages until the association
// ends (gateway.PacketServer): over a plain UDP data channel in batches,
// each handed to fn inside the read; otherwise one at a time, copied into
// the first buffer of a batch from get. i is the index of a datagram's
// buffer, -1 for an Error message. It returns what ReadFrom would.
func (u *UDPAssoc) ServePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet)) error {
	return u.servePackets(get, put, fn, 0)
}

// ServePacketsIdle is ServePackets that also returns gateway.ErrReaderIdle
// once nothing arrived for about idle on a plain UDP data channel
// (gateway.IdlePacketServer), so that an idle association's reader can
// wait in the park set. Over the control connection or DTLS it never does.
func (u *UDPAssoc) ServePacketsIdle(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	return u.servePackets(get, put, fn, idle)
}

// ReadConn is the plain UDP data channel's socket, which ServePacketsIdle
// waits on; nil over the control connection or DTLS.
func (u *UDPAssoc) ReadConn() syscall.RawConn {
	pc, ok := u.data.(*net.UDPConn)
	if !ok || u.Transport() != UDPOverUDP {
		return nil
	}
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func (u *UDPAssoc) servePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	for {
		if pc, ok := u.data.(*net.UDPConn); ok && u.Transport() == UDPOverUDP {
			err := u.serveUDP(pc, get, put, fn, idle)
			if errors.Is(err, gateway.ErrReaderIdle) {
				switch {
				case u.isDone():
					return u.closedErr("read")
				case u.Transport() == UDPOverUDP:
					return err
				}
				continue
			}
			if err = u.dataReadErr(err); err != nil {
				return err
			}
			continue
		}
		bp := readPool.Get().(*[]byte)
		pkt, err := u.ReadFrom(*bp)
		if err != nil {
			readPool.Put(bp)
			return err
		}
		i := -1
		bufs := get()
		if pkt.Kind == gateway.PacketData {
			i, pkt.N = 0, copy(bufs[0], (*bp)[:pkt.N])
		}
		readPool.Put(bp)
		fn(i, pkt)
		put()
	}
}

// serveUDP is ServePackets on the UDP data channel, until a read fails (or,
// with idle > 0, until it was idle).
func (u *UDPAssoc) serveUDP(pc *net.UDPConn, get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	read := func(i int, b []byte, _ netip.AddrPort, _ []byte) {
		m, _, err := s6.ParseUDPMessage(b)
		if err != nil || m.Assoc != u.ID {
			u.droppedIn.Add(1)
			return
		}
		var pkt gateway.Packet
		switch m.Type {
		case s6.UDPDatagram:
			// b starts at the front of buffer i: the payload moves there.
			pkt = gateway.Packet{Kind: gateway.PacketData, N: copy(b, m.Payload), From: m.Addr}
		case s6.UDPError:
			e, known := s6.ICMPFor(&m)
			if !known {
				u.droppedIn.Add(1)
				return
			}
			i, pkt = -1, gateway.Packet{Kind: gateway.PacketICMP, ICMP: e}
		default:
			u.droppedIn.Add(1)
			return
		}
		u.received.Add(1)
		fn(i, pkt)
	}
	return gateway.ServeUDPIdle(pc, get, put, 0, read, idle)
}
