package gateway

import (
	"slices"
	"sync"
	"time"
)

// workers runs connection handlers on goroutines kept between connections
// (most recently used first), so a handshake starts on a stack that earlier
// handshakes and dials already grew instead of growing a fresh 2 KiB stack
// by copying it several times. At most maxIdle wait, each for at most
// idleFor; stop ends them at once.
type workers struct {
	mu      sync.Mutex
	idle    []chan func()
	maxIdle int
	idleFor time.Duration
	stopped bool
	live    int // workers running or idle
}

func newWorkers(maxIdle int, idleFor time.Duration) *workers {
	return &workers{maxIdle: maxIdle, idleFor: idleFor}
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- f
		return
	}
	w.live++
	w.mu.Unlock()
	go w.loop(f)
}

func (w *workers) loop(f func()) {
	var (
		ch    chan func()
		timer *time.Timer
	)
	defer func() {
		w.mu.Lock()
		w.live--
		w.mu.Unlock()
	}()
	for f != nil {
		f()
		w.mu.Lock()
		if w.stopped || len(w.idle) >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		if ch == nil {
			ch = make(chan func(), 1)
			timer = time.NewTimer(w.idleFor)
		} else {
			timer.Reset(w.idleFor)
		}
		w.idle = append(w.idle, ch)
		w.mu.Unlock()
		select {
		case f = <-ch:
			timer.Stop()
		case <-timer.C:
			w.mu.Lock()
			if i := slices.Index(w.idle, ch); i >= 0 {
				w.idle = slices.Delete(w.idle, i, i+1)
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			f = <-ch // taken just now: a handler is on its way
		}
	}
}

// stop ends the idle workers; busy ones end after their handler.
func (w *workers) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	for _, ch := range w.idle {
		ch <- nil
	}
	w.idle = nil
}
