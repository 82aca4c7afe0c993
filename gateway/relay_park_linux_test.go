package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// shortPark makes relays park after 30 ms and sweep every 100 ms.
func shortPark(t *testing.T) {
	t.Helper()
	parkAfter.set(30 * time.Millisecond)
	parkSweep.set(100 * time.Millisecond)
	t.Cleanup(func() { parkAfter.set(0); parkSweep.set(0) })
}

func parkedCount() int {
	parked.mu.Lock()
	defer parked.mu.Unlock()
	return len(parked.byTok)
}

// waitParked waits until n directions are parked.
func waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for parkedCount() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d directions parked, want %d", parkedCount(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// echoOnce writes msg at one end and reads it at the other.
func echoOnce(t *testing.T, from io.Writer, to io.Reader, msg []byte) {
	t.Helper()
	if _, err := from.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("relayed bytes differ")
	}
}

func TestRelayParksIdleDirections(t *testing.T) {
	shortPark(t)
	const n = 50
	g0 := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rigs := make([]*relayRig, n)
	for i := range rigs {
		rigs[i] = startRelay(t, ctx, RelayOptions{})
		echoOnce(t, rigs[i].client, rigs[i].remote, []byte("ping"))
		echoOnce(t, rigs[i].remote, rigs[i].client, []byte("pong"))
	}
	waitParked(t, 2*n)
	// Each relay keeps only its caller's goroutine (startRelay's).
	time.Sleep(20 * time.Millisecond)
	if g := runtime.NumGoroutine() - g0; g > n+2 {
		t.Fatalf("%d goroutines for %d parked relays, want about %d", g, n, n)
	}
	// Parked directions wake on data, both ways, small and bulk, and park
	// again.
	big := make([]byte, 4<<20)
	rand.Read(big)
	for _, r := range rigs[:5] {
		echoOnce(t, r.client, r.remote, []byte("again"))
		echoOnce(t, r.remote, r.client, []byte("back"))
		go r.client.Write(big)
		got := make([]byte, len(big))
		if _, err := io.ReadFull(r.remote, got); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("bulk after parking: %v", err)
		}
	}
	waitParked(t, 2*n)
	// Half-close while parked travels on.
	r := rigs[0]
	r.client.CloseWrite()
	if _, err := io.ReadAll(r.remote); err != nil {
		t.Fatal(err)
	}
	r.remote.CloseWrite()
	if _, err := io.ReadAll(r.client); err != nil {
		t.Fatal(err)
	}
	r.wait(t)
	if r.err != nil || r.stats.Up != 4+5+int64(len(big)) || r.stats.Down != 4+4 {
		t.Fatalf("stats %+v err %v", r.stats, r.err)
	}
	// Teardown wakes parked directions: every relay ends at once.
	cancel()
	t0 := time.Now()
	for _, r := range rigs[1:] {
		r.wait(t)
	}
	if d := time.Since(t0); d > time.Second {
		t.Fatalf("cancelled parked relays took %v to end", d)
	}
	waitParked(t, 0)
}

func TestRelayParkedIdleTimeout(t *testing.T) {
	shortPark(t)
	r := startRelay(t, context.Background(), RelayOptions{IdleTimeout: 300 * time.Millisecond})
	t0 := time.Now()
	echoOnce(t, r.client, r.remote, []byte("x"))
	waitParked(t, 2)
	r.wait(t)
	if d := time.Since(t0); d < 300*time.Millisecond || d > 700*time.Millisecond {
		t.Fatalf("idle relay ended after %v, want about 300ms", d)
	}
	if !errors.Is(r.err, ErrIdle) {
		t.Fatalf("err %v, want ErrIdle", r.err)
	}
}

// A socket closed by someone else while parked (a drain closing the
// client's connection) is found by the sweep.
func TestRelayParkedSocketClosedUnder(t *testing.T) {
	shortPark(t)
	client, cIn := tcpPair(t)
	rOut, remote := tcpPair(t)
	r := &relayRig{client: client, remote: remote, done: make(chan struct{})}
	go func() {
		r.stats, r.err = Relay(context.Background(), cIn, rOut, RelayOptions{})
		close(r.done)
	}()
	echoOnce(t, client, remote, []byte("x"))
	waitParked(t, 2)
	cIn.Close()
	r.wait(t)
	if _, err := remote.Read(make([]byte, 1)); err == nil {
		t.Fatal("the remote end stayed open")
	}
	waitParked(t, 0)
}

// A relay started with RelayThen and parked holds no goroutine at all; then
// runs once, after both connections are closed, and the Tail after it.
func TestRelayThenDetachedHoldsNoGoroutine(t *testing.T) {
	shortPark(t)
	client, cIn := tcpPair(t)
	rOut, remote := tcpPair(t)
	ctx, tail := WithTail(context.Background())
	var order []string
	tail.Defer(func() { order = append(order, "tail") })
	tail.detach()
	g0 := runtime.NumGoroutine()
	ended := make(chan RelayStats, 2)
	RelayThen(ctx, cIn, rOut, RelayOptions{}, func(st RelayStats, err error) {
		if _, werr := cIn.Write([]byte("x")); werr == nil {
			t.Error("client connection still open in then")
		}
		order = append(order, "then")
		tail.run()
		ended <- st
	})
	tail.Finish() // the handler returns: nothing runs yet
	echoOnce(t, client, remote, []byte("hello"))
	waitParked(t, 2)
	// The park set's loop is the one goroutine left, for all parked relays.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > g0+1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d", runtime.NumGoroutine(), g0+1)
		}
		time.Sleep(5 * time.Millisecond)
	}
	client.Close()
	remote.Close()
	select {
	case st := <-ended:
		if st.Up != 5 {
			t.Fatalf("stats %+v", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("relay did not end")
	}
	if len(order) != 2 || order[0] != "then" || order[1] != "tail" {
		t.Fatalf("order %v", order)
	}
	waitParked(t, 0)
	deadline = time.Now().Add(2 * time.Second)
	for {
		parked.mu.Lock()
		running := parked.running
		parked.mu.Unlock()
		if !running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the park set kept its epoll instance with nothing parked")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A packet loop parked on a socket that someone else closes resumes at
// once when WakeSocket runs before the close, and only at the park set's
// sweep without it.
func TestWakeSocketBeforeClose(t *testing.T) {
	shortPark(t)
	parkSweep.set(time.Hour) // the sweep must not be what resumes the loop
	for _, wake := range []bool{true, false} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		bufs := [][]byte{make([]byte, 2048)}
		exited := make(chan struct{})
		l := StartUDPLoop(c, func() [][]byte { return bufs }, func() {}, 0,
			func(int, []byte, netip.AddrPort, []byte) {},
			func(error) bool { return true }, func() { close(exited) })
		waitParked(t, 1)
		if wake {
			WakeSocket(c)
		}
		c.Close()
		select {
		case <-exited:
			if !wake {
				t.Fatal("the loop saw the close without WakeSocket or a sweep: the test proves nothing")
			}
		case <-time.After(500 * time.Millisecond):
			if wake {
				t.Fatal("the loop did not see the close after WakeSocket")
			}
			l.Wake() // what the owner's teardown does
			<-exited
		}
		waitParked(t, 0)
	}
	// WakeSocket on a socket nobody parked does nothing.
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	WakeSocket(c)
	if n := ParkedReaders(); n != 0 {
		t.Fatalf("%d readers parked", n)
	}
}
