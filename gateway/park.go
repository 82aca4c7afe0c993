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
// must look at something); it does nothing if the reader is not parked.
func (p *ConnPark) Wake() { unpark(p) }

func (p *ConnPark) parkEntry() *parkEntry { return &p.pk }
func (p *ConnPark) wakeAt() time.Time     { return p.at }

func (p *ConnPark) resume() {
	unregister(p)
	p.fn()
}
