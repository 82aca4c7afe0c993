package gateway

import (
	"context"
	"sync"
)

// Tail is the clean-up of one client connection: functions run in reverse
// order of registration when the connection is done. That is when its
// handler returns, unless the handler handed the connection to a detached
// relay (Runtime.RelayStreamThen): then the relay runs the Tail when it
// ends, and no goroutine waits for it meanwhile — an idle relayed session
// holds no goroutine stack at all.
//
// The gateway's listeners give every connection a Tail in its context;
// frontends register their clean-up with Defer instead of defer when it
// must outlive the handler.
type Tail struct {
	mu       sync.Mutex
	fns      []func()
	detached bool
	done     bool
}

type tailKey struct{}

// WithTail returns ctx carrying a new Tail.
func WithTail(ctx context.Context) (context.Context, *Tail) {
	t := &Tail{}
	return context.WithValue(ctx, tailKey{}, t), t
}

// TailOf returns ctx's Tail, or nil.
func TailOf(ctx context.Context) *Tail {
	t, _ := ctx.Value(tailKey{}).(*Tail)
	return t
}

// EnsureTail returns ctx's Tail, or a new one in a derived context when ctx
// has none; own says the caller made it and must call Finish.
func EnsureTail(ctx context.Context) (_ context.Context, t *Tail, own bool) {
	if t := TailOf(ctx); t != nil {
		return ctx, t, false
	}
	ctx, t = WithTail(ctx)
	return ctx, t, true
}

// Defer registers f to run when the connection is done.
func (t *Tail) Defer(f func()) {
	t.mu.Lock()
	t.fns = append(t.fns, f)
	t.mu.Unlock()
}

// Finish runs the clean-up now, unless a detached relay owns the
// connection (then the relay runs it when it ends). The creator of the
// Tail calls it when the handler returns.
func (t *Tail) Finish() {
	t.mu.Lock()
	detached := t.detached
	t.mu.Unlock()
	if !detached {
		t.run()
	}
}

// Handoff takes the connection's clean-up from the handler, for a session
// that lives on in goroutines the caller starts (a UDP association held by
// its control connection, whose readers may end while idle and resume):
// the handler may return at once, and the returned function runs the
// Tail, once, when the session is over. The session's goroutines then
// have stacks only as deep as their own work, not the handshake's frames
// in the worker that accepted the connection. Without a Tail in ctx it
// returns a function that does nothing.
func Handoff(ctx context.Context) (finish func()) {
	t := TailOf(ctx)
	if t == nil {
		return func() {}
	}
	t.detach()
	return t.run
}

// detach hands the clean-up to whoever calls run next.
func (t *Tail) detach() {
	t.mu.Lock()
	t.detached = true
	t.mu.Unlock()
}

// run runs the registered functions once, last first.
func (t *Tail) run() {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done = true
	fns := t.fns
	t.fns = nil
	t.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
