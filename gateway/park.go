package gateway

import (
	"net"
	"syscall"
	"time"
)

// parkable is a reader that can give its goroutine up while its socket is
// idle: the park set waits on the socket instead and calls resume, in a new
// goroutine, when the socket is readable or closed, when the owner unparks
// it, or at wakeAt.
type parkable interface {
	// parkEntry is the reader's bookkeeping in the park set.
	parkEntry() *parkEntry
	// wakeAt is when a parked reader must run again whatever its socket
	// does (an idle timeout to enforce); zero for never.
	wakeAt() time.Time
	// resume runs the reader again after the park set let it go.
	resume()
}

// parkEntry is what the park set keeps of a parked reader; tok and timer
// are guarded by the park set's lock.
type parkEntry struct {
	rc    syscall.RawConn // the socket waited on
	tok   uint64
	timer *time.Timer
	// fd is rc's descriptor while parked (hasFD), the key of byFD.
	fd    int
	hasFD bool
}

// ConnPark lets the goroutine that waits to read a connection end while the
// connection is idle: Park puts the socket in the park set, and fn runs in a
// new goroutine once the socket is readable or closed, at the time given to
// Park, or on Wake. Only a plain TCP connection (under gateway wrappers
// that hold no buffered bytes) can be parked: a TLS connection may hold
// decrypted bytes the socket no longer shows.
type ConnPark struct {
	pk parkEntry
	at time.Time
	fn func()
	// active is when the reader last read something, or (re)started; the
	// reader's goroutine only.
	active time.Time
}

// NewConnPark prepares c for parking; nil when c cannot be parked.
func NewConnPark(c net.Conn, fn func()) *ConnPark {
	tc, ok := UnwrapConn(c).(*net.TCPConn)
	if !ok || ParkAfter() <= 0 {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &ConnPark{pk: parkEntry{rc: rc}, fn: fn}
}

// ParkAfter is how long a reader waits for nothing before it parks;
// negative or zero when parking is off.
func ParkAfter() time.Duration { return parkAfter.get() }

// Park parks the socket until it is readable or closed, until at (unless
// zero), or until Wake. After true the caller must end its goroutine
// without touching what fn uses: fn may already run. False means the
// socket cannot wait in the park set (no park set on this OS, or the
// socket is closed): the caller goes on reading itself.
func (p *ConnPark) Park(at time.Time) bool {
	p.at = at
	return park(p, time.Now())
}

// Wake resumes a parked reader (its connection was closed, or its owner
// must look at something); it does nothing if the reader is not parked,
// or on a nil *ConnPark.
func (p *ConnPark) Wake() {
	if p != nil {
		unpark(p)
	}
}

// The reader's side, all safe on a nil *ConnPark (a connection that cannot
// park): Touch when it reads something or (re)starts, Deadline for each
// read, ParkIdle when the deadline passes and its own timeouts are not due.

// Touch records that the reader read something (or resumed) at now:
// parking counts from there.
func (p *ConnPark) Touch(now time.Time) {
	if p != nil {
		p.active = now
	}
}

// Deadline is the read deadline for a reader whose own timeout is at (zero
// for none): at, or the time to park if that comes first.
func (p *ConnPark) Deadline(at time.Time) time.Time {
	pa := ParkAfter()
	if p == nil || pa <= 0 {
		return at
	}
	if pd := p.active.Add(pa); at.IsZero() || pd.Before(at) {
		return pd
	}
	return at
}

// ParkIdle parks the connection when the reader has read nothing for
// ParkAfter, until it is readable or closed, until at (zero: no timer), or
// until Wake. gone reports that the reader's owner ended (a cancel, a
// teardown): then it does not park, and an end that came while the socket
// was being parked (which woke nobody) wakes it at once. After true the
// caller must end its goroutine; after false it reads on (not idle long
// enough, or the socket cannot wait in the park set: parking is tried
// again ParkAfter later).
func (p *ConnPark) ParkIdle(at time.Time, gone func() bool) bool {
	pa := ParkAfter()
	if p == nil || pa <= 0 {
		return false
	}
	now := time.Now()
	if now.Sub(p.active) < pa || gone() {
		return false
	}
	if p.Park(at) {
		if gone() {
			p.Wake()
		}
		return true
	}
	p.active = now
	return false
}

func (p *ConnPark) parkEntry() *parkEntry { return &p.pk }
func (p *ConnPark) wakeAt() time.Time     { return p.at }

func (p *ConnPark) resume() {
	unregister(p)
	p.fn()
}
