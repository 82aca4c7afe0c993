package gateway

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tracker counts what is open per client IP, per user and in total, holds
// the per-user bandwidth limiters, and can revoke every session of a user. One
// Tracker lives for the whole process, so limits hold across reloads.
type Tracker struct {
	mu        sync.Mutex
	conns     int
	perIP     map[netip.Addr]int
	perUser   map[string]int
	assocs    int
	assocUser map[string]int
	allocUser map[string]int
	sessions  map[string]map[*sessionEntry]struct{}
	limiters  map[string]*userLimiter
	authFail  map[netip.Addr]*rate.Limiter
}

type sessionEntry struct{ cancel context.CancelCauseFunc }

type userLimiter struct {
	rate     int64
	up, down *rate.Limiter
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{
		perIP: map[netip.Addr]int{}, perUser: map[string]int{}, assocUser: map[string]int{},
		allocUser: map[string]int{}, sessions: map[string]map[*sessionEntry]struct{}{},
		limiters: map[string]*userLimiter{}, authFail: map[netip.Addr]*rate.Limiter{},
	}
}

// LimitError is the error for a request over a limit; Limit names it for the
// metric label.
type LimitError struct {
	Limit string
	Err   error
}

func (e *LimitError) Error() string { return "limit " + e.Limit + " reached" }
func (e *LimitError) Unwrap() error { return e.Err }

func overLimit(name string, r Reason) error {
	return &LimitError{Limit: name, Err: &Error{Reason: r, Op: "limits"}}
}

// AcquireConn admits a client connection from ip under the total and per-IP
// limits. The release function must be called once when it closes.
func (t *Tracker) AcquireConn(l *Limits, ip netip.Addr) (release func(), err error) {
	ip = ip.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	if l.MaxSessions > 0 && t.conns >= l.MaxSessions {
		return nil, overLimit("sessions", ReasonCapacityExhausted)
	}
	if l.MaxSessionsPerIP > 0 && t.perIP[ip] >= l.MaxSessionsPerIP {
		return nil, overLimit("sessions_per_ip", ReasonQuotaExceeded)
	}
	t.conns++
	t.perIP[ip]++
	return onceFunc(func() {
		t.mu.Lock()
		t.conns--
		if t.perIP[ip]--; t.perIP[ip] <= 0 {
			delete(t.perIP, ip)
		}
		t.mu.Unlock()
	}), nil
}

// AcquireUser admits an authenticated session of user under the per-user
// limit and registers it for revocation: the returned context is cancelled
// when the user is revoked. Anonymous sessions ("" user) are not limited.
func (t *Tracker) AcquireUser(ctx context.Context, l *Limits, user string) (context.Context, func(), error) {
	t.mu.Lock()
	if user != "" && l.MaxSessionsPerUser > 0 && t.perUser[user] >= l.MaxSessionsPerUser {
		t.mu.Unlock()
		return ctx, nil, overLimit("sessions_per_user", ReasonQuotaExceeded)
	}
	t.perUser[user]++
	cctx, cancel := context.WithCancelCause(ctx)
	e := &sessionEntry{cancel: cancel}
	if t.sessions[user] == nil {
		t.sessions[user] = map[*sessionEntry]struct{}{}
	}
	t.sessions[user][e] = struct{}{}
	t.mu.Unlock()
	return cctx, onceFunc(func() {
		t.mu.Lock()
		if t.perUser[user]--; t.perUser[user] <= 0 {
			delete(t.perUser, user)
		}
		delete(t.sessions[user], e)
		if len(t.sessions[user]) == 0 {
			delete(t.sessions, user)
		}
		t.mu.Unlock()
		cancel(nil)
	}), nil
}

// Watch registers a long-lived resource of user (a TURN allocation) for
// revocation without counting it against the session limits: the returned
// context is cancelled with ErrRevoked when the user is revoked. Call the
// returned function when the resource ends.
func (t *Tracker) Watch(ctx context.Context, user string) (context.Context, func()) {
	cctx, cancel := context.WithCancelCause(ctx)
	e := &sessionEntry{cancel: cancel}
	t.mu.Lock()
	if t.sessions[user] == nil {
		t.sessions[user] = map[*sessionEntry]struct{}{}
	}
	t.sessions[user][e] = struct{}{}
	t.mu.Unlock()
	return cctx, onceFunc(func() {
		t.mu.Lock()
		delete(t.sessions[user], e)
		if len(t.sessions[user]) == 0 {
			delete(t.sessions, user)
		}
		t.mu.Unlock()
		cancel(nil)
	})
}

// ErrRevoked is the cancellation cause of sessions whose user was removed.
var ErrRevoked = NewError(ReasonAuthFailed, "reload", nil)

// Revoke cancels every registered session of user.
func (t *Tracker) Revoke(user string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for e := range t.sessions[user] {
		e.cancel(ErrRevoked)
		n++
	}
	return n
}

// Users lists users with registered sessions.
func (t *Tracker) Users() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.sessions))
	for u := range t.sessions {
		out = append(out, u)
	}
	return out
}

// AcquireAssoc admits a datagram association or binding (alloc true for TURN
// allocations, counted separately per user).
func (t *Tracker) AcquireAssoc(l *Limits, user string, alloc bool) (func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if l.MaxAssociations > 0 && t.assocs >= l.MaxAssociations {
		return nil, overLimit("associations", ReasonCapacityExhausted)
	}
	per, max, name := t.assocUser, l.MaxAssociationsPerUser, "associations_per_user"
	if alloc {
		per, max, name = t.allocUser, l.MaxAllocationsPerUser, "allocations_per_user"
	}
	if user != "" && max > 0 && per[user] >= max {
		return nil, overLimit(name, ReasonQuotaExceeded)
	}
	t.assocs++
	per[user]++
	return onceFunc(func() {
		t.mu.Lock()
		t.assocs--
		if per[user]--; per[user] <= 0 {
			delete(per, user)
		}
		t.mu.Unlock()
	}), nil
}

// Associations returns how many associations and bindings are open.
func (t *Tracker) Associations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.assocs
}

// Limiters returns the user's shared up and down bandwidth limiters, or nils
// when bandwidth is unlimited. The bucket holds 50 ms of traffic.
func (t *Tracker) Limiters(l *Limits, user string) (up, down *rate.Limiter) {
	if l.BandwidthPerUser <= 0 {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ul := t.limiters[user]
	if ul == nil || ul.rate != l.BandwidthPerUser {
		burst := int(max(l.BandwidthPerUser/20, 1500))
		ul = &userLimiter{
			rate: l.BandwidthPerUser,
			up:   rate.NewLimiter(rate.Limit(l.BandwidthPerUser), burst),
			down: rate.NewLimiter(rate.Limit(l.BandwidthPerUser), burst),
		}
		t.limiters[user] = ul
	}
	return ul.up, ul.down
}

// AuthAllowed reports whether ip may attempt authentication now: after
// AuthFailuresPerIP failures within a minute it is refused until the bucket
// refills.
func (t *Tracker) AuthAllowed(l *Limits, ip netip.Addr) bool {
	if l.AuthFailuresPerIP <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.authFail[ip.Unmap()]
	return lim == nil || lim.Tokens() >= 1
}

// AuthFailed records a failed authentication from ip.
func (t *Tracker) AuthFailed(l *Limits, ip netip.Addr) {
	if l.AuthFailuresPerIP <= 0 {
		return
	}
	ip = ip.Unmap()
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.authFail[ip]
	if lim == nil {
		if len(t.authFail) > 65536 {
			for k, v := range t.authFail {
				if v.Tokens() >= float64(v.Burst()) {
					delete(t.authFail, k)
				}
			}
		}
		lim = rate.NewLimiter(rate.Every(time.Minute/time.Duration(l.AuthFailuresPerIP)), l.AuthFailuresPerIP)
		t.authFail[ip] = lim
	}
	lim.Allow()
}

func onceFunc(f func()) func() {
	var once sync.Once
	return func() { once.Do(f) }
}
