package socks6

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// udpRelay holds the frontend's UDP associations by ID. It lives in the
// gateway's StateStore, so associations survive a reload and the relay
// endpoints of the new frontend find them.
type udpRelay struct {
	mu   sync.RWMutex
	byID map[s6.AssocID]*association
}

func newUDPRelay() *udpRelay { return &udpRelay{byID: map[s6.AssocID]*association{}} }

// add registers a with a fresh random ID.
func (r *udpRelay) add(a *association) error {
	for range 8 {
		if _, err := rand.Read(a.id[:]); err != nil {
			return err
		}
		r.mu.Lock()
		if _, taken := r.byID[a.id]; !taken {
			r.byID[a.id] = a
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
	}
	return errors.New("socks6: no free association id")
}

func (r *udpRelay) get(id s6.AssocID) *association {
	r.mu.RLock()
	a := r.byID[id]
	r.mu.RUnlock()
	return a
}

func (r *udpRelay) remove(a *association) {
	r.mu.Lock()
	if r.byID[a.id] == a {
		delete(r.byID, a.id)
	}
	r.mu.Unlock()
}

// channel is what an association's ID is mapped to (§8.5).
type channel uint32

const (
	chanNone channel = iota
	chanTCP
	chanUDP
	chanDTLS
)

// tcpQueueLen bounds the messages waiting to be written on a control
// connection; datagrams beyond it are dropped and counted (control
// messages are never dropped).
const tcpQueueLen = 256

// headRoom is the room kept before a payload for its Datagram header.
const headRoom = s6.MaxDatagramHeaderLen

// association is one UDP ASSOCIATE: the client's control connection, the
// mapped data channel, and the backend's association towards remote hosts.
type association struct {
	id    s6.AssocID
	f     *Frontend
	cn    *conn
	assoc gateway.Association
	// bw is assoc's batched sends, when it has them.
	bw       gateway.BatchWriter
	clientIP netip.Addr
	icmp     bool // the client opted in to Error messages
	ttl, tos int  // client–proxy leg, per datagram on UDP (-1 = default)
	c        *assocCounters

	mapped channel32
	// The mapping, written once before mapped is set.
	udpPeer  netip.AddrPort
	udpLocal netip.Addr
	udpEP    *udpEndpoint
	dtls     net.Conn
	mapMu    sync.Mutex

	// The control connection's send queue: messages wait in tcpQ for one
	// writer goroutine, started when the first one arrives, which writes
	// what waits (inflight of them at a time) and ends when the queue is
	// empty. An idle association holds neither queue nor writer.
	qmu      sync.Mutex
	tcpQ     []*[]byte
	inflight int
	writing  bool
	qclosed  bool
	writers  sync.WaitGroup

	last      atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
	// loop reads assoc (set once reading starts)
	loop atomic.Pointer[gateway.PacketLoop]
	// remote is done when loop has ended; down is what it relayed.
	remote sync.WaitGroup
	down   int64
	// ctl is the control connection reader's state.
	ctl controlState
}

type channel32 struct{ v atomic.Uint32 }

func (c *channel32) load() channel { return channel(c.v.Load()) }

type assocCounters struct {
	up, down, unknownClient, denied, queueFull, wrongChannel, foreign, malformed prometheus.Counter
	icmpReported, icmpNotOpted, icmpNotReported                                  prometheus.Counter
}

func (f *Frontend) assocCounters() *assocCounters {
	m := f.rt.Metrics
	if m == nil {
		return nil
	}
	d := func(r string) prometheus.Counter { return m.DatagramsDropped.WithLabelValues(f.name, r) }
	i := func(r string) prometheus.Counter { return m.ICMPErrors.WithLabelValues(f.name, r) }
	return &assocCounters{
		up: m.Datagrams.WithLabelValues(f.name, "up"), down: m.Datagrams.WithLabelValues(f.name, "down"),
		unknownClient: d("client_unknown"), denied: d("denied"), queueFull: d("queue_full"),
		wrongChannel: d("wrong_channel"), foreign: d("foreign_source"), malformed: d("malformed"),
		icmpReported: i("reported"), icmpNotOpted: i("not_opted_in"), icmpNotReported: i("not_reported"),
	}
}

func count(c *assocCounters, pick func(*assocCounters) prometheus.Counter) {
	if c != nil {
		pick(c).Inc()
	}
}

// relayCounters are the frontend-level drops that happen before an
// association is known.
func (f *Frontend) dropped(reason string) {
	if m := f.rt.Metrics; m != nil {
		m.DatagramsDropped.WithLabelValues(f.name, reason).Inc()
	}
}

// remoteBufs hold one datagram from a backend with room for the UDP message
// header in front.
var remoteBufs = gateway.NewBufPool(headRoom, s6.MaxUDPMessageLen)

var msgPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// udpAssociate serves UDP ASSOCIATE (§8): Operation Reply with the
// backend's remote-facing address, Association Initialization, then the
// first Datagram maps the ID to its channel (this TCP connection, a UDP
// 5-tuple or a DTLS connection) and is confirmed on TCP. The association
// lives as long as this connection.
func (cn *conn) udpAssociate(ctx context.Context) {
	f := cn.f
	legs := s6.SplitStack(&cn.req, f.dialect)
	a := &association{f: f, cn: cn, clientIP: cn.client.Addr(), ttl: -1, tos: -1, c: f.assocCounters(),
		done: make(chan struct{})}
	// Before anyone else can see a (close reads it).
	a.ctl.park = gateway.NewConnPark(cn.c, a.runControl)
	cn.udpClientLeg(&legs, a)
	b, route, err := f.rt.Associate(ctx, gateway.CmdUDP, &gateway.AssocRequest{Bind: cn.req.Addr, Options: legs.Remote, Principal: cn.p})
	if err != nil {
		cn.opReply(s6.ReplyCodeForError(err), gateway.Addr{}, nil)
		cn.log(gateway.CmdUDP, route, gateway.RelayStats{}, err)
		return
	}
	a.assoc = b
	a.bw = gateway.BatchWriterOf(b)
	legs.Remote = b.Options()
	a.icmp = legs.Remote.UDPError.Outcome == gateway.Applied && legs.Remote.UDPError.Value
	bound, known := b.RelayAddr()
	if !known {
		bound = gateway.Addr{}
	}
	if err := f.udp.add(a); err != nil {
		b.Close()
		cn.opReply(s6.ReplyGeneralFailure, gateway.Addr{}, nil)
		cn.log(gateway.CmdUDP, route, gateway.RelayStats{}, err)
		return
	}
	reply := appendOpReply(make([]byte, 0, 96), s6.ReplySuccess, bound, legs.Echo(f.dialect), f.dialect)
	reply = s6.AppendAssocInit(reply, a.id)
	cn.c.SetDeadline(time.Time{})
	if _, err := cn.c.Write(reply); err != nil {
		a.close()
		cn.log(gateway.CmdUDP, route, gateway.RelayStats{}, err)
		return
	}
	a.last.Store(time.Now().UnixNano())
	// The association lives on in goroutines of its own, and this one
	// (with the handshake's frames under it) goes back to the workers. The
	// control connection's reader parks while the connection is idle (see
	// control), and the backend's reader in its PacketLoop: an idle
	// association holds no goroutine.
	a.ctl.ctx, a.ctl.start, a.ctl.route, a.ctl.finish = ctx, time.Now(), route, gateway.Handoff(ctx)
	a.ctl.stop = context.AfterFunc(ctx, func() {
		cn.c.SetReadDeadline(time.Unix(1, 0))
		a.ctl.park.Wake()
	})
	a.remote.Add(1)
	a.fromRemote(func(down int64) { a.down = down; a.remote.Done() })
	go a.runControl()
}

// controlState is the control connection reader's state, kept across the
// goroutines it runs in (it ends while parked and resumes in a new one).
type controlState struct {
	ctx    context.Context
	start  time.Time
	route  *gateway.Route
	finish func() // runs the connection's Tail
	stop   func() bool
	park   *gateway.ConnPark // nil: the reader never parks; set first
	buf    []byte
	up     int64
}

// runControl runs the control reader until the association ends (then it
// tears the association down, logs it and runs the connection's Tail) or
// until the reader parks.
func (a *association) runControl() {
	up, parked, err := a.control()
	if parked {
		return
	}
	a.ctl.stop()
	a.close()
	a.remote.Wait()
	a.writers.Wait()
	a.cn.log(gateway.CmdUDP, a.ctl.route, gateway.RelayStats{Up: up, Down: a.down}, err)
	a.ctl.finish()
}

// udpClientLeg handles the client–proxy leg of a UDP association: TTL and
// TOS apply to the control connection and, per datagram, to what the shared
// relay socket sends this client; DF cannot be set per association on a
// shared socket and is declined.
func (cn *conn) udpClientLeg(legs *s6.Legs, a *association) {
	want := legs.Client
	if sc, ok := rawSocket(cn.c); ok {
		gateway.ApplyConnIPOptions(sc, cn.client.Addr().Is6(), &legs.Client)
	}
	if want.TTL.Wanted() && legs.Client.TTL.Outcome == gateway.Applied {
		a.ttl = int(legs.Client.TTL.Value)
	}
	if want.TOS.Wanted() && legs.Client.TOS.Outcome == gateway.Applied {
		a.tos = int(legs.Client.TOS.Value)
	}
	if want.DF.Wanted() {
		legs.Client.DF = want.DF
		legs.Client.DF.Decline(false)
	}
	legs.Client.UnsupportPending()
}

// timeoutAt is when the association's current timeout runs out: the
// first-datagram timeout until it is mapped, then the idle timeout; zero
// for none.
func (a *association) timeoutAt() time.Time {
	l := &a.f.limits
	switch {
	case a.mapped.load() == chanNone && l.FirstDatagramTimeout > 0:
		return a.ctl.start.Add(l.FirstDatagramTimeout)
	case l.AssocIdleTimeout > 0:
		return time.Unix(0, a.last.Load()).Add(l.AssocIdleTimeout)
	}
	return time.Time{}
}

// control reads the control connection: Datagrams over TCP, the end of the
// connection, the first-datagram timeout and the idle timeout. After
// ParkAfter without a message it parks the connection (parked true): the
// park set runs runControl again when the connection is readable or
// closed, when the timeout is due, or when the association is torn down.
func (a *association) control() (up int64, parked bool, err error) {
	c := a.cn.c
	l := &a.f.limits
	ctx := a.ctl.ctx
	st := &a.ctl
	gone := func() bool { return ctx.Err() != nil || a.closing() }
	st.park.Touch(time.Now())
	for {
		c.SetReadDeadline(st.park.Deadline(a.timeoutAt()))
		// A cancel sets an expired deadline; one that came before the line
		// above was overwritten by it.
		if ctx.Err() != nil {
			return st.up, false, context.Cause(ctx)
		}
		// No buffer until a datagram comes over the control connection
		// (most associations carry theirs over UDP, and an idle one then
		// holds none); from then on a small one that most messages fit,
		// ReadUDPMessage allocating for the rare larger one.
		m, err := s6.ReadUDPMessage(c, st.buf)
		if err == nil && st.buf == nil {
			st.buf = make([]byte, 2048)
		}
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return st.up, false, context.Cause(ctx)
			case errors.Is(err, os.ErrDeadlineExceeded):
				if a.mapped.load() == chanNone && l.FirstDatagramTimeout > 0 && time.Since(st.start) >= l.FirstDatagramTimeout {
					return st.up, false, gateway.NewError(gateway.ReasonTimeout, "socks6: udp", errors.New("no first datagram"))
				}
				if a.mapped.load() != chanNone && l.AssocIdleTimeout > 0 && time.Since(time.Unix(0, a.last.Load())) >= l.AssocIdleTimeout {
					return st.up, false, gateway.ErrIdle
				}
				if st.park.ParkIdle(a.timeoutAt(), gone) {
					return 0, true, nil
				}
				continue
			case errors.Is(err, s6.ErrShort), errors.Is(err, s6.ErrVersion), errors.Is(err, s6.ErrBadLength), errors.Is(err, s6.ErrMessageType):
				// The stream is no longer delimited: end the association.
				count(a.c, func(c *assocCounters) prometheus.Counter { return c.malformed })
				return st.up, false, err
			default:
				if a.closing() || errors.Is(err, net.ErrClosed) {
					return st.up, false, nil
				}
				return st.up, false, ignoreEOF(err)
			}
		}
		st.park.Touch(time.Now())
		if m.Type != s6.UDPDatagram || m.Assoc != a.id {
			count(a.c, func(c *assocCounters) prometheus.Counter { return c.wrongChannel })
			continue
		}
		if a.mapped.load() == chanNone && a.mapTo(chanTCP, netip.AddrPort{}, netip.Addr{}, nil, nil) {
			a.enqueue(s6.AppendAssocConfirm(nil, a.id), true)
		}
		if a.mapped.load() != chanTCP {
			count(a.c, func(c *assocCounters) prometheus.Counter { return c.wrongChannel })
			continue
		}
		st.up += a.fromClient(&m, nil)
	}
}

// closing reports whether the association is being torn down.
func (a *association) closing() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func ignoreEOF(err error) error {
	if err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// mapTo fixes the association's channel if it has none; it reports whether
// this call did.
func (a *association) mapTo(ch channel, peer netip.AddrPort, local netip.Addr, ep *udpEndpoint, dc net.Conn) bool {
	a.mapMu.Lock()
	defer a.mapMu.Unlock()
	if a.mapped.load() != chanNone {
		return false
	}
	a.udpPeer, a.udpLocal, a.udpEP, a.dtls = peer, local, ep, dc
	a.mapped.v.Store(uint32(ch))
	if ch != chanTCP {
		// Wake the control loop so it trades the first-datagram deadline
		// for the idle one.
		a.cn.c.SetReadDeadline(time.Now())
	}
	return true
}

// fromClient relays one client Datagram to its destination and returns the
// payload bytes relayed. The receive-first empty Datagram only maps. With
// held (a relay endpoint's read batch), the datagram may wait in the
// backend until held is flushed.
func (a *association) fromClient(m *s6.UDPMessage, held *gateway.HeldWrites) int64 {
	if m.IsReceiveFirst() {
		return 0
	}
	a.last.Store(time.Now().UnixNano())
	var err error
	if held != nil && a.bw != nil {
		err = held.WriteToLater(a.bw, m.Payload, m.Addr, gateway.DatagramMeta{})
	} else {
		err = a.assoc.WriteTo(m.Payload, m.Addr, gateway.DatagramMeta{})
	}
	if err != nil {
		if gateway.ReasonOf(err) == gateway.ReasonNotAllowed {
			count(a.c, func(c *assocCounters) prometheus.Counter { return c.denied })
		}
		return 0
	}
	count(a.c, func(c *assocCounters) prometheus.Counter { return c.up })
	return int64(len(m.Payload))
}

// fromRemote starts relaying datagrams and ICMP errors from the backend to
// the client's mapped channel, in a gateway.PacketLoop (which gives its
// goroutine up while the association is idle); done gets the payload bytes
// relayed when the association is over. Datagrams to a UDP channel go out
// in batches: those of one read batch with one sendmmsg.
func (a *association) fromRemote(done func(down int64)) {
	var down int64
	// The 64 KiB buffers come from a pool only while datagrams are being
	// read and relayed: an idle association holds none.
	var ebuf [64]byte
	var sb *gateway.SendBatch
	var sizes [downBatch]int // payload sizes of the datagrams in sb
	flush := func() {
		if sb == nil {
			return
		}
		n := a.udpEP.sendBatch(sb, a.udpPeer, a.udpLocal, a.ttl, a.tos)
		for i := range n {
			count(a.c, func(c *assocCounters) prometheus.Counter { return c.down })
			down += int64(sizes[i])
		}
		sendBatches.Put(sb)
		sb = nil
	}
	relay := func(buf []byte, pkt gateway.Packet) {
		if pkt.Kind == gateway.PacketICMP {
			if !a.icmp {
				count(a.c, func(c *assocCounters) prometheus.Counter { return c.icmpNotOpted })
				return
			}
			msg, ok := s6.ErrorMessageFor(a.id, pkt.ICMP)
			if !ok {
				count(a.c, func(c *assocCounters) prometheus.Counter { return c.icmpNotReported })
				return
			}
			b, err := s6.AppendUDPMessage(ebuf[:0], &msg)
			flush() // in order
			if err == nil && a.toClient(b) {
				count(a.c, func(c *assocCounters) prometheus.Counter { return c.icmpReported })
			}
			return
		}
		if buf == nil {
			return // no buffer: not a datagram the backend read
		}
		hl, err := s6.DatagramHeaderLen(pkt.From)
		if err != nil {
			return
		}
		start := headRoom - hl
		if _, err := s6.PutDatagramHeader(buf[start:headRoom], a.id, pkt.From, pkt.N); err != nil {
			return
		}
		a.last.Store(time.Now().UnixNano())
		msg := buf[start : headRoom+pkt.N]
		if a.mapped.load() == chanUDP {
			if sb == nil {
				sb = sendBatches.Get().(*gateway.SendBatch)
			}
			sizes[sb.Len()] = pkt.N
			if sb.Add(msg) {
				flush()
			}
			return
		}
		if a.toClient(msg) {
			count(a.c, func(c *assocCounters) prometheus.Counter { return c.down })
			down += int64(pkt.N)
		}
	}
	stop := func(err error) bool {
		if errors.Is(err, net.ErrClosed) {
			a.close()
			return true
		}
		return a.closing()
	}
	a.loop.Store(gateway.StartPacketLoop(a.assoc, remoteBufs, relay, flush, stop, func() { done(down) }))
	select {
	case <-a.done:
		a.loop.Load().Wake() // closed while the loop started: it may have parked
	default:
	}
}

// downBatch is the most datagrams sent to a client at once.
const downBatch = 8

// sendBatches are the batches of datagrams to clients being gathered.
var sendBatches = sync.Pool{New: func() any { return gateway.NewSendBatch(downBatch) }}

// sendBatch sends the datagrams of sb to a client as writeTo would, and
// empties sb; it returns how many of them were sent.
func (e *udpEndpoint) sendBatch(sb *gateway.SendBatch, to netip.AddrPort, local netip.Addr, ttl, tos int) int {
	var oobBuf [128]byte
	oob := e.appendOOB(oobBuf[:0], to, local, ttl, tos)
	n, err := sb.Send(e.pc, e.dest(to), oob)
	if err != nil {
		// From the failed one on, one at a time (writeTo retries
		// without control messages the kernel refuses).
		for i := n; i < sb.Len(); i++ {
			if e.writeTo(sb.Msg(i), to, local, ttl, tos) == nil {
				n++
			}
		}
	}
	sb.Reset()
	return n
}

// toClient sends one message on the mapped channel; it reports whether it
// was sent (or queued).
func (a *association) toClient(b []byte) bool {
	switch a.mapped.load() {
	case chanUDP:
		return a.udpEP.writeTo(b, a.udpPeer, a.udpLocal, a.ttl, a.tos) == nil
	case chanTCP:
		return a.enqueue(b, false)
	case chanDTLS:
		a.dtls.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := a.dtls.Write(b)
		return err == nil
	}
	count(a.c, func(c *assocCounters) prometheus.Counter { return c.unknownClient })
	return false
}

// enqueue copies b into the control connection's write queue, and starts
// the writer when none runs. Datagrams are dropped (and counted) when the
// queue is full; control messages are always queued.
func (a *association) enqueue(b []byte, control bool) bool {
	a.qmu.Lock()
	defer a.qmu.Unlock()
	if a.qclosed {
		return false
	}
	if !control && len(a.tcpQ)+a.inflight >= tcpQueueLen {
		count(a.c, func(c *assocCounters) prometheus.Counter { return c.queueFull })
		return false
	}
	p := msgPool.Get().(*[]byte)
	*p = append((*p)[:0], b...)
	a.tcpQ = append(a.tcpQ, p)
	if !a.writing {
		a.writing = true
		a.writers.Add(1)
		go a.writeTCP()
	}
	return true
}

// writeTCP writes queued messages to the control connection, all that wait
// with one write, until the queue is empty or the association closed.
func (a *association) writeTCP() {
	defer a.writers.Done()
	c := a.cn.c
	var bufs net.Buffers
	for {
		a.qmu.Lock()
		q := a.tcpQ
		a.tcpQ, a.inflight = nil, len(q)
		if len(q) == 0 || a.qclosed {
			a.writing, a.inflight = false, 0
			a.qmu.Unlock()
			releaseMsgs(q)
			return
		}
		a.qmu.Unlock()
		bufs = bufs[:0]
		for _, p := range q {
			bufs = append(bufs, *p)
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		w := bufs // WriteTo consumes its receiver
		_, err := w.WriteTo(c)
		releaseMsgs(q)
		if err != nil {
			a.close()
		}
	}
}

func releaseMsgs(q []*[]byte) {
	for _, p := range q {
		*p = (*p)[:0]
		msgPool.Put(p)
	}
}

// close tears the association down: the ID is forgotten, the backend's
// association closed and the control connection closed with it.
func (a *association) close() {
	a.closeOnce.Do(func() {
		close(a.done)
		a.qmu.Lock()
		a.qclosed = true // the writer drops what waits
		a.qmu.Unlock()
		a.f.udp.remove(a)
		if a.assoc != nil {
			a.assoc.Close()
		}
		if l := a.loop.Load(); l != nil {
			l.Wake()
		}
		a.cn.c.Close()
		a.ctl.park.Wake()
		if a.dtls != nil {
			a.dtls.Close()
		}
	})
}

// ServePacket serves a relay endpoint: plain UDP, or DTLS on dtls_listen.
func (f *Frontend) ServePacket(ctx context.Context, pc net.PacketConn, ep gateway.Endpoint) error {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return errors.New("socks6: relay endpoint is not a UDP socket")
	}
	if ep.Address == f.dtlsAddr && f.dtlsAddr != "" {
		return f.serveDTLS(ctx, uc)
	}
	e := newUDPEndpoint(uc)
	stop := gateway.KickOnDone(ctx, func() { uc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	bufs := make([][]byte, endpointBatch)
	for i := range bufs {
		bufs[i] = make([]byte, s6.MaxUDPMessageLen+1)
	}
	// Datagrams of one read batch wait in the backends (held) until the
	// batch is done, to go out with one system call per association.
	var held gateway.HeldWrites
	get := func() [][]byte { return bufs }
	put := held.Flush
	handle := func(_ int, b []byte, from netip.AddrPort, oob []byte) {
		f.handleDatagram(b, from, e.localOf(oob), e, nil, &held)
	}
	for {
		err := gateway.ServeUDP(ctx, uc, get, put, e.oobSize(), handle)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, net.ErrClosed) {
			return err
		}
	}
}

// endpointBatch is how many datagrams a relay endpoint reads at once.
const endpointBatch = 8

// handleDatagram applies the mapping rule to one message from a client
// relay channel (UDP or DTLS): unknown IDs, foreign sources and messages on a
// channel other than the mapped one are dropped silently.
func (f *Frontend) handleDatagram(b []byte, from netip.AddrPort, local netip.Addr, ep *udpEndpoint, dc net.Conn, held *gateway.HeldWrites) {
	m, _, err := s6.ParseUDPMessage(b)
	if err != nil || m.Type != s6.UDPDatagram {
		f.dropped("malformed")
		return
	}
	a := f.udp.get(m.Assoc)
	if a == nil {
		f.dropped("unknown_id")
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if from.Addr() != a.clientIP {
		count(a.c, func(c *assocCounters) prometheus.Counter { return c.foreign })
		return
	}
	ch := chanUDP
	if dc != nil {
		ch = chanDTLS
	}
	if a.mapped.load() == chanNone && a.mapTo(ch, from, local, ep, dc) {
		a.enqueue(s6.AppendAssocConfirm(nil, a.id), true)
	}
	if a.mapped.load() != ch || (ch == chanUDP && a.udpPeer != from) || (ch == chanDTLS && a.dtls != dc) {
		count(a.c, func(c *assocCounters) prometheus.Counter { return c.wrongChannel })
		return
	}
	if ep != a.udpEP {
		held = nil // only the mapped endpoint's goroutine holds datagrams
	}
	a.fromClient(&m, held)
}
