package turn

import "time"

// Timer values of RFC 8656 (turn.md §4.11).
const (
	// DefaultLifetime is the allocation lifetime when the client asks for
	// none, and the minimum the server grants.
	DefaultLifetime = 600 * time.Second
	// MaxLifetime is the largest allocation lifetime the engine may grant.
	MaxLifetime = 3600 * time.Second
	// PermissionLifetime is the fixed lifetime of a permission.
	PermissionLifetime = 300 * time.Second
	// ChannelLifetime is the lifetime of a channel binding.
	ChannelLifetime = 600 * time.Second
	// ReservationLifetime is how long an EVEN-PORT R=1 reservation is held.
	ReservationLifetime = 30 * time.Second
	// ConnectTimeout is the least time an RFC 6062 Connect may take before
	// 447, and how long a peer connection waits for ConnectionBind.
	ConnectTimeout = 30 * time.Second
	// RetransmitCacheTime is how long an Allocate success must be kept for
	// byte-identical replay to retransmissions (STUN's 39.5 s, rounded up).
	RetransmitCacheTime = 40 * time.Second
)

// clampMax bounds a configured maximum lifetime to [DefaultLifetime,
// MaxLifetime]; zero means MaxLifetime.
func clampMax(max time.Duration) time.Duration {
	switch {
	case max <= 0 || max > MaxLifetime:
		return MaxLifetime
	case max < DefaultLifetime:
		return DefaultLifetime
	}
	return max
}

// grant applies RFC 8656's rule: the smaller of the request and the maximum,
// but never less than the default.
func grant(requested Lifetime, max time.Duration) time.Duration {
	d := requested.Duration()
	if m := clampMax(max); d > m {
		d = m
	}
	if d < DefaultLifetime {
		d = DefaultLifetime
	}
	return d
}

// AllocateLifetime returns the lifetime to grant an Allocate (turn.md §4.3):
// DefaultLifetime when LIFETIME is absent or 0, otherwise the request bounded
// to [DefaultLifetime, max]. max is the server's configured maximum, itself
// bounded to [DefaultLifetime, MaxLifetime] (0 means MaxLifetime). So 60
// gives 600 s and 7200 gives 3600 s.
func AllocateLifetime(requested Lifetime, present bool, max time.Duration) time.Duration {
	if !present || requested == 0 {
		return DefaultLifetime
	}
	return grant(requested, max)
}

// RefreshLifetime returns the lifetime a Refresh sets (turn.md §4.5): 0
// (delete) for LIFETIME 0, DefaultLifetime when absent, otherwise the request
// bounded to [DefaultLifetime, max] as in AllocateLifetime.
func RefreshLifetime(requested Lifetime, present bool, max time.Duration) time.Duration {
	switch {
	case !present:
		return DefaultLifetime
	case requested == 0:
		return 0
	}
	return grant(requested, max)
}
