package gateway

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// NewResolver builds the resolver a `resolver` block describes: the system
// resolver by default, or the listed servers; with a short answer cache.
func NewResolver(c ResolverConfig) Resolver {
	timeout, _ := ParseDuration(c.Timeout, c.TimeoutRange, 5*time.Second)
	ttl, _ := ParseDuration(c.Cache, c.CacheRange, 30*time.Second)
	r := &net.Resolver{}
	if len(c.Servers) > 0 {
		servers := make([]string, 0, len(c.Servers))
		for _, s := range c.Servers {
			if ap, err := netip.ParseAddrPort(s); err == nil {
				servers = append(servers, ap.String())
			} else if ip, err := netip.ParseAddr(s); err == nil {
				servers = append(servers, netip.AddrPortFrom(ip, 53).String())
			}
		}
		var next atomic.Uint32
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			return d.DialContext(ctx, network, servers[int(next.Add(1))%len(servers)])
		}}
	}
	return &cachingResolver{r: r, timeout: timeout, ttl: ttl, cache: map[cacheKey]cacheEntry{}}
}

type cacheKey struct{ network, host string }

type cacheEntry struct {
	addrs   []netip.Addr
	err     error
	expires time.Time
}

// cachingResolver keeps answers for a short time, so a burst of requests for
// one name costs one lookup.
type cachingResolver struct {
	r       *net.Resolver
	timeout time.Duration
	ttl     time.Duration
	mu      sync.Mutex
	cache   map[cacheKey]cacheEntry
}

func (c *cachingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	k := cacheKey{network, host}
	now := time.Now()
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.cache[k]
		c.mu.Unlock()
		if ok && now.Before(e.expires) {
			return e.addrs, e.err
		}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	addrs, err := c.r.LookupNetIP(ctx, network, host)
	if c.ttl > 0 && (err == nil || isNotFound(err)) {
		c.mu.Lock()
		if len(c.cache) > 4096 {
			for kk, e := range c.cache {
				if now.After(e.expires) {
					delete(c.cache, kk)
				}
			}
		}
		c.cache[k] = cacheEntry{addrs: addrs, err: err, expires: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return addrs, err
}

func isNotFound(err error) bool {
	de, ok := err.(*net.DNSError)
	return ok && de.IsNotFound
}
