package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tcpPair returns two connected TCP sockets on loopback.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		ch <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-ch
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

type relayRig struct {
	client, remote *net.TCPConn // the two outer ends
	done           chan struct{}
	stats          RelayStats
	err            error
}

func startRelay(t testing.TB, ctx context.Context, o RelayOptions) *relayRig {
	client, cIn := tcpPair(t)
	rOut, remote := tcpPair(t)
	r := &relayRig{client: client, remote: remote, done: make(chan struct{})}
	go func() {
		r.stats, r.err = Relay(ctx, cIn, rOut, o)
		close(r.done)
	}()
	return r
}

func (r *relayRig) wait(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end")
	}
}

func TestRelayHalfCloseBothWays(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{})
	if _, err := r.client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	r.client.CloseWrite()
	got, err := io.ReadAll(r.remote)
	if err != nil || string(got) != "hello" {
		t.Fatalf("remote read %q, %v", got, err)
	}
	// The other direction still works after the first half-closed.
	r.remote.Write([]byte("world!"))
	r.remote.CloseWrite()
	got, err = io.ReadAll(r.client)
	if err != nil || string(got) != "world!" {
		t.Fatalf("client read %q, %v", got, err)
	}
	r.wait(t)
	if r.err != nil || r.stats.Up != 5 || r.stats.Down != 6 {
		t.Fatalf("stats %+v err %v", r.stats, r.err)
	}
}

// countingConn counts the half-closes the relay makes.
type countingConn struct {
	*net.TCPConn
	closeWrites atomic.Int32
}

func (c *countingConn) CloseWrite() error {
	c.closeWrites.Add(1)
	return c.TCPConn.CloseWrite()
}

// The direction that ends last does not half-close: the relay closes both
// sockets next, which sends the FIN. The peer still reads every byte and then
// EOF.
func TestRelayLastDirectionClosesWithoutShutdown(t *testing.T) {
	client, cIn := tcpPair(t)
	rOut, remote := tcpPair(t)
	in, out := &countingConn{TCPConn: cIn}, &countingConn{TCPConn: rOut}
	done := make(chan struct{})
	var st RelayStats
	var rerr error
	go func() {
		st, rerr = Relay(context.Background(), in, out, RelayOptions{})
		close(done)
	}()
	client.Write([]byte("ping"))
	client.CloseWrite()
	if got, err := io.ReadAll(remote); err != nil || string(got) != "ping" {
		t.Fatalf("remote read %q, %v", got, err)
	}
	// The EOF reached the remote just before the up direction counted
	// itself out; give it that moment, or the down direction may still
	// see it running (and half-close, which is right then too).
	time.Sleep(200 * time.Millisecond)
	remote.Write([]byte("pong!"))
	remote.CloseWrite()
	if got, err := io.ReadAll(client); err != nil || string(got) != "pong!" {
		t.Fatalf("client read %q, %v", got, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not end")
	}
	if rerr != nil || st.Up != 4 || st.Down != 5 {
		t.Fatalf("stats %+v err %v", st, rerr)
	}
	if n := out.closeWrites.Load(); n != 1 {
		t.Errorf("remote side half-closed %d times, want 1 (the first direction to end)", n)
	}
	if n := in.closeWrites.Load(); n != 0 {
		t.Errorf("client side half-closed %d times, want 0 (the last direction closes instead)", n)
	}
}

func TestRelayRemoteFirstHalfClose(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{})
	r.remote.Write([]byte("banner"))
	r.remote.CloseWrite()
	got, _ := io.ReadAll(r.client)
	if string(got) != "banner" {
		t.Fatalf("client read %q", got)
	}
	r.client.Write([]byte("bye"))
	r.client.CloseWrite()
	got, _ = io.ReadAll(r.remote)
	if string(got) != "bye" {
		t.Fatalf("remote read %q", got)
	}
	r.wait(t)
}

func TestRelayResetTearsDownBoth(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{})
	r.remote.SetLinger(0)
	r.remote.Close() // RST
	r.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(r.client); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("client read: %v", err)
	}
	r.wait(t)
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

func TestRelayContextCancelClosesBoth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := startRelay(t, ctx, RelayOptions{})
	cancel()
	r.wait(t)
	r.client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := r.client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client still open")
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{IdleTimeout: 150 * time.Millisecond})
	// Activity in one direction keeps the whole relay alive.
	for range 4 {
		r.client.Write([]byte("x"))
		buf := make([]byte, 1)
		if _, err := io.ReadFull(r.remote, buf); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond)
	}
	select {
	case <-r.done:
		t.Fatal("relay ended while active")
	default:
	}
	r.wait(t)
	if !errors.Is(r.err, ErrIdle) {
		t.Fatalf("err = %v, want ErrIdle", r.err)
	}
}

func TestRelayBulkIntegrity(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{})
	const size = 32 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	go func() {
		r.client.Write(data)
		r.client.CloseWrite()
	}()
	h := sha256.New()
	n, err := io.Copy(h, r.remote)
	if err != nil || n != size {
		t.Fatalf("copied %d, %v", n, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("data corrupted")
	}
	r.remote.Close()
	r.wait(t)
	if r.stats.Up != size {
		t.Fatalf("up = %d", r.stats.Up)
	}
}

func TestRelayRateLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	const bps = 2 << 20
	lim := rate.NewLimiter(bps, bps/20)
	lim.WaitN(context.Background(), bps/20) // start with an empty bucket
	r := startRelay(t, context.Background(), RelayOptions{UpLimit: lim})
	const dur = 3 * time.Second
	go func() {
		buf := make([]byte, 64<<10)
		deadline := time.Now().Add(dur)
		for time.Now().Before(deadline) {
			if _, err := r.client.Write(buf); err != nil {
				return
			}
		}
		r.client.CloseWrite()
	}()
	start := time.Now()
	var got int64
	buf := make([]byte, 64<<10)
	for {
		r.remote.SetReadDeadline(start.Add(dur))
		n, err := r.remote.Read(buf)
		got += int64(n)
		if err != nil {
			break
		}
	}
	elapsed := time.Since(start).Seconds()
	rateGot := float64(got) / elapsed
	t.Logf("rate %.0f B/s over %.2fs (limit %d)", rateGot, elapsed, bps)
	if rateGot > bps*1.1 || rateGot < bps*0.9 {
		t.Fatalf("rate %.0f not within 10%% of %d", rateGot, bps)
	}
	r.remote.Close()
	r.client.Close()
	r.wait(t)
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestRelayIdleResources measures what an idle relayed session costs beyond
// its two sockets: file descriptors (pipes) and memory.
func TestRelayIdleResources(t *testing.T) {
	const n = 200
	runtime.GC()
	fd0 := countFDs(t)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	rigs := make([]*relayRig, n)
	for i := range rigs {
		rigs[i] = startRelay(t, ctx, RelayOptions{})
		// Move a little data so each direction has spliced once.
		rigs[i].client.Write([]byte("ping"))
		io.ReadFull(rigs[i].remote, make([]byte, 4))
		rigs[i].remote.Write([]byte("pong"))
		io.ReadFull(rigs[i].client, make([]byte, 4))
	}
	// Go keeps spare splice pipes in a sync.Pool shared by all sessions;
	// two collections empty it (finalizers close the pipes), so what remains
	// is what idle sessions themselves hold.
	for range 3 {
		runtime.GC()
		time.Sleep(30 * time.Millisecond)
	}
	fd1 := countFDs(t)
	runtime.ReadMemStats(&ms1)
	g1 := runtime.NumGoroutine()
	// Four sockets per rig: two outer ends (test side) and two relayed.
	extra := float64(fd1-fd0-4*n) / n
	heap := float64(ms1.HeapInuse+ms1.StackInuse-ms0.HeapInuse-ms0.StackInuse) / n
	t.Logf("per idle session: %.2f fds beyond its sockets, %.0f bytes heap+stack (test sockets included), %.1f goroutines",
		extra, heap, float64(g1-g0)/n)
	if extra > 0.05 {
		t.Errorf("idle sessions hold %.2f extra fds each (pipes parked in splice?)", extra)
	}
	cancel()
	for _, r := range rigs {
		r.wait(t)
	}
}

func BenchmarkRelayThroughput(b *testing.B) {
	r := startRelay(b, context.Background(), RelayOptions{})
	buf := make([]byte, 256<<10)
	b.SetBytes(int64(len(buf)))
	go func() {
		io.Copy(io.Discard, r.remote)
		r.remote.Close()
	}()
	b.ResetTimer()
	for range b.N {
		if _, err := r.client.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	r.client.CloseWrite()
	r.wait(b)
}

// BenchmarkRelayPingPong measures a 16-byte request/response through the
// relay: the small-message path (system calls per chunk dominate).
func BenchmarkRelayPingPong(b *testing.B) {
	r := startRelay(b, context.Background(), RelayOptions{})
	go func() {
		io.Copy(r.remote, r.remote)
		r.remote.Close()
	}()
	msg := make([]byte, 16)
	buf := make([]byte, 16)
	b.ResetTimer()
	for range b.N {
		if _, err := r.client.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r.client, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	r.client.CloseWrite()
	r.wait(b)
}
