package direct

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sixgate/sixgate/gateway"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newBackend returns a backend logging to the test log.
func newBackend(t *testing.T, cfg Config, opts Options) *Backend {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := New("out", cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return b
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// prefixPolicy allows the destinations inside any of its prefixes.
type prefixPolicy []netip.Prefix

func (p prefixPolicy) Allow(ap netip.AddrPort) error {
	for _, pfx := range p {
		if pfx.Contains(ap.Addr()) {
			return nil
		}
	}
	return errors.New("destination " + ap.String() + " is not allowed")
}

func prefixes(ss ...string) prefixPolicy {
	var p prefixPolicy
	for _, s := range ss {
		p = append(p, netip.MustParsePrefix(s))
	}
	return p
}

var loopback = prefixes("127.0.0.0/8", "::1/128")

// fakeResolver answers call i with answers[i] (the last answer repeats) and
// counts the calls.
type fakeResolver struct {
	mu      sync.Mutex
	calls   int
	answers [][]netip.Addr
}

func newFakeResolver(answers ...[]string) *fakeResolver {
	f := &fakeResolver{}
	for _, a := range answers {
		var ips []netip.Addr
		for _, s := range a {
			ips = append(ips, netip.MustParseAddr(s))
		}
		f.answers = append(f.answers, ips)
	}
	return f
}

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.calls, len(f.answers)-1)
	f.calls++
	if network != "ip" {
		return nil, errors.New("fake resolver: unexpected network " + network)
	}
	return f.answers[i], nil
}

func (f *fakeResolver) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// server is a TCP listener for tests; every accepted connection is sent on
// conns and closed at cleanup.
type server struct {
	ln    *net.TCPListener
	conns chan *net.TCPConn
}

func listenTCP(t *testing.T, network, addr string) *server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, addr, err)
	}
	return serve(t, ln.(*net.TCPListener))
}

// serve accepts on ln until cleanup.
func serve(t *testing.T, ln *net.TCPListener) *server {
	s := &server{ln: ln, conns: make(chan *net.TCPConn, 256)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(s.conns)
		for c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *server) port() uint16 { return s.ln.Addr().(*net.TCPAddr).AddrPort().Port() }

// next waits for the next accepted connection and closes it at cleanup.
func (s *server) next(t *testing.T) *net.TCPConn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

// none asserts that no connection arrives within d.
func (s *server) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Errorf("unexpected connection from %s", c.RemoteAddr())
		c.Close()
	case <-time.After(d):
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T, network, host string) uint16 {
	t.Helper()
	ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	ln.Close()
	return p
}

func ipAddr(s string, port uint16) gateway.Addr {
	return gateway.Addr{IP: netip.MustParseAddr(s), Port: port}
}

func nameAddr(s string, port uint16) gateway.Addr { return gateway.Addr{Name: s, Port: port} }

// readN reads exactly n bytes with a deadline.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// wantReason asserts that err is a *gateway.Error with the reason and a
// *net.OpError in its chain.
func wantReason(t *testing.T, err error, want gateway.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v", want)
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		t.Fatalf("err %T %v is not a *gateway.Error", err, err)
	}
	if ge.Reason != want {
		t.Fatalf("reason = %v, want %v (err: %v)", ge.Reason, want, err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("err %v has no *net.OpError in its chain", err)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

func closeStream(t *testing.T, st *gateway.Stream) {
	t.Cleanup(func() { st.Conn.Close() })
}
