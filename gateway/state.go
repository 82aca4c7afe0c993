package gateway

import (
	"sync"
	"sync/atomic"
	"time"
)

// StateStore keeps state that must outlive one Runtime — SOCKS 6 sessions
// and token windows, TURN allocations — so a reload does not drop it. Keys
// are chosen by the plug-in, by convention "type/name" of the frontend.
type StateStore struct {
	mu sync.Mutex
	m  map[string]any
}

// NewStateStore returns an empty store.
func NewStateStore() *StateStore { return &StateStore{m: map[string]any{}} }

// Get returns the value under key, creating it with create on first use.
func (s *StateStore) Get(key string, create func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		v = create()
		s.m[key] = v
	}
	return v
}

// Lifecycle is the gateway's process state that plug-ins may consult.
type Lifecycle struct {
	drainBy atomic.Int64
}

// DrainDeadline reports whether the gateway is draining and when the grace
// period ends: a frontend must not extend anything (a TURN allocation's
// lifetime) past it.
func (l *Lifecycle) DrainDeadline() (time.Time, bool) {
	if l == nil {
		return time.Time{}, false
	}
	n := l.drainBy.Load()
	if n == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

func (l *Lifecycle) startDrain(deadline time.Time) { l.drainBy.Store(deadline.UnixNano()) }
