package gateway

import (
	"net"
	"net/netip"
	"sync"
)

// OwnAddrs is the set of the gateway's own sockets (listeners, the admin
// listener, relay sockets). They are never allowed as destinations, so no
// client can make the gateway loop into itself or reach /metrics through the
// proxy. Sockets bound to a wildcard address cover every local address.
type OwnAddrs struct {
	mu       sync.RWMutex
	exact    map[netip.AddrPort]int
	wildPort map[uint16]int
	local    map[netip.Addr]bool
}

// NewOwnAddrs returns a set that knows the host's interface addresses.
func NewOwnAddrs() *OwnAddrs {
	o := &OwnAddrs{exact: map[netip.AddrPort]int{}, wildPort: map[uint16]int{}, local: map[netip.Addr]bool{}}
	o.RefreshLocal()
	return o
}

// RefreshLocal re-reads the host's interface addresses.
func (o *OwnAddrs) RefreshLocal() {
	local := map[netip.Addr]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				local[p.Addr().Unmap()] = true
			}
		}
	}
	o.mu.Lock()
	o.local = local
	o.mu.Unlock()
}

// Add registers a bound socket address; a wildcard IP covers every local
// address with that port.
func (o *OwnAddrs) Add(ap netip.AddrPort) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ap.Addr().IsUnspecified() {
		o.wildPort[ap.Port()]++
		return
	}
	o.exact[normAP(ap)]++
}

// Remove unregisters an address added with Add.
func (o *OwnAddrs) Remove(ap netip.AddrPort) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ap.Addr().IsUnspecified() {
		if o.wildPort[ap.Port()]--; o.wildPort[ap.Port()] <= 0 {
			delete(o.wildPort, ap.Port())
		}
		return
	}
	k := normAP(ap)
	if o.exact[k]--; o.exact[k] <= 0 {
		delete(o.exact, k)
	}
}

// Contains reports whether ap is one of the gateway's own sockets.
func (o *OwnAddrs) Contains(ap netip.AddrPort) bool {
	if o == nil {
		return false
	}
	k := normAP(ap)
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.exact[k] > 0 {
		return true
	}
	if o.wildPort[k.Port()] > 0 {
		ip := k.Addr()
		return o.local[ip] || ip.IsLoopback() || ip.IsUnspecified()
	}
	// A socket bound to one loopback address is reachable as 127.x.y.z only
	// at that address, but 0.0.0.0 and :: reach local sockets too.
	if k.Addr().IsUnspecified() {
		for e := range o.exact {
			if e.Port() == k.Port() {
				return true
			}
		}
	}
	return false
}

func normAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
