package gateway

import "sync"

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
