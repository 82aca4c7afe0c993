package turn

import (
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
)

var (
	errOrphaned = gateway.NewError(gateway.ReasonNone, "turn", errors.New("frontend no longer serves the socket"))
	errExpired  = errors.New("turn: allocation expired")
)

// Bounds of one allocation's state (turn.md §10.6): more are answered 508.
const (
	maxPermissions = 1024
	maxChannels    = 1024
)

// relay is one relayed transport address of an allocation: a backend
// association of one family.
type relay struct {
	family tt.Family
	addr   netip.AddrPort
	assoc  gateway.Association
	// bw is assoc as a gateway.BatchWriter, nil when it is not one.
	bw     gateway.BatchWriter
	closed atomic.Bool
	// loop reads assoc (set once reading starts)
	loop atomic.Pointer[gateway.PacketLoop]
}

// closeAssoc closes the relay's association once, and wakes its reader if
// it waits parked.
func (r *relay) closeAssoc() {
	if r.closed.Swap(true) {
		return
	}
	r.assoc.Close()
	if l := r.loop.Load(); l != nil {
		l.Wake()
	}
}

// binding is a channel binding.
type binding struct {
	number  uint16
	peer    netip.AddrPort
	expires int64 // unix nanoseconds
}

// allocation is one TURN allocation: a 5-tuple's relays, permissions and
// channels.
type allocation struct {
	f  *Frontend // the instance that made it: settings, runtime, metrics
	rt *gateway.Runtime
	// unwatch ends the allocation's registration for revocation.
	unwatch func()
	tuple   fiveTuple
	sink    sink
	user    string
	key     []byte
	route   *gateway.Route
	df      bool
	start   time.Time
	hold    func()
	relays  []*relay
	// tcp is the relay of an RFC 6062 TCP allocation (relays is then
	// empty).
	tcp *tcpRelay

	expires atomic.Int64 // unix nanoseconds
	up      atomic.Int64 // bytes client -> peers
	down    atomic.Int64 // bytes peers -> client

	mu     sync.RWMutex
	perms  map[netip.Addr]int64 // unix nanoseconds
	byNum  map[uint16]*binding
	byPeer map[netip.AddrPort]*binding
	cache  respCache
	// The Allocate that made the allocation, replayed byte for byte to
	// its retransmissions for the allocation's whole life.
	allocTID  [stun.TransactionIDSize]byte
	allocReq  []byte
	allocResp []byte

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func (a *allocation) now() time.Time { return a.f.clock.Now() }

// families returns the families of the live relays.
func (a *allocation) families() []tt.Family {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]tt.Family, 0, 2)
	if a.tcp != nil {
		out = append(out, a.tcp.family)
	}
	for _, r := range a.relays {
		if !r.closed.Load() {
			out = append(out, r.family)
		}
	}
	return out
}

// relayFor returns the live relay of the family of peer; call with a.mu held.
func (a *allocation) relayFor(peer netip.Addr) *relay {
	f := tt.FamilyOf(peer)
	for _, r := range a.relays {
		if r.family == f && !r.closed.Load() {
			return r
		}
	}
	return nil
}

// permitted reports whether ip has a live permission; call with a.mu held.
func (a *allocation) permitted(ip netip.Addr, now int64) bool {
	return a.perms[ip.Unmap()] > now
}

// cached returns the response to replay for a retransmitted request.
func (a *allocation) cached(m *stun.Message) []byte {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if m.Type == tt.TypeAllocateRequest && m.TransactionID == a.allocTID && string(m.Raw) == string(a.allocReq) {
		return a.allocResp
	}
	return a.cache.get(m, a.now())
}

func (a *allocation) remember(m *stun.Message, resp []byte) {
	a.mu.Lock()
	a.cache.put(m, resp, a.now())
	a.mu.Unlock()
}

// checkPeer answers whether peer may be used by this allocation: 443 for a
// family without a relay, 403 when the routes deny it for this user and
// backend (including the gateway's own sockets and special-purpose ranges,
// also when hidden in an IPv4-in-IPv6 encoding).
func (a *allocation) checkPeer(peer netip.AddrPort) error {
	if err := tt.CheckPeerFamily(peer, a.families()...); err != nil {
		return err
	}
	m := gateway.Match{Command: gateway.CmdTURNAllocate, User: a.user, Frontend: a.f.name}
	backend := ""
	if a.route != nil {
		backend = a.route.BackendName
	}
	if ref, ok := a.f.st.relayAt(peer); ok && ref.a != a {
		// Another allocation's relay on this frontend: the hairpin
		// delivers to it without leaving the process.
		return nil
	}
	if err := a.rt.Router.Check(m, backend, peer); err != nil {
		return &tt.CodeError{Code: stun.CodeForbidden, Err: err}
	}
	if v4, ok := tt.EmbeddedIPv4(peer.Addr()); ok {
		if err := a.rt.Router.Check(m, backend, netip.AddrPortFrom(v4, peer.Port())); err != nil {
			return &tt.CodeError{Code: stun.CodeForbidden, Err: err}
		}
	}
	return nil
}

// permit installs or refreshes permissions; call with a.mu held.
func (a *allocation) permit(ips []netip.Addr, until int64) error {
	added := 0
	for _, ip := range ips {
		if _, ok := a.perms[ip.Unmap()]; !ok {
			added++
		}
	}
	if len(a.perms)+added > maxPermissions {
		return &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: errors.New("turn: too many permissions")}
	}
	for _, ip := range ips {
		a.perms[ip.Unmap()] = until
	}
	return nil
}

// close ends the allocation: its relays close, its goroutines end, the
// access log records it. A stream client's connection is closed after what
// is queued for it.
func (a *allocation) close(cause error) {
	a.closeOnce.Do(func() {
		f := a.f
		f.st.remove(a, a.now().Add(tt.RetransmitCacheTime))
		close(a.done)
		a.mu.Lock()
		relays := a.relays
		a.mu.Unlock()
		dests := make([]string, 0, len(relays))
		for _, r := range relays {
			dests = append(dests, r.addr.String())
			r.closeAssoc()
		}
		if a.tcp != nil {
			dests = append(dests, a.tcp.addr.String())
			a.tcp.closeAll()
		}
		if a.tuple.tr != transUDP {
			a.sink.closeAfterFlush()
		}
		if errors.Is(cause, errExpired) || errors.Is(cause, errOrphaned) {
			cause = nil
		}
		a.rt.AccessLog(gateway.AccessRecord{
			Frontend: f.name, Protocol: Protocol, Command: gateway.CmdTURNAllocate, User: a.user,
			Client: a.tuple.tr.String() + ":" + a.tuple.client.String(), Dest: strings.Join(dests, ","),
			Route: a.route, Bytes: gateway.RelayStats{Up: a.up.Load(), Down: a.down.Load()}, Start: a.start, Err: cause,
		})
		a.hold()
		if a.unwatch != nil {
			a.unwatch()
		}
	})
}

// closeRelay closes one relay of a dual-stack allocation (Refresh with
// REQUESTED-ADDRESS-FAMILY and LIFETIME 0); the last one closes the
// allocation.
func (a *allocation) closeRelay(r *relay) {
	a.f.st.dropRelay(r)
	r.closeAssoc()
	if len(a.families()) == 0 {
		a.close(nil)
	}
}

// headroom is the room before a peer datagram in the relay buffer: the
// largest Data indication header (20 + XOR-PEER-ADDRESS of IPv6 24 + DATA
// header 4).
const headroom = 48

// maxUDPPayload is the largest datagram sent to a UDP client.
const maxUDPPayload = 65507

// readLoop starts relaying what one relay receives to the client:
// datagrams from permitted peers as ChannelData when a channel is bound to
// the peer, else as Data indications; ICMP errors about datagrams to
// permitted peers as Data indications with the ICMP attribute. It builds
// messages in place around the payload, so nothing is allocated per
// datagram. The reading runs in a gateway.PacketLoop, which gives its
// goroutine up while the relay is idle.
func (a *allocation) readLoop(r *relay) {
	// The relay buffers come from a pool only while datagrams are being
	// read and relayed: an idle allocation holds none. To a UDP client,
	// the messages of one read batch go out with one sendmmsg.
	us, _ := a.sink.(*udpSink)
	var sb *gateway.SendBatch
	var sizes [relayBatch]int // payload sizes of the messages in sb
	flush := func() {
		if sb == nil {
			return
		}
		n := us.sendBatch(sb)
		for i := range sb.Len() {
			if i < n {
				a.counted(sizes[i])
			} else {
				a.f.c.drop(a.f.c.queueFull)
			}
		}
		sb.Reset()
		sendBatches.Put(sb)
		sb = nil
	}
	relay := func(buf []byte, pkt gateway.Packet) {
		rng := rngs.Get().(*mrand.ChaCha8)
		defer rngs.Put(rng)
		if pkt.Kind == gateway.PacketICMP {
			flush() // in order
			a.relayICMP(pkt.ICMP, rng)
			return
		}
		if buf == nil {
			return // no buffer: not a datagram the backend read
		}
		from := pkt.From.AddrPort()
		out, ok := a.frame(buf, rng, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), pkt.N)
		switch {
		case !ok:
		case us == nil:
			a.send(out, pkt.N)
		default:
			if sb == nil {
				sb = sendBatches.Get().(*gateway.SendBatch)
			}
			sizes[sb.Len()] = pkt.N
			if sb.Add(out) {
				flush()
			}
		}
	}
	stop := func(err error) bool {
		if errors.Is(err, net.ErrClosed) || r.closed.Load() {
			return true
		}
		select {
		case <-a.done:
			return true
		default:
			return false
		}
	}
	r.loop.Store(gateway.StartPacketLoop(r.assoc, relayBufs, relay, flush, stop, a.wg.Done))
	if r.closed.Load() {
		r.loop.Load().Wake() // closed while the loop started: it may have parked
	}
}

// relayBufs hold a peer datagram with room for a message header before it
// (and 4 bytes of ChannelData padding after it).
var relayBufs = gateway.NewBufPool(headroom, (1<<16)+4)

// deliver relays a copy of data from peer to the client, as if a relay of
// a had received it.
func (a *allocation) deliver(data []byte, from netip.AddrPort) {
	l := relayBufs.Lender()
	n := copy(l.Get(), data)
	rng := rngs.Get().(*mrand.ChaCha8)
	if out, ok := a.frame(l.Buf(), rng, from, n); ok {
		a.send(out, n)
	}
	rngs.Put(rng)
	l.Put(nil)
}

// rngs are the random sources of indication transaction IDs.
var rngs = sync.Pool{New: func() any {
	var seed [32]byte
	rand.Read(seed[:])
	return mrand.NewChaCha8(seed)
}}

// relayBatch is the most messages sent to a client at once: a backend
// read batch.
const relayBatch = gateway.ReadBatch

// sendBatches are the batches of messages to clients being gathered.
var sendBatches = sync.Pool{New: func() any { return gateway.NewSendBatch(relayBatch) }}

// send sends out, which carries n bytes from a peer, to the client.
func (a *allocation) send(out []byte, n int) {
	if !a.sink.send(out, false) {
		a.f.c.drop(a.f.c.queueFull)
		return
	}
	a.counted(n)
}

// counted counts n bytes relayed to the client.
func (a *allocation) counted(n int) {
	a.down.Add(int64(n))
	a.f.c.relayed(false, n)
}

// frame builds the message that relays n bytes of a datagram from peer to
// the client, in place around it, when peer has a permission: ChannelData
// when a channel is bound to peer, else a Data indication. buf holds the
// datagram after headroom bytes, and has room for padding after it. ok is
// false when the datagram is dropped.
func (a *allocation) frame(buf []byte, rng *mrand.ChaCha8, from netip.AddrPort, n int) (out []byte, ok bool) {
	c := a.f.c
	now := a.now().UnixNano()
	a.mu.RLock()
	ok = a.permitted(from.Addr(), now)
	var ch uint16
	if b := a.byPeer[from]; b != nil && b.expires > now {
		ch = b.number
	}
	a.mu.RUnlock()
	if !ok {
		c.drop(c.noPermission)
		return nil, false
	}
	stream := a.sink.stream()
	if ch != 0 {
		size, err := putChannelHeader(buf[headroom-4:], ch, n, stream)
		if err != nil {
			c.drop(c.tooBig)
			return nil, false
		}
		out = buf[headroom-4 : headroom-4+size]
	} else {
		hl := 36
		if tt.FamilyOf(from.Addr()) == tt.FamilyIPv6 {
			hl = 48
		}
		var tid [stun.TransactionIDSize]byte
		binaryRand(rng, tid[:])
		var err error
		out, err = tt.AppendDataIndication(buf[headroom-hl:headroom-hl], tid, from, buf[headroom:headroom+n])
		if err != nil {
			c.drop(c.tooBig)
			return nil, false
		}
	}
	if !stream && len(out) > maxUDPPayload {
		c.drop(c.tooBig)
		return nil, false
	}
	return out, true
}

// binaryRand fills b from rng.
func binaryRand(rng *mrand.ChaCha8, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// relayICMP reports an ICMP error to the client when TURN relays its kind
// and the failed datagram's destination has a permission (turn.md §5.4).
func (a *allocation) relayICMP(e gateway.ICMPError, rng *mrand.ChaCha8) {
	c := a.f.c
	icmp, peer, ok := tt.ICMPFromError(e)
	if !ok {
		c.drop(c.icmpNotRelayed)
		return
	}
	a.mu.RLock()
	permitted := a.permitted(peer.Addr(), a.now().UnixNano())
	a.mu.RUnlock()
	if !permitted {
		c.drop(c.icmpNoPermission)
		return
	}
	var tid [stun.TransactionIDSize]byte
	binaryRand(rng, tid[:])
	m, err := tt.NewICMPIndication(tid, peer, icmp)
	if err != nil {
		c.drop(c.icmpNotRelayed)
		return
	}
	if a.sink.send(m.Raw, false) {
		c.drop(c.icmpReported)
	}
}

// purge forgets expired permissions and channels.
func (a *allocation) purge(now int64) {
	a.mu.Lock()
	for ip, exp := range a.perms {
		if exp <= now {
			delete(a.perms, ip)
		}
	}
	for n, b := range a.byNum {
		if b.expires <= now {
			delete(a.byNum, n)
			delete(a.byPeer, b.peer)
		}
	}
	a.mu.Unlock()
}

// lifetimeAttr converts a granted lifetime to LIFETIME seconds, rounding up
// so a sub-second test lifetime is not reported as 0 (deleted).
func lifetimeAttr(d time.Duration) tt.Lifetime {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > time.Duration(^uint32(0)) {
		s = time.Duration(^uint32(0))
	}
	return tt.Lifetime(s)
}
