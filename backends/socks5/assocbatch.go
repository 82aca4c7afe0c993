package socks5

import (
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// sockAssociation is an association with a UDP socket of its own (no via
// hop): it reads and sends datagrams in batches (gateway.PacketServer and
// gateway.BatchWriter), so a frontend's read batch reaches the relay with
// one sendmmsg(2) and the relay's datagrams come back with one
// recvmmsg(2) per batch.
type sockAssociation struct {
	*association

	hmu  sync.Mutex
	held *gateway.PackedBatch // nil while nothing waits
}

var (
	_ gateway.IdlePacketServer = (*sockAssociation)(nil)
	_ gateway.BatchWriter      = (*sockAssociation)(nil)
)

// WriteToLater is WriteTo that may hold the datagram until Flush
// (gateway.BatchWriter): it is copied behind its SOCKS 5 header at once,
// so b is not kept. A datagram too large to hold is sent at once, after
// what waits; one waiting for its name is sent when the name is resolved,
// as with WriteTo.
func (a *sockAssociation) WriteToLater(b []byte, dst gateway.Addr, _ gateway.DatagramMeta) error {
	dst, ok, err := a.target(b, dst)
	if !ok {
		return err
	}
	h := s5.UDPHeader{Addr: dst}
	need := h.Len() + len(b)
	if need > gateway.PackedBytes {
		a.Flush()
		return a.send(b, dst)
	}
	a.hmu.Lock()
	defer a.hmu.Unlock()
	w := a.allocLocked(need)
	if _, err := h.Append(w[:0]); err != nil {
		return gateway.NewError(gateway.ReasonHostUnreachable, opSend, fmt.Errorf("%w: %w", gateway.ErrDropped, err))
	}
	copy(w[h.Len():], b)
	if a.held.Add(w) {
		a.flushLocked()
	}
	return nil
}

// allocLocked returns n bytes of the held batch for the next datagram,
// sending the batch first when it has no room.
func (a *sockAssociation) allocLocked(n int) []byte {
	if a.held != nil {
		if w := a.held.Alloc(n); w != nil {
			return w
		}
		a.flushLocked()
	}
	a.held = gateway.GetPackedBatch()
	return a.held.Alloc(n)
}

// Flush sends what WriteToLater holds with one sendmmsg(2). A datagram the
// kernel refuses is dropped, with the ones after it in the batch.
func (a *sockAssociation) Flush() {
	a.hmu.Lock()
	a.flushLocked()
	a.hmu.Unlock()
}

func (a *sockAssociation) flushLocked() {
	hb := a.held
	if hb == nil {
		return
	}
	a.held = nil
	if n, err := hb.Send(a.pc, a.relayAP, nil); err != nil && !a.closed.Load() {
		a.log.Debug("udp batch partly dropped", "sent", n, "held", hb.Len(), "err", err)
	}
	hb.Release()
}

// ServePackets reads the relay's datagrams in batches (gateway.PacketServer)
// and hands each payload, moved to the front of its buffer, to fn; what
// ReadFrom drops is dropped here too. It returns net.ErrClosed once the
// association has ended.
func (a *sockAssociation) ServePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet)) error {
	return a.serve(get, put, fn, 0)
}

// ServePacketsIdle is ServePackets that also returns gateway.ErrReaderIdle
// once nothing arrived for about idle (gateway.IdlePacketServer), so that
// an idle association's reader can wait in the park set.
func (a *sockAssociation) ServePacketsIdle(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	return a.serve(get, put, fn, idle)
}

// ReadConn is the socket the association's reads wait on.
func (a *sockAssociation) ReadConn() syscall.RawConn {
	rc, err := a.pc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func (a *sockAssociation) serve(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet), idle time.Duration) error {
	read := func(i int, b []byte, from netip.AddrPort, _ []byte) {
		if unmapAP(from) != a.relayAP {
			a.foreign.Add(1)
			return
		}
		h, payload, err := s5.ParseUDPHeader(b)
		switch {
		case err != nil:
			a.malformed.Add(1)
			return
		case h.Frag != 0:
			a.frag.Add(1)
			return
		}
		// b starts at the front of buffer i: the payload moves there.
		fn(i, gateway.Packet{Kind: gateway.PacketData, N: copy(b, payload), From: h.Addr})
	}
	return a.readErr(gateway.ServeUDPIdle(a.pc, get, put, 0, read, idle))
}

// Close drops what is held and ends the association.
func (a *sockAssociation) Close() error {
	a.hmu.Lock()
	if a.held != nil {
		a.held.Release()
		a.held = nil
	}
	a.hmu.Unlock()
	return a.association.Close()
}
