package gateway

import (
	"context"
	"testing"
	"time"
)

// Handoff: the handler returns at once, Finish leaves the clean-up to
// whoever holds the returned function, which runs it once, from any
// goroutine; without a Tail the function does nothing.
func TestHandoff(t *testing.T) {
	ctx, tail := WithTail(context.Background())
	cleaned := 0
	tail.Defer(func() { cleaned++ })
	finish := Handoff(ctx)
	tail.Finish() // the handler returns
	if cleaned != 0 {
		t.Fatal("clean-up ran when the handler returned after a handoff")
	}
	done := make(chan struct{})
	go func() {
		time.Sleep(20 * time.Millisecond) // the session lives on elsewhere
		finish()
		finish()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("finish did not return")
	}
	if cleaned != 1 {
		t.Fatalf("clean-up ran %d times, want once", cleaned)
	}
	Handoff(context.Background())() // no Tail: nothing to run, no panic
}
