package socks5

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// udpCounters are the per-frontend datagram series, resolved once per
// association so the hot path does no label lookups.
type udpCounters struct {
	up, down, foreign, frag, bad, denied, unknown, icmp prometheus.Counter
}

func (f *Frontend) udpCounters() *udpCounters {
	m := f.rt.Metrics
	if m == nil {
		return nil
	}
	return &udpCounters{
		up:      m.Datagrams.WithLabelValues(f.name, "up"),
		down:    m.Datagrams.WithLabelValues(f.name, "down"),
		foreign: m.DatagramsDropped.WithLabelValues(f.name, "foreign_source"),
		frag:    m.DatagramsDropped.WithLabelValues(f.name, "fragment"),
		bad:     m.DatagramsDropped.WithLabelValues(f.name, "malformed"),
		denied:  m.DatagramsDropped.WithLabelValues(f.name, "denied"),
		unknown: m.DatagramsDropped.WithLabelValues(f.name, "client_unknown"),
		icmp:    m.ICMPErrors.WithLabelValues(f.name, "not_expressible"),
	}
}

func inc(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

// udpAssoc is one UDP ASSOCIATE (RFC 1928 §7): a relay socket for the
// client, a backend association towards remote hosts, and the TCP control
// connection whose end ends both.
type udpAssoc struct {
	s        *session
	pc       *net.UDPConn
	assoc    gateway.Association
	clientIP netip.Addr
	// clientPort is the client's UDP source port once known (0 before).
	clientPort atomic.Uint32
	last       atomic.Int64
	c          *udpCounters

	// The association's life after the handshake: the control reader
	// (runControl, which parks while the control connection is idle) and
	// the two relay loops, each of which sends on ended when it stops.
	ctx      context.Context
	dest     string
	route    *gateway.Route
	release  func()
	finish   func() // runs the connection's Tail
	stopCtx  func() bool
	park     *gateway.ConnPark // nil: the control reader never parks
	upLoop   *gateway.PacketLoop
	downLoop *gateway.PacketLoop
	ended    chan struct{}
	st       gateway.RelayStats
}

func (s *session) udpAssociate(ctx context.Context, want gateway.Addr) {
	f := s.f
	dest := want.String()
	local, _ := netip.ParseAddrPort(s.conn.LocalAddr().String())
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
	if err != nil {
		s.reply(s5.RepGeneralFailure, gateway.Addr{})
		s.log(gateway.CmdUDP, dest, nil, gateway.RelayStats{}, err)
		return
	}
	relayAP := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	f.rt.Own.Add(relayAP)
	var assoc gateway.Association
	release := func() {
		if assoc != nil {
			assoc.Close()
		}
		pc.Close()
		f.rt.Own.Remove(relayAP)
	}
	handed := false
	defer func() {
		if !handed {
			release()
		}
	}()
	assoc, route, err := f.rt.Associate(ctx, gateway.CmdUDP, &gateway.AssocRequest{Principal: s.p})
	if err != nil {
		s.reply(s5.ReplyForError(err), gateway.Addr{})
		s.log(gateway.CmdUDP, dest, route, gateway.RelayStats{}, err)
		return
	}
	adv := f.advertise
	if !adv.IsValid() {
		adv = relayAP.Addr()
	}
	if err := s.reply(s5.RepSucceeded, gateway.Addr{IP: adv, Port: relayAP.Port()}); err != nil {
		s.log(gateway.CmdUDP, dest, route, gateway.RelayStats{}, err)
		return
	}
	s.conn.SetDeadline(time.Time{})
	u := &udpAssoc{s: s, pc: pc, assoc: assoc, clientIP: s.client.Addr().Unmap(), c: f.udpCounters()}
	// A client that names its source port is held to it from the start.
	if !want.IsName() && want.Port != 0 {
		u.clientPort.Store(uint32(want.Port))
	}
	u.last.Store(time.Now().UnixNano())
	// The association lives on in goroutines of its own, and this one
	// (with the handshake's frames under it) goes back to the workers. Its
	// readers park while idle: an idle association holds no goroutine.
	handed = true
	u.ctx, u.dest, u.route, u.release = ctx, dest, route, release
	u.park = gateway.NewConnPark(s.conn, u.runControl)
	u.finish = gateway.Handoff(ctx)
	u.stopCtx = context.AfterFunc(ctx, func() {
		s.conn.SetReadDeadline(time.Unix(1, 0))
		u.park.Wake()
	})
	u.ended = make(chan struct{}, 2)
	u.upLoop = u.clientToRemote(func(b int64) { u.st.Up = b; u.ended <- struct{}{} })
	u.downLoop = u.remoteToClient(func(b int64) { u.st.Down = b; u.ended <- struct{}{} })
	go u.runControl()
}

// runControl runs the control reader until the association ends (then it
// closes the relay sockets, waits for both relay loops, logs and runs the
// connection's Tail) or until the reader parks.
func (u *udpAssoc) runControl() {
	parked, err := u.control()
	if parked {
		return
	}
	u.stopCtx()
	u.pc.Close()
	u.assoc.Close()
	u.upLoop.Wake()
	u.downLoop.Wake()
	<-u.ended
	<-u.ended
	u.s.log(gateway.CmdUDP, u.dest, u.route, u.st, err)
	u.release()
	u.finish()
}

// control waits for the TCP control connection to end (the association dies
// with it; a relay loop that fails closes it), ctx to end, or the idle
// timeout. After ParkAfter without bytes on the connection it parks it
// (parked true): the park set runs runControl again when the connection
// is readable or closed, when the idle timeout is due, or on a cancel.
func (u *udpAssoc) control() (parked bool, err error) {
	c := u.s.conn
	ctx := u.ctx
	idle := u.s.f.limits.AssocIdleTimeout
	idleAt := func() time.Time {
		if idle <= 0 {
			return time.Time{}
		}
		return time.Unix(0, u.last.Load()).Add(idle)
	}
	gone := func() bool { return ctx.Err() != nil }
	u.park.Touch(time.Now())
	var buf [512]byte
	for {
		c.SetReadDeadline(u.park.Deadline(idleAt()))
		// A cancel sets an expired deadline; one that came before the line
		// above was overwritten by it.
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		_, err := c.Read(buf[:])
		if err == nil {
			u.park.Touch(time.Now())
			continue // RFC 1928 defines nothing more on the control connection
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if idle > 0 && time.Since(time.Unix(0, u.last.Load())) >= idle {
			return false, gateway.ErrIdle
		}
		if u.park.ParkIdle(idleAt(), gone) {
			return true, nil
		}
	}
}

// clientToRemote starts relaying the client's datagrams: only from the
// client's IP (and, once known, port), whole datagrams only (FRAG = 0), in
// a gateway.PacketLoop that parks while the client sends nothing; done
// gets the payload bytes relayed when reading ends.
func (u *udpAssoc) clientToRemote(done func(bytes int64)) *gateway.PacketLoop {
	var bytes int64
	// Buffers come from a pool only while the socket is readable.
	lend := clientBufs.BatchLender()
	// The datagrams of one read batch wait in the backend until the batch
	// is done, to go out with one system call.
	bw := gateway.BatchWriterOf(u.assoc)
	var held gateway.HeldWrites
	put := func() {
		held.Flush()
		lend.Put()
	}
	relay := func(_ int, b []byte, from netip.AddrPort, _ []byte) {
		if from.Addr().Unmap() != u.clientIP {
			inc(u.c.foreign)
			return
		}
		if p := u.clientPort.Load(); p != 0 && uint32(from.Port()) != p {
			inc(u.c.foreign)
			return
		} else if p == 0 {
			u.clientPort.CompareAndSwap(0, uint32(from.Port()))
			if uint32(from.Port()) != u.clientPort.Load() {
				inc(u.c.foreign)
				return
			}
		}
		h, payload, perr := s5.ParseUDPHeader(b)
		if perr != nil {
			inc(u.c.bad)
			return
		}
		if h.Frag != 0 {
			inc(u.c.frag)
			return
		}
		u.last.Store(time.Now().UnixNano())
		var err error
		if bw != nil {
			err = held.WriteToLater(bw, payload, h.Addr, gateway.DatagramMeta{})
		} else {
			err = u.assoc.WriteTo(payload, h.Addr, gateway.DatagramMeta{})
		}
		if err != nil {
			if gateway.ReasonOf(err) == gateway.ReasonNotAllowed {
				inc(u.c.denied)
			}
			return
		}
		inc(u.c.up)
		bytes += int64(len(payload))
	}
	stop := func(err error) bool { return !isTransient(err) }
	return gateway.StartUDPLoop(u.pc, lend.Get, put, 0, relay, stop, func() {
		lend.Put()
		done(bytes)
	})
}

// remoteToClient starts relaying datagrams from remote hosts to the client
// with a SOCKS 5 UDP header, those of one read batch with one sendmmsg, in
// a gateway.PacketLoop (which gives its goroutine up while the association
// is idle); done gets the payload bytes relayed when reading ends. ICMP
// errors cannot be expressed in SOCKS 5: they are counted and logged, and
// the association goes on.
func (u *udpAssoc) remoteToClient(done func(bytes int64)) *gateway.PacketLoop {
	var bytes int64
	// The 64 KiB buffers come from a pool only while datagrams are being
	// read and relayed: an idle association holds none.
	sb := gateway.NewSendBatch(gateway.ReadBatch)
	var sizes [gateway.ReadBatch]int
	var to netip.AddrPort
	flush := func() {
		if sb.Len() == 0 {
			return
		}
		n, err := sb.Send(u.pc, to, nil)
		sent := n
		if err != nil {
			if !isTransient(err) {
				u.s.conn.Close() // the relay socket is gone: end the association
				n = sb.Len()
			}
			// The rest one at a time: only the refused one is lost.
			for i := n + 1; i < sb.Len(); i++ {
				if _, err := u.pc.WriteToUDPAddrPort(sb.Msg(i), to); err == nil {
					inc(u.c.down)
					bytes += int64(sizes[i])
				}
			}
		}
		for i := range sent {
			inc(u.c.down)
			bytes += int64(sizes[i])
		}
		sb.Reset()
	}
	relay := func(buf []byte, pkt gateway.Packet) {
		if pkt.Kind == gateway.PacketICMP {
			inc(u.c.icmp)
			u.s.f.log.Debug("icmp error not expressible in socks5", "client", u.s.client, "type", pkt.ICMP.Type, "code", pkt.ICMP.Code, "dest", pkt.ICMP.Dest)
			return
		}
		port := u.clientPort.Load()
		if port == 0 {
			inc(u.c.unknown)
			return
		}
		if buf == nil {
			return // no buffer: not a datagram the backend read
		}
		h := s5.UDPHeader{Addr: pkt.From}
		start := s5.MaxUDPHeaderLen - h.Len()
		if _, err := h.Append(buf[start:start]); err != nil {
			inc(u.c.bad)
			return
		}
		u.last.Store(time.Now().UnixNano())
		to = netip.AddrPortFrom(u.clientIP, uint16(port))
		sizes[sb.Len()] = pkt.N
		if sb.Add(buf[start : s5.MaxUDPHeaderLen+pkt.N]) {
			flush()
		}
	}
	stop := func(err error) bool {
		if errors.Is(err, net.ErrClosed) || !isTransient(err) {
			u.s.conn.Close()
			return true
		}
		return false
	}
	return gateway.StartPacketLoop(u.assoc, remoteBufs, relay, flush, stop, func() { done(bytes) })
}

// clientBufs hold datagrams from SOCKS 5 clients.
var clientBufs = gateway.NewBufPool(0, 65536)

// remoteBufs hold one datagram from a backend with room for the SOCKS 5
// UDP header in front.
var remoteBufs = gateway.NewBufPool(s5.MaxUDPHeaderLen, 65536)

// isTransient reports errors a UDP socket survives (ICMP-induced
// ECONNREFUSED and friends, buffer pressure).
func isTransient(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && (oe.Timeout() || errors.Is(oe.Err, os.ErrDeadlineExceeded)) {
		return false
	}
	return !errors.Is(err, context.Canceled)
}
