package socks6

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"net"
	"sync"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// maxSessions bounds the sessions one frontend keeps.
const maxSessions = 1 << 16

// sessionIDLen is the length of the Session IDs this proxy issues.
const sessionIDLen = 8

// session is a SOCKS 6 session (§7.3). It outlives connections and, held in
// the gateway's StateStore, reloads.
type session struct {
	id    []byte
	idHex string
	user  string

	mu       sync.Mutex
	lastUsed time.Time
	// active counts the session's open connections; a session in use never
	// expires.
	active int
	window *s6.TokenWindow
	// backlogs are the listening BIND sockets with a Listen Backlog,
	// by their listening address.
	backlogs map[string]*backlog
}

// backlog is a listening BIND socket with a backlog and its control
// connection; both close together.
type backlog struct {
	b     gateway.Binding
	ctrl  net.Conn
	route *gateway.Route
}

// hold marks a connection of the session as open; the returned function
// marks it closed.
func (s *session) hold(now time.Time) func() {
	s.mu.Lock()
	s.active++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.active--
		s.lastUsed = time.Now()
		s.mu.Unlock()
	}
}

// sessionStore holds the sessions of one frontend.
type sessionStore struct {
	mu        sync.Mutex
	byID      map[string]*session
	lastSweep time.Time
}

func newSessionStore() *sessionStore { return &sessionStore{byID: map[string]*session{}} }

// create opens a session for user with a fresh random ID, or returns nil
// when the store is full (the proxy then "says nothing", §7.1).
func (s *sessionStore) create(user string, now time.Time) *session {
	id := make([]byte, sessionIDLen)
	if _, err := rand.Read(id); err != nil {
		return nil
	}
	sess := &session{id: id, idHex: hex.EncodeToString(id), user: user, lastUsed: now, backlogs: map[string]*backlog{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		return nil
	}
	s.byID[string(id)] = sess
	return sess
}

// lookup returns the live session with the ID and marks it used, or nil for
// an unknown, expired or revoked one (a user no longer configured).
func (s *sessionStore) lookup(id []byte, now time.Time, idle time.Duration, userOK func(string) bool) *session {
	s.mu.Lock()
	if idle > 0 && now.Sub(s.lastSweep) > idle/4 {
		s.sweepLocked(now, idle)
	}
	sess := s.byID[string(id)]
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	sess.mu.Lock()
	expired := idle > 0 && sess.active == 0 && now.Sub(sess.lastUsed) > idle
	sess.lastUsed = now
	sess.mu.Unlock()
	if expired || !userOK(sess.user) {
		s.remove(sess)
		return nil
	}
	return sess
}

// remove ends a session and closes its listening backlogs with their
// control connections.
func (s *sessionStore) remove(sess *session) {
	s.mu.Lock()
	if s.byID[string(sess.id)] == sess {
		delete(s.byID, string(sess.id))
	}
	s.mu.Unlock()
	sess.mu.Lock()
	bl := sess.backlogs
	sess.backlogs = map[string]*backlog{}
	sess.mu.Unlock()
	for _, b := range bl {
		b.b.Close()
		b.ctrl.Close()
	}
}

func (s *sessionStore) sweepLocked(now time.Time, idle time.Duration) {
	s.lastSweep = now
	for k, sess := range s.byID {
		sess.mu.Lock()
		dead := sess.active == 0 && now.Sub(sess.lastUsed) > idle
		sess.mu.Unlock()
		if dead {
			delete(s.byID, k)
		}
	}
}

func randomU32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
