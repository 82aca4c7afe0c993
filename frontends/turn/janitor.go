package turn

import (
	"context"
	"time"
)

// janitorTick returns how often the janitor runs: a quarter of the shortest
// lifetime, between 10 ms and 1 s.
func (f *Frontend) janitorTick() time.Duration {
	d := min(f.s.defLife, f.s.permLife, f.s.channelLife) / 4
	return min(max(d, 10*time.Millisecond), time.Second)
}

// janitor expires allocations, permissions, channels and the response
// caches of deleted allocations until ctx ends.
func (f *Frontend) janitor(ctx context.Context) {
	t := time.NewTicker(f.janitorTick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := f.clock.Now()
		ns := now.UnixNano()
		for _, a := range f.st.snapshot() {
			if a.expires.Load() <= ns {
				a.close(errExpired)
				continue
			}
			a.purge(ns)
		}
		f.st.purgeTombs(now)
	}
}
