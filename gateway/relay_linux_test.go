package gateway

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readSyscalls is this process's count of read system calls (syscr in
// /proc/self/io).
func readSyscalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no syscr in /proc/self/io")
	return 0
}

// A small chunk costs the relay one read: a read that comes back short has
// drained the socket, and the direction waits for the next one without
// reading again to find it empty. Chunks go one at a time (each read at the
// far end before the next is sent); the far end reads each with exactly
// one read after poll says it is there. Two reads per chunk in the relay
// would make it at least 3 per chunk in all.
func TestRelayOneReadPerSmallChunk(t *testing.T) {
	r := startRelay(t, context.Background(), RelayOptions{})
	rc, err := r.remote.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	chunk := []byte("sixteen bytes!!!")
	got := make([]byte, 64)
	roundTrip := func() {
		if _, err := r.client.Write(chunk); err != nil {
			t.Fatal(err)
		}
		var n int
		var rerr error
		rc.Control(func(fd uintptr) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			// The runtime's preemption signal (SIGURG) interrupts poll(2).
			for rerr = unix.EINTR; rerr == unix.EINTR; {
				_, rerr = unix.Poll(pfd, 5000)
			}
			if rerr == nil {
				n, rerr = unix.Read(int(fd), got)
			}
		})
		if rerr != nil || !bytes.Equal(got[:n], chunk) {
			t.Fatalf("far end read %q, %v", got[:n], rerr)
		}
	}
	for range 20 { // warm up: goroutines, pools
		roundTrip()
	}
	const chunks = 300
	before := readSyscalls(t)
	for range chunks {
		roundTrip()
	}
	perChunk := float64(readSyscalls(t)-before) / chunks
	t.Logf("%.2f read system calls per chunk (relay and far end)", perChunk)
	if perChunk >= 2.5 {
		t.Errorf("%.2f reads per chunk: the relay reads more than once per small chunk", perChunk)
	}
	r.client.CloseWrite()
	r.remote.CloseWrite()
	r.wait(t)
}

// A direction stuck writing small chunks to a peer that reads nothing must
// not hold up the teardown: cancelling the relay closes both sockets and
// Relay returns. (Writing from inside the poller's read callback, a
// blocking write would keep the source socket's Close waiting for the
// callback, and the callback waiting for the other socket's Close.)
func TestRelayTeardownWhileWriteBlocked(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var up atomic.Int64
	r := startRelay(t, ctx, RelayOptions{OnBytes: func(d Direction, n int) {
		if d == Up {
			up.Add(int64(n))
		}
	}})
	r.remote.SetReadBuffer(4 << 10) // the far end reads nothing
	stop := make(chan struct{})
	wrote := make(chan int64, 1)
	go func() {
		chunk := bytes.Repeat([]byte("x"), 8000) // reads below a full buffer: no splice
		var n int64
		defer func() { wrote <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.client.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
			k, err := r.client.Write(chunk)
			n += int64(k)
			if err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// Wait until the relay's socket buffers towards the far end are full:
	// the client's writes stop going through.
	deadline := time.Now().Add(20 * time.Second)
	var last int64 = -1
	for {
		time.Sleep(200 * time.Millisecond)
		st := up.Load()
		if st == last || time.Now().After(deadline) {
			break
		}
		last = st
	}
	close(stop)
	<-wrote
	cancel()
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay did not end after its context was cancelled while a write was blocked")
	}
}

// A bulk transfer (spliced) that stops without EOF leaves the idle,
// parked session holding no splice pipe.
func TestRelayBulkThenIdleReleasesPipe(t *testing.T) {
	parkAfter.set(200 * time.Millisecond)
	defer parkAfter.set(0)
	r := startRelay(t, context.Background(), RelayOptions{})
	gcPipes := func() {
		for range 3 { // Go's spare splice pipes: see TestRelayIdleResources
			runtime.GC()
			time.Sleep(30 * time.Millisecond)
		}
	}
	gcPipes()
	pipes0 := countPipes(t)
	const total = 64 << 20
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, r.remote, total)
		done <- err
	}()
	buf := bytes.Repeat([]byte("b"), 256<<10)
	for sent := 0; sent < total; sent += len(buf) {
		if _, err := r.client.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Idle now, without EOF: parked within a deadline or two.
	time.Sleep(800 * time.Millisecond)
	gcPipes()
	if extra := countPipes(t) - pipes0; extra > 0 {
		t.Errorf("the idle session still holds %d pipe descriptors", extra)
	}
	r.client.CloseWrite()
	r.remote.CloseWrite()
	r.wait(t)
}

// countPipes counts this process's pipe descriptors.
func countPipes(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "pipe:") {
			n++
		}
	}
	return n
}
