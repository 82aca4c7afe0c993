package socks5

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

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
	held *heldBatch // nil while nothing waits
}

var (
	_ gateway.PacketServer = (*sockAssociation)(nil)
	_ gateway.BatchWriter  = (*sockAssociation)(nil)
)

// heldBatch is the datagrams WriteToLater holds, SOCKS 5 headers in front,
// laid out one after another in arena.
type heldBatch struct {
	sb    *gateway.SendBatch
	arena []byte
}

// heldSize bounds what one held batch carries; a datagram larger than
// that is sent at once.
const (
	heldDatagrams = 16
	heldArena     = 32 << 10
)

var heldPool = sync.Pool{New: func() any {
	return &heldBatch{sb: gateway.NewSendBatch(heldDatagrams), arena: make([]byte, 0, heldArena)}
}}

// WriteToLater is WriteTo that may hold the datagram until Flush
// (gateway.BatchWriter): it is copied behind its SOCKS 5 header at once,
// so b is not kept. Names the backend resolves, and datagrams too large to
// hold, are sent as WriteTo sends them, after what waits.
func (a *sockAssociation) WriteToLater(b []byte, dst gateway.Addr, meta gateway.DatagramMeta) error {
	if a.closed.Load() {
		return net.ErrClosed
	}
	if dst.IsName() && a.b.local {
		a.Flush()
		return a.WriteTo(b, dst, meta)
	}
	if !dst.IsName() {
		ap, err := a.dests.Target(dst, b, gateway.DatagramMeta{})
		if err != nil {
			if gateway.ReasonOf(err) == gateway.ReasonNotAllowed {
				a.denied.Add(1)
			}
			return err
		}
		if !ap.IsValid() {
			return nil
		}
		dst = gateway.AddrFromAddrPort(ap)
	}
	h := s5.UDPHeader{Addr: dst}
	need := h.Len() + len(b)
	if need > heldArena {
		a.Flush()
		return a.send(b, dst)
	}
	a.hmu.Lock()
	defer a.hmu.Unlock()
	if a.held != nil && cap(a.held.arena)-len(a.held.arena) < need {
		a.flushLocked()
	}
	if a.held == nil {
		a.held = heldPool.Get().(*heldBatch)
	}
	hb := a.held
	start := len(hb.arena)
	w, err := h.Append(hb.arena)
	if err != nil {
		hb.arena = hb.arena[:start]
		return gateway.NewError(gateway.ReasonHostUnreachable, opSend, fmt.Errorf("%w: %w", gateway.ErrDropped, err))
	}
	w = append(w, b...)
	hb.arena = w
	if hb.sb.Add(w[start:len(w):len(w)]) {
		a.flushLocked()
	}
	return nil
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
	if n, err := hb.sb.Send(a.pc, a.relayAP, nil); err != nil && !a.closed.Load() {
		a.log.Debug("udp batch partly dropped", "sent", n, "held", hb.sb.Len(), "err", err)
	}
	hb.sb.Reset()
	hb.arena = hb.arena[:0]
	heldPool.Put(hb)
}

// ServePackets reads the relay's datagrams in batches (gateway.PacketServer)
// and hands each payload, moved to the front of its buffer, to fn; what
// ReadFrom drops is dropped here too. It returns net.ErrClosed once the
// association has ended.
func (a *sockAssociation) ServePackets(get func() [][]byte, put func(), fn func(i int, pkt gateway.Packet)) error {
	var bufs [][]byte
	lend := func() [][]byte { bufs = get(); return bufs }
	err := gateway.ServeUDP(context.Background(), a.pc, lend, put, 0, func(i int, b []byte, from netip.AddrPort, _ []byte) {
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
		fn(i, gateway.Packet{Kind: gateway.PacketData, N: copy(bufs[i], payload), From: h.Addr})
	})
	return a.readErr(err)
}

// Close drops what is held and ends the association.
func (a *sockAssociation) Close() error {
	a.hmu.Lock()
	if hb := a.held; hb != nil {
		a.held = nil
		hb.sb.Reset()
		hb.arena = hb.arena[:0]
		heldPool.Put(hb)
	}
	a.hmu.Unlock()
	return a.association.Close()
}
