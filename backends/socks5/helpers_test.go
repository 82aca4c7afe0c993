package socks5

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	armon "github.com/armon/go-socks5"
	"github.com/sixgate/sixgate/gateway"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs to the test at debug level when -v is given.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newBackend builds a backend from cfg, failing the test on error.
func newBackend(t testing.TB, name string, cfg Config, opts Options) *Backend {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	b, err := New(name, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ctx returns a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// tcpEcho runs a TCP echo server on 127.0.0.1 that echoes each connection
// until the client half-closes, then closes. It counts connections.
type tcpEcho struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func startTCPEcho(t testing.TB) *tcpEcho {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &tcpEcho{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.conns.Add(1)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); e.wg.Wait() })
	return e
}

func (e *tcpEcho) addr() gateway.Addr {
	return gateway.AddrFromAddrPort(e.ln.Addr().(*net.TCPAddr).AddrPort())
}

// udpEcho runs a UDP echo server on 127.0.0.1.
func startUDPEcho(t testing.TB) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// armonServer runs github.com/armon/go-socks5 on 127.0.0.1 and counts the
// connections it accepts.
type armonServer struct {
	addr  string
	conns atomic.Int64
}

// countingListener counts accepted connections and tracks them so that
// the test can close what armon leaves open.
type countingListener struct {
	net.Listener
	s     *armonServer
	mu    sync.Mutex
	open  []net.Conn
	close bool
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.s.conns.Add(1)
	l.mu.Lock()
	l.open = append(l.open, c)
	l.mu.Unlock()
	return c, nil
}

func startArmon(t testing.TB, creds map[string]string) *armonServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conf := &armon.Config{Logger: log.New(io.Discard, "", 0)}
	if creds != nil {
		conf.AuthMethods = []armon.Authenticator{armon.UserPassAuthenticator{Credentials: armon.StaticCredentials(creds)}}
	}
	srv, err := armon.New(conf)
	if err != nil {
		t.Fatal(err)
	}
	s := &armonServer{addr: ln.Addr().String()}
	cl := &countingListener{Listener: ln, s: s}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(cl) }()
	t.Cleanup(func() {
		ln.Close()
		<-done
		cl.mu.Lock()
		for _, c := range cl.open {
			c.Close()
		}
		cl.mu.Unlock()
	})
	return s
}

// denyPolicy refuses the listed addresses and allows the rest; it records
// what it was asked.
type denyPolicy struct {
	mu    sync.Mutex
	deny  map[netip.AddrPort]bool
	asked []netip.AddrPort
}

var errDenied = gateway.NewError(gateway.ReasonNotAllowed, "policy", errors.New("denied by test policy"))

func (p *denyPolicy) Allow(ap netip.AddrPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, ap)
	if p.deny[ap] || p.deny[netip.AddrPortFrom(ap.Addr(), 0)] {
		return errDenied
	}
	return nil
}

// staticResolver answers names from a map.
type staticResolver map[string][]netip.Addr

func (r staticResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func reasonIs(t testing.TB, err error, want gateway.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", want)
	}
	if got := gateway.ReasonOf(err); got != want {
		t.Fatalf("reason %s, want %s: %v", got, want, err)
	}
}

func mustAddr(t testing.TB, s string) gateway.Addr {
	t.Helper()
	a, err := gateway.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
