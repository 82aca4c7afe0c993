package turn

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// store is a frontend's allocation table. It lives in the gateway's
// StateStore, so a reload's new instance (which takes over the same bound UDP
// socket) finds the allocations the old one made.
type store struct {
	// nonceKey signs nonces; it is random per process.
	nonceKey [32]byte

	mu      sync.RWMutex
	allocs  map[fiveTuple]*allocation
	pending map[fiveTuple][stun.TransactionIDSize]byte
	tombs   map[fiveTuple]*tomb
	// relays indexes live relays by address, for the hairpin between two
	// allocations of this frontend.
	relays map[netip.AddrPort]relayRef
	// conns indexes the RFC 6062 peer connections waiting for their
	// ConnectionBind, by CONNECTION-ID.
	conns map[tt.ConnectionID]*tcpConn

	ownMu  sync.Mutex
	owners int
	orphan *time.Timer
}

// tomb keeps the responses of a deleted allocation for retransmissions
// (a retransmitted Refresh with LIFETIME 0 gets its success again).
type tomb struct {
	cache   respCache
	expires time.Time
}

func newStore() *store {
	return &store{nonceKey: randomKey(), allocs: map[fiveTuple]*allocation{},
		pending: map[fiveTuple][stun.TransactionIDSize]byte{}, tombs: map[fiveTuple]*tomb{},
		relays: map[netip.AddrPort]relayRef{}, conns: map[tt.ConnectionID]*tcpConn{}}
}

func (st *store) get(t fiveTuple) *allocation {
	st.mu.RLock()
	a := st.allocs[t]
	st.mu.RUnlock()
	return a
}

func (st *store) tombFor(t fiveTuple) *tomb {
	st.mu.RLock()
	tb := st.tombs[t]
	st.mu.RUnlock()
	return tb
}

// startPending marks an Allocate in progress on t. It fails when another one
// (or an allocation) holds the 5-tuple already.
func (st *store) startPending(t fiveTuple, tid [stun.TransactionIDSize]byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, busy := st.pending[t]; busy {
		return false
	}
	if _, taken := st.allocs[t]; taken {
		return false
	}
	st.pending[t] = tid
	return true
}

// pendingTID returns the transaction ID of the Allocate in progress on t.
func (st *store) pendingTID(t fiveTuple) ([stun.TransactionIDSize]byte, bool) {
	st.mu.RLock()
	tid, ok := st.pending[t]
	st.mu.RUnlock()
	return tid, ok
}

// install ends the pending state of t and, when a is not nil, installs it.
func (st *store) install(t fiveTuple, a *allocation) {
	st.mu.Lock()
	delete(st.pending, t)
	if a != nil {
		st.allocs[t] = a
		delete(st.tombs, t)
		for _, r := range a.relays {
			st.relays[r.addr] = relayRef{a: a, r: r}
		}
	}
	st.mu.Unlock()
}

// remove forgets a and keeps its response cache as a tomb.
func (st *store) remove(a *allocation, keep time.Time) {
	st.mu.Lock()
	if st.allocs[a.tuple] == a {
		delete(st.allocs, a.tuple)
		a.mu.RLock()
		st.tombs[a.tuple] = &tomb{cache: a.cache, expires: keep}
		a.mu.RUnlock()
	}
	for _, r := range a.relays {
		st.dropRelayLocked(r)
	}
	st.mu.Unlock()
}

// relayRef is a live relay and its allocation.
type relayRef struct {
	a *allocation
	r *relay
}

// relayAt returns the live relay of this frontend at ap, if any.
func (st *store) relayAt(ap netip.AddrPort) (relayRef, bool) {
	st.mu.RLock()
	ref, ok := st.relays[ap]
	st.mu.RUnlock()
	return ref, ok && !ref.r.closed.Load()
}

func (st *store) dropRelay(r *relay) {
	st.mu.Lock()
	st.dropRelayLocked(r)
	st.mu.Unlock()
}

func (st *store) dropRelayLocked(r *relay) {
	if ref, ok := st.relays[r.addr]; ok && ref.r == r {
		delete(st.relays, r.addr)
	}
}

// snapshot returns the allocations.
func (st *store) snapshot() []*allocation {
	st.mu.RLock()
	out := make([]*allocation, 0, len(st.allocs))
	for _, a := range st.allocs {
		out = append(out, a)
	}
	st.mu.RUnlock()
	return out
}

// purgeTombs forgets tombs older than now.
func (st *store) purgeTombs(now time.Time) {
	st.mu.Lock()
	for t, tb := range st.tombs {
		if now.After(tb.expires) {
			delete(st.tombs, t)
		}
	}
	st.mu.Unlock()
}

// adopt registers a serving instance (a ServePacket); it cancels the close
// of orphaned allocations.
func (st *store) adopt() {
	st.ownMu.Lock()
	st.owners++
	if st.orphan != nil {
		st.orphan.Stop()
		st.orphan = nil
	}
	st.ownMu.Unlock()
}

// leave unregisters a serving instance. When none is left after
// handoffGrace (the frontend was removed, or the gateway stops), the UDP
// allocations are closed; TCP ones end with their connections.
func (st *store) leave() {
	st.ownMu.Lock()
	defer st.ownMu.Unlock()
	st.owners--
	if st.owners > 0 {
		return
	}
	st.orphan = time.AfterFunc(handoffGrace, func() {
		st.ownMu.Lock()
		owned := st.owners > 0
		st.ownMu.Unlock()
		if owned {
			return
		}
		for _, a := range st.snapshot() {
			if a.tuple.tr == transUDP {
				a.close(errOrphaned)
			}
		}
	})
}

// Nonces (turn.md §3.7): stateless, hex(expiry ‖ HMAC-SHA256(key, expiry ‖
// 5-tuple)[:12]), 40 characters. A nonce is valid only for the 5-tuple it was
// issued to and until its expiry.
const nonceLen = 16 + 24

func (st *store) nonce(t fiveTuple, expires time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(expires.UnixNano()))
	mac := st.nonceMAC(b, t)
	out := make([]byte, nonceLen)
	hex.Encode(out, b[:])
	hex.Encode(out[16:], mac[:12])
	return string(out)
}

func (st *store) nonceMAC(exp [8]byte, t fiveTuple) []byte {
	h := hmac.New(sha256.New, st.nonceKey[:])
	h.Write(exp[:])
	var b [1 + 18 + 18]byte
	b[0] = byte(t.tr)
	c16, s16 := t.client.Addr().As16(), t.server.Addr().As16()
	copy(b[1:17], c16[:])
	binary.BigEndian.PutUint16(b[17:19], t.client.Port())
	copy(b[19:35], s16[:])
	binary.BigEndian.PutUint16(b[35:37], t.server.Port())
	h.Write(b[:])
	return h.Sum(nil)
}

// checkNonce reports whether n is a nonce this process issued to t that has
// not expired at now.
func (st *store) checkNonce(n string, t fiveTuple, now time.Time) bool {
	if len(n) != nonceLen {
		return false
	}
	var exp [8]byte
	if _, err := hex.Decode(exp[:], []byte(n[:16])); err != nil {
		return false
	}
	var mac [12]byte
	if _, err := hex.Decode(mac[:], []byte(n[16:])); err != nil {
		return false
	}
	if !hmac.Equal(mac[:], st.nonceMAC(exp, t)[:12]) {
		return false
	}
	return now.UnixNano() < int64(binary.BigEndian.Uint64(exp[:]))
}

// respCache remembers recent responses to authenticated requests of a
// 5-tuple, so a retransmission gets the same bytes (and never a 438 because
// the nonce went stale since the first copy).
type respCache struct {
	entries [4]cachedResp
	next    int
}

type cachedResp struct {
	tid  [stun.TransactionIDSize]byte
	req  []byte
	resp []byte
	at   time.Time
}

// maxCachedRequest is the largest request whose response is cached.
const maxCachedRequest = 2048

func (c *respCache) put(m *stun.Message, resp []byte, now time.Time) {
	if len(m.Raw) > maxCachedRequest {
		return
	}
	e := &c.entries[c.next]
	c.next = (c.next + 1) % len(c.entries)
	e.tid = m.TransactionID
	e.req = append(e.req[:0], m.Raw...)
	e.resp = append(e.resp[:0:0], resp...)
	e.at = now
}

func (c *respCache) get(m *stun.Message, now time.Time) []byte {
	for i := range c.entries {
		e := &c.entries[i]
		if e.resp != nil && e.tid == m.TransactionID && string(e.req) == string(m.Raw) &&
			now.Sub(e.at) < tt.RetransmitCacheTime {
			return e.resp
		}
	}
	return nil
}
