package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// DestLimits bounds the per-association state of Destinations. A zero field
// takes its value from DefaultDestLimits.
type DestLimits struct {
	// Verdicts bounds the cached policy verdicts.
	Verdicts int
	// VerdictTTL is how long a verdict holds: the gateway's own addresses
	// change as sockets come and go.
	VerdictTTL time.Duration
	// Names bounds the destination names kept resolved (or resolving).
	Names int
	// Queued bounds the datagrams, over all names, that wait for a name
	// being resolved.
	Queued int
	// NameTTL is how long an answer is used before the name is looked up
	// again; the old answer is used meanwhile.
	NameTTL time.Duration
	// NegativeTTL is how long a failed lookup is remembered, and how much
	// longer an answer is kept when its refresh fails.
	NegativeTTL time.Duration
	// ResolveTimeout bounds one lookup.
	ResolveTimeout time.Duration
}

// DefaultDestLimits returns the bounds every backend uses unless told
// otherwise.
func DefaultDestLimits() DestLimits {
	return DestLimits{
		Verdicts:       256,
		VerdictTTL:     5 * time.Second,
		Names:          64,
		Queued:         32,
		NameTTL:        30 * time.Second,
		NegativeTTL:    5 * time.Second,
		ResolveTimeout: 5 * time.Second,
	}
}

func (l DestLimits) orDefaults() DestLimits {
	d := DefaultDestLimits()
	return DestLimits{
		Verdicts:       positiveOr(l.Verdicts, d.Verdicts),
		VerdictTTL:     positiveOr(l.VerdictTTL, d.VerdictTTL),
		Names:          positiveOr(l.Names, d.Names),
		Queued:         positiveOr(l.Queued, d.Queued),
		NameTTL:        positiveOr(l.NameTTL, d.NameTTL),
		NegativeTTL:    positiveOr(l.NegativeTTL, d.NegativeTTL),
		ResolveTimeout: positiveOr(l.ResolveTimeout, d.ResolveTimeout),
	}
}

func positiveOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// DestConfig describes the Destinations of one association.
type DestConfig struct {
	// Op names the component and step in every error ("direct: send").
	Op string
	// Policy judges every concrete destination; nil allows all.
	Policy Policy
	// Own are the gateway's own sockets, never a destination; nil skips
	// the check.
	Own *OwnAddrs
	// Family is the address family the association can send to: 4, 6, or
	// 0 for both. Addresses of the other family are refused, and dropped
	// from resolved names.
	Family int
	// Prefer6 puts the IPv6 addresses of a resolved name before the IPv4
	// ones (the first allowed address is used); otherwise IPv4 comes first.
	Prefer6 bool
	// Resolver looks names up (one LookupNetIP call with network "ip");
	// nil means net.DefaultResolver.
	Resolver Resolver
	// Clock tells the time for the caches; nil means the system clock.
	Clock Clock
	// Log receives debug records about refused destinations and lookups;
	// nil discards them.
	Log *slog.Logger
	// Limits bounds the caches and the queue.
	Limits DestLimits
	// Send sends a datagram that waited for its name, once the name has an
	// allowed address. It is called from a lookup goroutine (never with
	// the Destinations' lock held, possibly concurrently with the
	// association's own sends); b is only valid during the call. Its error
	// is logged. It must be set when Target is given names.
	Send func(b []byte, to netip.AddrPort, meta DatagramMeta) error
}

// Destinations decides where the datagrams of one association may go. It
// caches the verdict on each IP destination for a few seconds (a bounded
// map; when it is full, expired verdicts go first, then any), and resolves
// destination names in the background: an answer is cached and refreshed
// while still in use, a failure is remembered briefly, and the datagrams
// that wait for a name sit in a small bounded queue and are handed to
// DestConfig.Send once it resolves. The IP path allocates nothing once a
// verdict is cached; a lookup runs in one goroutine per name being
// resolved (at most Limits.Names), never one per datagram.
//
// Every refusal is an *Error that wraps ErrDropped: ReasonHostUnreachable
// for an address no datagram can reach (invalid, unspecified, port 0),
// ReasonFamilyMismatch for the wrong family, ReasonNotAllowed for the
// Policy or the gateway's own sockets, the lookup's reason (usually
// ReasonHostUnreachable) for a name that does not resolve, and
// ReasonGeneral for a full queue or name cache.
//
// Destinations is safe for concurrent use. Close ends it.
type Destinations struct {
	op       string
	policy   Policy
	own      *OwnAddrs
	family   int
	prefer6  bool
	resolver Resolver
	clock    Clock
	log      *slog.Logger
	lim      DestLimits
	send     func([]byte, netip.AddrPort, DatagramMeta) error
	cached   bool // verdicts are worth caching (a Policy or Own set)

	mu       sync.Mutex
	verdicts map[netip.AddrPort]destVerdict
	names    map[string]*destName
	queued   int // datagrams waiting, over all names
	closed   bool
	ctx      context.Context // made at the first lookup; ends at Close
	cancel   context.CancelFunc
	lookups  sync.WaitGroup
}

// destVerdict is a cached decision on one destination.
type destVerdict struct {
	err     error
	expires time.Time
}

// destName is a destination name: its usable addresses once resolved, the
// failure, or the datagrams waiting for them.
type destName struct {
	ips       []netip.Addr // the preferred family first
	err       error        // the lookup failed (ips is empty)
	expires   time.Time
	resolving bool
	queue     []destQueued
}

// destQueued is a datagram waiting for its name.
type destQueued struct {
	buf  *[]byte
	port uint16
	meta DatagramMeta
	to   netip.AddrPort // where it goes, once resolved
	err  error          // why it does not
}

var destBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// NewDestinations returns the Destinations of one association.
func NewDestinations(c DestConfig) *Destinations {
	d := &Destinations{
		op:       c.Op,
		policy:   c.Policy,
		own:      c.Own,
		family:   c.Family,
		prefer6:  c.Prefer6,
		resolver: c.Resolver,
		clock:    c.Clock,
		log:      c.Log,
		lim:      c.Limits.orDefaults(),
		send:     c.Send,
		cached:   c.Policy != nil || c.Own != nil,
	}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if d.clock == nil {
		d.clock = SystemClock{}
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.cached {
		d.verdicts = make(map[netip.AddrPort]destVerdict)
	}
	return d
}

// Check returns nil when a datagram may be sent to ap, from the cache when
// it holds a fresh verdict.
func (d *Destinations) Check(ap netip.AddrPort) error {
	return d.check(netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
}

// check is Check of an unmapped ap without a zone.
func (d *Destinations) check(ap netip.AddrPort) error {
	if !d.cached {
		return d.judge(ap)
	}
	now := d.clock.Now()
	d.mu.Lock()
	err := d.checkLocked(ap, now)
	d.mu.Unlock()
	return err
}

// Target returns where a datagram for dst goes now. An IP destination is
// checked (see Check). A name with a cached answer gives its first address
// that passes Check (a stale answer is used while a refresh runs). A name
// without one is looked up in the background and the datagram, copied, waits
// for the answer: Target then returns the zero AddrPort and nil, and the
// datagram goes to DestConfig.Send later, or is dropped when the name does not
// resolve. After Close, a name gets an error wrapping net.ErrClosed.
func (d *Destinations) Target(dst Addr, b []byte, meta DatagramMeta) (netip.AddrPort, error) {
	if !dst.IsName() {
		ap := netip.AddrPortFrom(dst.IP.Unmap().WithZone(""), dst.Port)
		return ap, d.check(ap)
	}
	now := d.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", d.op, net.ErrClosed)
	}
	e := d.names[dst.Name]
	if e != nil && !e.resolving && !now.Before(e.expires) {
		e.err = nil // an answer is used until the refresh comes; a failure is not
		d.lookupLocked(dst.Name, e)
	}
	if e == nil {
		if len(d.names) >= d.lim.Names && !d.evictNameLocked(now) {
			return netip.AddrPort{}, NewError(ReasonGeneral, d.op,
				fmt.Errorf("%w: too many names resolving", ErrDropped))
		}
		if d.names == nil {
			d.names = make(map[string]*destName)
		}
		e = &destName{}
		d.names[dst.Name] = e
		d.lookupLocked(dst.Name, e)
	}
	switch {
	case len(e.ips) > 0:
		return d.pickLocked(e.ips, dst.Port, now)
	case e.err != nil:
		return netip.AddrPort{}, e.err
	case d.queued >= d.lim.Queued:
		return netip.AddrPort{}, NewError(ReasonGeneral, d.op,
			fmt.Errorf("%w: queue for %s is full", ErrDropped, dst.Name))
	}
	buf := destBufs.Get().(*[]byte)
	*buf = append((*buf)[:0], b...)
	e.queue = append(e.queue, destQueued{buf: buf, port: dst.Port, meta: meta})
	d.queued++
	return netip.AddrPort{}, nil
}

// Close cancels the lookups in flight, drops the datagrams waiting for them
// and waits for the lookup goroutines (and so for every call of
// DestConfig.Send). It may be called more than once.
func (d *Destinations) Close() {
	d.mu.Lock()
	d.closed = true
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	d.lookups.Wait()
}

// checkLocked is Check with the lock held.
func (d *Destinations) checkLocked(ap netip.AddrPort, now time.Time) error {
	if !d.cached {
		return d.judge(ap)
	}
	if v, ok := d.verdicts[ap]; ok && now.Before(v.expires) {
		return v.err
	}
	err := d.judge(ap)
	if len(d.verdicts) >= d.lim.Verdicts {
		for k, v := range d.verdicts {
			if !now.Before(v.expires) {
				delete(d.verdicts, k)
			}
		}
		for k := range d.verdicts {
			if len(d.verdicts) < d.lim.Verdicts {
				break
			}
			delete(d.verdicts, k)
		}
	}
	d.verdicts[ap] = destVerdict{err: err, expires: now.Add(d.lim.VerdictTTL)}
	return err
}

// judge decides on ap (unmapped, without a zone).
func (d *Destinations) judge(ap netip.AddrPort) error {
	ip := ap.Addr()
	var err error
	switch {
	case !ip.IsValid() || ip.IsUnspecified() || ap.Port() == 0:
		err = NewError(ReasonHostUnreachable, d.op,
			fmt.Errorf("%w: %s is not a usable destination", ErrDropped, ap))
	case !d.carries(ip):
		err = NewError(ReasonFamilyMismatch, d.op,
			fmt.Errorf("%w: an ipv%d association cannot send to %s", ErrDropped, d.family, ap))
	case d.own.Contains(ap):
		err = NewError(ReasonNotAllowed, d.op,
			fmt.Errorf("%w: %s is the gateway itself", ErrDropped, ap))
	case d.policy != nil:
		if perr := d.policy.Allow(ap); perr != nil {
			err = NewError(ReasonNotAllowed, d.op,
				fmt.Errorf("%w: denied by policy: %w", ErrDropped, perr))
		}
	}
	if err != nil {
		d.log.Debug("datagram destination refused", "dest", ap.String(), "err", err)
	}
	return err
}

// carries reports whether the association can send to ip (unmapped).
func (d *Destinations) carries(ip netip.Addr) bool {
	switch d.family {
	case 4:
		return ip.Is4()
	case 6:
		return ip.Is6()
	}
	return true
}

// pickLocked returns the first of ips with port that passes Check, or the
// first refusal.
func (d *Destinations) pickLocked(ips []netip.Addr, port uint16, now time.Time) (netip.AddrPort, error) {
	var first error
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, port)
		err := d.checkLocked(ap, now)
		if err == nil {
			return ap, nil
		}
		if first == nil {
			first = err
		}
	}
	return netip.AddrPort{}, first
}

// evictNameLocked makes room for one more name: an expired entry, or any
// entry that is not being resolved (only those hold queued datagrams).
func (d *Destinations) evictNameLocked(now time.Time) bool {
	victim := ""
	for n, e := range d.names {
		if e.resolving {
			continue
		}
		victim = n
		if !now.Before(e.expires) {
			break
		}
	}
	if victim == "" {
		return false
	}
	delete(d.names, victim)
	return true
}

// lookupLocked starts resolving name for e in the background.
func (d *Destinations) lookupLocked(name string, e *destName) {
	if d.ctx == nil {
		d.ctx, d.cancel = context.WithCancel(context.Background())
	}
	e.resolving = true
	d.lookups.Add(1)
	go func() {
		defer d.lookups.Done()
		ctx, cancel := context.WithTimeout(d.ctx, d.lim.ResolveTimeout)
		ips, err := d.resolver.LookupNetIP(ctx, "ip", name)
		cancel()
		d.resolved(name, e, ips, err)
	}()
}

// resolved records a lookup's answer and sends the datagrams that waited
// for it.
func (d *Destinations) resolved(name string, e *destName, ips []netip.Addr, err error) {
	var usable []netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap().WithZone("")
		if ip.IsValid() && !ip.IsUnspecified() && d.carries(ip) && !slices.Contains(usable, ip) {
			usable = append(usable, ip)
		}
	}
	slices.SortStableFunc(usable, func(x, y netip.Addr) int {
		switch {
		case x.Is6() == y.Is6():
			return 0
		case x.Is6() == d.prefer6:
			return -1
		}
		return 1
	})
	if err == nil && len(usable) == 0 {
		err = &net.DNSError{Err: "no usable address", Name: name, IsNotFound: true}
	}

	now := d.clock.Now()
	d.mu.Lock()
	e.resolving = false
	queue := e.queue
	e.queue = nil
	d.queued -= len(queue)
	closed := d.closed
	switch {
	case closed:
	case err == nil:
		e.ips, e.err, e.expires = usable, nil, now.Add(d.lim.NameTTL)
	case len(e.ips) > 0:
		// A refresh failed: keep the old answer a little longer.
		e.expires = now.Add(d.lim.NegativeTTL)
		d.log.Debug("name refresh failed", "name", name, "err", err)
	default:
		e.err = NewError(ReasonOf(err), d.op, fmt.Errorf("%w: resolving %s: %w", ErrDropped, name, err))
		e.expires = now.Add(d.lim.NegativeTTL)
		d.log.Debug("name lookup failed", "name", name, "err", err, "dropped", len(queue))
	}
	ok := !closed && len(e.ips) > 0
	if ok {
		for i := range queue {
			q := &queue[i]
			q.to, q.err = d.pickLocked(e.ips, q.port, now)
		}
	}
	d.mu.Unlock()

	for i := range queue {
		q := &queue[i]
		if ok {
			serr := q.err
			if serr == nil && d.send != nil {
				serr = d.send(*q.buf, q.to, q.meta)
			}
			if serr != nil {
				d.log.Debug("queued datagram not sent", "name", name, "err", serr)
			}
		}
		destBufs.Put(q.buf)
	}
}
