package gateway

import (
	"context"
	"testing"
	"time"
)

// Detach: the handler returns at once, Finish leaves the clean-up to the
// detached goroutine, which runs it when its function returns; without a
// Tail the function runs in the caller.
func TestDetach(t *testing.T) {
	ctx, tail := WithTail(context.Background())
	cleaned := make(chan struct{})
	tail.Defer(func() { close(cleaned) })
	release := make(chan struct{})
	ran := make(chan struct{})
	Detach(ctx, func() {
		<-release
		close(ran)
	})
	tail.Finish() // the handler returns
	select {
	case <-cleaned:
		t.Fatal("clean-up ran while the detached function was still running")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case <-cleaned:
	case <-time.After(5 * time.Second):
		t.Fatal("clean-up did not run after the detached function returned")
	}
	<-ran

	inline := false
	Detach(context.Background(), func() { inline = true })
	if !inline {
		t.Error("without a Tail, Detach did not run the function before returning")
	}
}
