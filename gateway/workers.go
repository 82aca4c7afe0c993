package gateway

import "sync"

// workers runs connection handlers on goroutines kept between connections
// (most recently used first), so a handshake starts on a stack that earlier
// handshakes and dials already grew instead of growing a fresh 2 KiB stack
// by copying it several times. At most maxIdle wait; stop ends them.
type workers struct {
	mu      sync.Mutex
	idle    []chan func()
	maxIdle int
	stopped bool
}

func newWorkers(maxIdle int) *workers { return &workers{maxIdle: maxIdle} }

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
	w.mu.Unlock()
	go w.loop(f)
}

func (w *workers) loop(f func()) {
	var ch chan func()
	for f != nil {
		f()
		w.mu.Lock()
		if w.stopped || len(w.idle) >= w.maxIdle {
			w.mu.Unlock()
			return
		}
		if ch == nil {
			ch = make(chan func(), 1)
		}
		w.idle = append(w.idle, ch)
		w.mu.Unlock()
		f = <-ch
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
