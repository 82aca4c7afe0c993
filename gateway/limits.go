package gateway

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Limits bound what clients may use. Zero counts mean unlimited; zero
// durations disable the timer.
type Limits struct {
	HandshakeTimeout       time.Duration
	MaxSessions            int
	MaxSessionsPerIP       int
	MaxSessionsPerUser     int
	MaxAssociations        int
	MaxAssociationsPerUser int
	MaxAllocationsPerUser  int
	StreamIdleTimeout      time.Duration
	AssocIdleTimeout       time.Duration
	FirstDatagramTimeout   time.Duration
	SessionIdleTimeout     time.Duration
	// BandwidthPerUser is bytes per second per direction, shared by all of a
	// user's sessions; 0 is unlimited.
	BandwidthPerUser int64
	// AuthFailuresPerIP is how many failed authentications a client IP may
	// make per minute before it is refused for a while.
	AuthFailuresPerIP int
}

// DefaultLimits are the limits when the configuration sets none.
func DefaultLimits() Limits {
	return Limits{
		HandshakeTimeout:       10 * time.Second,
		MaxSessions:            20000,
		MaxSessionsPerIP:       0,
		MaxSessionsPerUser:     0,
		MaxAssociations:        10000,
		MaxAssociationsPerUser: 256,
		MaxAllocationsPerUser:  256,
		StreamIdleTimeout:      30 * time.Minute,
		AssocIdleTimeout:       5 * time.Minute,
		FirstDatagramTimeout:   2 * time.Minute,
		SessionIdleTimeout:     10 * time.Minute,
		AuthFailuresPerIP:      30,
	}
}

// LimitsConfig is a `limits` block, at the top level or inside a frontend.
// Unset attributes inherit.
type LimitsConfig struct {
	HandshakeTimeout       *string   `hcl:"handshake_timeout,optional"`
	HandshakeTimeoutRange  hcl.Range `hcl:"handshake_timeout,attr_range"`
	MaxSessions            *int      `hcl:"max_sessions,optional"`
	MaxSessionsPerIP       *int      `hcl:"max_sessions_per_ip,optional"`
	MaxSessionsPerUser     *int      `hcl:"max_sessions_per_user,optional"`
	MaxAssociations        *int      `hcl:"max_associations,optional"`
	MaxAssociationsPerUser *int      `hcl:"max_associations_per_user,optional"`
	MaxAllocationsPerUser  *int      `hcl:"max_allocations_per_user,optional"`
	StreamIdleTimeout      *string   `hcl:"idle_timeout,optional"`
	StreamIdleRange        hcl.Range `hcl:"idle_timeout,attr_range"`
	AssocIdleTimeout       *string   `hcl:"udp_idle_timeout,optional"`
	AssocIdleRange         hcl.Range `hcl:"udp_idle_timeout,attr_range"`
	FirstDatagramTimeout   *string   `hcl:"first_datagram_timeout,optional"`
	FirstDatagramRange     hcl.Range `hcl:"first_datagram_timeout,attr_range"`
	SessionIdleTimeout     *string   `hcl:"session_idle_timeout,optional"`
	SessionIdleRange       hcl.Range `hcl:"session_idle_timeout,attr_range"`
	BandwidthPerUser       *string   `hcl:"bandwidth_per_user,optional"`
	BandwidthRange         hcl.Range `hcl:"bandwidth_per_user,attr_range"`
	AuthFailuresPerIP      *int      `hcl:"auth_failures_per_ip,optional"`
	DefRange               hcl.Range `hcl:",def_range"`
}

// Compile applies the block over base. A nil block returns base.
func (lc *LimitsConfig) Compile(base Limits) (Limits, hcl.Diagnostics) {
	if lc == nil {
		return base, nil
	}
	l := base
	var diags, d hcl.Diagnostics
	dur := func(s *string, r hcl.Range, into *time.Duration) {
		*into, d = ParseDuration(s, r, *into)
		diags = append(diags, d...)
	}
	dur(lc.HandshakeTimeout, lc.HandshakeTimeoutRange, &l.HandshakeTimeout)
	dur(lc.StreamIdleTimeout, lc.StreamIdleRange, &l.StreamIdleTimeout)
	dur(lc.AssocIdleTimeout, lc.AssocIdleRange, &l.AssocIdleTimeout)
	dur(lc.FirstDatagramTimeout, lc.FirstDatagramRange, &l.FirstDatagramTimeout)
	dur(lc.SessionIdleTimeout, lc.SessionIdleRange, &l.SessionIdleTimeout)
	count := func(v *int, into *int) {
		if v == nil {
			return
		}
		if *v < 0 {
			diags = append(diags, errAt(lc.DefRange, "Invalid limit", "Limits are 0 (unlimited) or positive."))
			return
		}
		*into = *v
	}
	count(lc.MaxSessions, &l.MaxSessions)
	count(lc.MaxSessionsPerIP, &l.MaxSessionsPerIP)
	count(lc.MaxSessionsPerUser, &l.MaxSessionsPerUser)
	count(lc.MaxAssociations, &l.MaxAssociations)
	count(lc.MaxAssociationsPerUser, &l.MaxAssociationsPerUser)
	count(lc.MaxAllocationsPerUser, &l.MaxAllocationsPerUser)
	count(lc.AuthFailuresPerIP, &l.AuthFailuresPerIP)
	if lc.BandwidthPerUser != nil {
		n, err := ParseBytes(*lc.BandwidthPerUser)
		if err != nil {
			diags = append(diags, errAt(lc.BandwidthRange, "Invalid bandwidth", fmt.Sprintf("%v; write bytes per second such as \"10MiB\" or \"500KB\".", err)))
		} else {
			l.BandwidthPerUser = n
		}
	}
	if l.HandshakeTimeout == 0 {
		diags = append(diags, errAt(lc.HandshakeTimeoutRange, "Handshake timeout required", "handshake_timeout cannot be 0: a silent client would hold its connection forever."))
	}
	return l, diags
}

// ParseBytes parses a byte count with an optional unit: B, KB, MB, GB
// (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(s[:i]), strings.TrimSpace(s[i:])
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
	m, ok := mult[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q", unit)
	}
	return int64(n * m), nil
}
