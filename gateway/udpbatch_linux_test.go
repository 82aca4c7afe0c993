package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listenUDP4(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// recvStrings reads datagrams from r and fails unless they are want, in
// order.
func recvStrings(t *testing.T, r *net.UDPConn, want ...string) {
	t.Helper()
	buf := make([]byte, 2048)
	for _, w := range want {
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := r.Read(buf)
		if err != nil || string(buf[:n]) != w {
			t.Fatalf("got %q (%v), want %q", buf[:n], err, w)
		}
	}
}

// countingLender lends batches of n fresh buffers and counts the loans.
type countingLender struct {
	t     *testing.T
	bufs  [][]byte
	gets  atomic.Int64
	out   atomic.Int64
	twice atomic.Bool
}

func newCountingLender(t *testing.T, n int) *countingLender {
	return &countingLender{t: t, bufs: make([][]byte, n)}
}

func (l *countingLender) get() [][]byte {
	l.gets.Add(1)
	if l.out.Add(1) != 1 {
		l.twice.Store(true)
	}
	for i := range l.bufs {
		l.bufs[i] = make([]byte, 1500)
	}
	return l.bufs
}

func (l *countingLender) put() { l.out.Add(-1) }

type got struct {
	i    int
	data string
	from netip.AddrPort
}

// ServeUDP hands over queued datagrams in order from batches lent only
// while reading; a short batch is not followed by a read that finds the
// queue empty; it ends at a past read deadline, at Close, and when ctx is
// done even while datagrams keep coming.
func TestServeUDP(t *testing.T) {
	c := listenUDP4(t)
	senders := []*net.UDPConn{listenUDP4(t), listenUDP4(t), listenUDP4(t)}
	for round := range 30 {
		for i, s := range senders {
			if _, err := s.WriteToUDPAddrPort(fmt.Appendf(nil, "%d/%d", i, round), addrOf(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
	l := newCountingLender(t, 4)
	ch := make(chan got, 1024)
	fn := func(i int, b []byte, from netip.AddrPort, oob []byte) {
		if i < 0 || i >= 4 {
			t.Errorf("buffer %d", i)
		}
		ch <- got{i, string(b), from}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeUDP(ctx, c, l.get, l.put, 0, fn) }()

	next := make([]int, len(senders))
	for range 30 * len(senders) {
		var g got
		select {
		case g = <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("datagrams missing: %v", next)
		}
		var i, r int
		if _, err := fmt.Sscanf(g.data, "%d/%d", &i, &r); err != nil || i < 0 || i >= len(senders) || r != next[i] {
			t.Fatalf("got %q, want sender %d's datagram %d", g.data, i, next[i])
		}
		if g.from != addrOf(senders[i]) {
			t.Fatalf("from %v, want %v", g.from, addrOf(senders[i]))
		}
		next[i]++
	}

	// Ping-pong: each datagram is one wake-up and one read.
	waitIdle := func() {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for l.out.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := l.out.Load(); n != 0 {
			t.Fatalf("a waiting reader holds %d batches", n)
		}
	}
	waitIdle()
	before := l.gets.Load()
	const pings = 50
	for k := range pings {
		senders[0].WriteToUDPAddrPort(fmt.Appendf(nil, "ping %d", k), addrOf(c))
		select {
		case g := <-ch:
			if g.data != fmt.Sprintf("ping %d", k) {
				t.Fatalf("got %q", g.data)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("ping lost")
		}
		waitIdle()
	}
	if reads := l.gets.Load() - before; reads > pings+2 {
		t.Errorf("%d reads for %d datagrams one at a time: empty reads are back", reads, pings)
	}
	if l.twice.Load() {
		t.Error("a batch was lent while another was out")
	}

	// A past read deadline ends a waiting ServeUDP.
	c.SetReadDeadline(time.Unix(1, 0))
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("ServeUDP ended with %v, want a deadline error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUDP ignored its read deadline")
	}
	c.SetReadDeadline(time.Time{})

	// ctx ends it while a flood keeps the queue full.
	stop := make(chan struct{})
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for {
			select {
			case <-stop:
				return
			default:
				senders[1].WriteToUDPAddrPort([]byte("flood"), addrOf(c))
			}
		}
	}()
	defer func() { close(stop); <-flooded }()
	var n atomic.Int64
	go func() {
		done <- ServeUDP(ctx, c, l.get, l.put, 0, func(int, []byte, netip.AddrPort, []byte) { n.Add(1) })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for n.Load() < 1000 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("ServeUDP ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUDP did not end with its context")
	}

	// Close ends it with net.ErrClosed.
	go func() {
		done <- ServeUDP(context.Background(), c, l.get, l.put, 0, func(int, []byte, netip.AddrPort, []byte) {})
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ServeUDP ended with %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ServeUDP did not end at Close")
	}
	if n := l.out.Load(); n != 0 {
		t.Fatalf("%d batches never given back", n)
	}
}

// Control messages and truncation: each datagram gets its own control
// buffer, and a datagram longer than its buffer is cut to it.
func TestMsgBatchOOBAndTruncation(t *testing.T) {
	c := listenUDP4(t)
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1) })
	s := listenUDP4(t)
	s.WriteToUDPAddrPort([]byte("short"), addrOf(c))
	s.WriteToUDPAddrPort([]byte("a longer datagram"), addrOf(c))
	time.Sleep(20 * time.Millisecond)
	m := NewMsgBatch(4, 64)
	bufs := [][]byte{make([]byte, 100), make([]byte, 8), make([]byte, 100), make([]byte, 100)}
	var n int
	rc.Read(func(fd uintptr) bool {
		var errno syscall.Errno
		n, errno = m.Recv(fd, bufs, 0)
		return errno != unix.EAGAIN
	})
	if n != 2 {
		t.Fatalf("read %d datagrams, want 2", n)
	}
	if got := string(bufs[0][:m.N(0)]); got != "short" {
		t.Errorf("datagram 0: %q", got)
	}
	if got := string(bufs[1][:m.N(1)]); got != "a longer" {
		t.Errorf("datagram 1: %q, want it cut to its buffer", got)
	}
	for i := range 2 {
		if m.From(i) != addrOf(s) {
			t.Errorf("datagram %d from %v", i, m.From(i))
		}
		if len(m.OOB(i)) == 0 {
			t.Errorf("datagram %d: no control messages", i)
		}
	}
}

// SendBatch sends its datagrams in order with one call, maps IPv4
// destinations for an IPv6 socket, and stops at a datagram the kernel
// refuses, reporting how many went out.
func TestSendBatch(t *testing.T) {
	r := listenUDP4(t)
	recv := func(want ...string) { t.Helper(); recvStrings(t, r, want...) }
	v4 := listenUDP4(t)
	dual, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	sb := NewSendBatch(4)
	for _, c := range []*net.UDPConn{v4, dual} {
		if sb.Add([]byte("one")) || sb.Add([]byte("two")) || sb.Add([]byte("three")) {
			t.Fatal("full before its capacity")
		}
		if !sb.Add([]byte("four")) {
			t.Fatal("not full at its capacity")
		}
		n, err := sb.Send(c, addrOf(r), nil)
		if n != 4 || err != nil {
			t.Fatalf("%v: sent %d: %v", c.LocalAddr(), n, err)
		}
		sb.Reset()
		if sb.Len() != 0 {
			t.Fatal("Reset kept datagrams")
		}
		recv("one", "two", "three", "four")
	}
	sb.Add([]byte("a"))
	sb.Add([]byte("b"))
	sb.Add(make([]byte, 70000)) // larger than any UDP datagram
	sb.Add([]byte("c"))
	n, err := sb.Send(v4, addrOf(r), nil)
	if n != 2 || err == nil || len(sb.Msg(n)) != 70000 {
		t.Fatalf("sent %d (%v), want 2 and an error", n, err)
	}
	recv("a", "b")
	sb.Reset()
	v4.Close()
	sb.Add([]byte("x"))
	if n, err := sb.Send(v4, addrOf(r), nil); n != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("on a closed socket: %d, %v", n, err)
	}
}

// SendEach sends each datagram to its own destination in order, on IPv4
// and dual-stack sockets, and stops at one the kernel refuses.
func TestSendEach(t *testing.T) {
	r1, r2 := listenUDP4(t), listenUDP4(t)
	recv := func(r *net.UDPConn, want ...string) { t.Helper(); recvStrings(t, r, want...) }
	v4 := listenUDP4(t)
	dual, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	send := func(c *net.UDPConn, s *SendEach, from int) (n int, errno syscall.Errno) {
		rc, _ := c.SyscallConn()
		rc.Write(func(fd uintptr) bool { n, errno = s.Send(fd, from, c == v4); return true })
		return n, errno
	}
	s := NewSendEach(4)
	for _, c := range []*net.UDPConn{v4, dual} {
		s.Add([]byte("1a"), addrOf(r1), nil)
		s.Add([]byte("2a"), addrOf(r2), nil)
		s.Add([]byte("1b"), addrOf(r1), nil)
		if !s.Add([]byte("2b"), addrOf(r2), nil) {
			t.Fatal("not full at its capacity")
		}
		if n, errno := send(c, s, 0); n != 4 || errno != 0 {
			t.Fatalf("%v: sent %d, %v", c.LocalAddr(), n, errno)
		}
		recv(r1, "1a", "1b")
		recv(r2, "2a", "2b")
		s.Reset()
	}
	s.Add([]byte("x"), addrOf(r1), nil)
	s.Add(make([]byte, 70000), addrOf(r1), nil)
	s.Add([]byte("y"), addrOf(r1), nil)
	n, errno := send(v4, s, 0)
	if n == 1 && errno == 0 {
		n2, errno2 := send(v4, s, 1) // the error comes on the next call
		n, errno = n+n2, errno2
	}
	if n != 1 || errno != unix.EMSGSIZE {
		t.Fatalf("sent %d (%v), want 1 and EMSGSIZE", n, errno)
	}
	if b, _ := s.Msg(n); len(b) != 70000 {
		t.Fatal("wrong datagram refused")
	}
	if n, errno := send(v4, s, 2); n != 1 || errno != 0 {
		t.Fatalf("the rest: %d, %v", n, errno)
	}
	recv(r1, "x", "y")
}

// SendEach gives each datagram its own control messages, and none to one
// added without, even in a slot that had some before a Reset.
func TestSendEachControl(t *testing.T) {
	r := listenUDP4(t)
	rc, _ := r.SyscallConn()
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1) })
	ttlOf := func(want string) int {
		t.Helper()
		buf, oob := make([]byte, 64), make([]byte, 64)
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, oobn, _, _, err := r.ReadMsgUDP(buf, oob)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q (%v), want %q", buf[:n], err, want)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL {
				return int(binary.NativeEndian.Uint32(m.Data))
			}
		}
		t.Fatalf("%q: no TTL", want)
		return 0
	}
	c := listenUDP4(t)
	wc, _ := c.SyscallConn()
	s := NewSendEach(4)
	send := func() {
		t.Helper()
		var n int
		var errno syscall.Errno
		wc.Write(func(fd uintptr) bool { n, errno = s.Send(fd, 0, true); return true })
		if n != s.Len() || errno != 0 {
			t.Fatalf("sent %d of %d: %v", n, s.Len(), errno)
		}
		s.Reset()
	}
	s.Add([]byte("a"), addrOf(r), AppendIPCmsg(nil, false, 7, 0x20))
	s.Add([]byte("b"), addrOf(r), nil)
	s.Add([]byte("c"), addrOf(r), AppendIPCmsg(nil, false, 9, -1))
	send()
	if got := ttlOf("a"); got != 7 {
		t.Errorf("a: TTL %d, want 7", got)
	}
	def := ttlOf("b")
	if def == 7 || def == 9 {
		t.Errorf("b: TTL %d, want the default", def)
	}
	if got := ttlOf("c"); got != 9 {
		t.Errorf("c: TTL %d, want 9", got)
	}
	s.Add([]byte("d"), addrOf(r), nil)
	send()
	if got := ttlOf("d"); got != def {
		t.Errorf("d, in a slot that had TTL 7: TTL %d, want %d", got, def)
	}
}
