package gateway

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestWorkersReuseAndStop(t *testing.T) {
	w := newWorkers(4)
	g0 := runtime.NumGoroutine()
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
	if g := runtime.NumGoroutine() - g0; g != 1 {
		t.Fatalf("%d workers after 100 sequential handlers, want 1", g)
	}
	// A burst of 20 blocked handlers needs 20; 4 stay idle afterwards.
	release := make(chan struct{})
	for range 20 {
		wg.Add(1)
		w.run(func() { <-release; wg.Done() })
	}
	if g := runtime.NumGoroutine() - g0; g != 20 {
		t.Fatalf("%d goroutines for 20 blocked handlers, want 20", g)
	}
	close(release)
	wg.Wait()
	waitGoroutines(t, g0+4)
	w.stop()
	waitGoroutines(t, g0)
	// After stop, handlers still run (each on its own goroutine).
	wg.Add(1)
	w.run(wg.Done)
	wg.Wait()
	waitGoroutines(t, g0)
}

func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
