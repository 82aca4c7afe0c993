package gateway

import (
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
