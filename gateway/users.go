package gateway

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// User is one configured user. Exactly how it may authenticate depends on
// which secrets it has: Password (plain, compared in constant time),
// PasswordHash (bcrypt; not usable by TURN) or TURNKey (MD5 of
// user:realm:password; usable by TURN only).
type User struct {
	Name         string
	Password     string
	PasswordHash []byte
	TURNKey      []byte
}

// UserSet is a named `users` block.
type UserSet struct {
	Name  string
	users map[string]*User

	mu    sync.Mutex
	cache map[[32]byte]time.Time // bcrypt successes, by hash of user+password
	now   func() time.Time
}

// bcryptCacheTTL is how long a verified bcrypt password is remembered, so
// reconnects do not pay the hash cost each time.
const bcryptCacheTTL = 5 * time.Minute

// NewUserSet returns a user set.
func NewUserSet(name string, users []*User, now func() time.Time) *UserSet {
	if now == nil {
		now = time.Now
	}
	s := &UserSet{Name: name, users: map[string]*User{}, cache: map[[32]byte]time.Time{}, now: now}
	for _, u := range users {
		s.users[u.Name] = u
	}
	return s
}

// Lookup returns the user by name.
func (s *UserSet) Lookup(name string) (*User, bool) {
	if s == nil {
		return nil, false
	}
	u, ok := s.users[name]
	return u, ok
}

// Names returns the user names.
func (s *UserSet) Names() []string {
	out := make([]string, 0, len(s.users))
	for n := range s.users {
		out = append(out, n)
	}
	return out
}

// Verify checks a user name and password. Unknown users cost about as much
// as known ones, so timing does not reveal which names exist.
func (s *UserSet) Verify(name, password string) bool {
	u, ok := s.Lookup(name)
	if !ok {
		subtle.ConstantTimeCompare([]byte(password), []byte(password))
		return false
	}
	switch {
	case u.Password != "":
		return subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
	case len(u.PasswordHash) > 0:
		return s.verifyHash(u, password)
	}
	return false
}

func (s *UserSet) verifyHash(u *User, password string) bool {
	h := sha256.New()
	h.Write(u.PasswordHash)
	h.Write([]byte{0})
	h.Write([]byte(u.Name))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var key [32]byte
	h.Sum(key[:0])
	now := s.now()
	s.mu.Lock()
	exp, hit := s.cache[key]
	s.mu.Unlock()
	if hit && now.Before(exp) {
		return true
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) != nil {
		return false
	}
	s.mu.Lock()
	if len(s.cache) > 10000 {
		for k, e := range s.cache {
			if !now.Before(e) {
				delete(s.cache, k)
			}
		}
	}
	s.cache[key] = now.Add(bcryptCacheTTL)
	s.mu.Unlock()
	return true
}

// TURNKey returns the long-term credential key MD5(user:realm:password) for
// TURN, from the plain password or the configured turn_key.
func (s *UserSet) TURNKey(name, realm string) ([]byte, bool) {
	u, ok := s.Lookup(name)
	if !ok {
		return nil, false
	}
	if len(u.TURNKey) > 0 {
		return u.TURNKey, true
	}
	if u.Password != "" {
		k := md5.Sum([]byte(u.Name + ":" + realm + ":" + u.Password))
		return k[:], true
	}
	return nil, false
}

// TURNCapable reports whether every user of the set can authenticate to TURN
// (has a plain password or a turn_key).
func (s *UserSet) TURNCapable() (bad []string) {
	for n, u := range s.users {
		if u.Password == "" && len(u.TURNKey) == 0 {
			bad = append(bad, n)
		}
	}
	return bad
}

// ParseTURNKey decodes a hex turn_key.
func ParseTURNKey(s string) ([]byte, error) { return hex.DecodeString(s) }
