package gateway

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestWorkersReuseAndStop(t *testing.T) {
	w := newWorkers(4, time.Minute)
	var wg sync.WaitGroup
	// Sequential handlers run on one worker.
	for range 100 {
		wg.Add(1)
		w.run(wg.Done)
		wg.Wait()
		for idle := 0; idle != 1; { // the worker files itself after the handler
			w.mu.Lock()
			idle = len(w.idle)
			w.mu.Unlock()
			runtime.Gosched()
		}
	}
	if g := w.count(); g != 1 {
		t.Fatalf("%d workers after 100 sequential handlers, want 1", g)
	}
	// A burst of 20 blocked handlers needs 20; 4 stay idle afterwards.
	release := make(chan struct{})
	for range 20 {
		wg.Add(1)
		w.run(func() { <-release; wg.Done() })
	}
	if g := w.count(); g != 20 {
		t.Fatalf("%d workers for 20 blocked handlers, want 20", g)
	}
	close(release)
	wg.Wait()
	waitWorkers(t, w, 4)
	w.stop()
	waitWorkers(t, w, 0)
	// After stop, handlers still run (each on its own goroutine).
	wg.Add(1)
	w.run(wg.Done)
	wg.Wait()
	waitWorkers(t, w, 0)
}

func (w *workers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live
}

func waitWorkers(t *testing.T, w *workers, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for w.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers, want %d", w.count(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestWorkersIdleExpiry(t *testing.T) {
	w := newWorkers(4, 50*time.Millisecond)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 3 {
		wg.Add(1)
		w.run(func() { <-release; wg.Done() })
	}
	close(release)
	wg.Wait()
	waitWorkers(t, w, 0) // all three expire after 50 ms idle
	w.mu.Lock()
	n := len(w.idle)
	w.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d idle entries left", n)
	}
}
