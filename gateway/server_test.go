package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startTestServer(t *testing.T, cfg string) *Server {
	t.Helper()
	c, diags := ParseConfig("test.hcl", []byte(cfg), testRegistry())
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s := NewServer(ServerOptions{Registry: testRegistry()})
	if err := s.Start(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

func ask(t *testing.T, addr string, first byte) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte{first})
	b, _ := io.ReadAll(c)
	return string(b)
}

func TestFirstByteDispatch(t *testing.T) {
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := startTestServer(t, fmt.Sprintf(`
admin {
  listen = "off"
}
frontend "test" "six" {
  listen = %[1]q
  reply  = "six"
}
frontend "test" "five" {
  listen     = %[1]q
  first_byte = 5
  reply      = "five"
}
backend "test" "out" {}
route {
  backend = "out"
}
`, addr))
	_ = s
	if got := ask(t, addr, 5); got != "five" {
		t.Errorf("0x05 -> %q", got)
	}
	if got := ask(t, addr, 6); got != "six" {
		t.Errorf("0x06 -> %q", got)
	}
}

// TestReloadKeepsListenerBound dials in a loop while the configuration is
// reloaded several times, and checks that no dial was refused and the new
// handler answers afterwards.
func TestReloadKeepsListenerBound(t *testing.T) {
	port := freeTCPPort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := func(reply string, extra int) string {
		return fmt.Sprintf(`
admin {
  listen = "off"
}
frontend "test" "main" {
  listen = %q
  reply  = %q
}
frontend "test" "extra" {
  listen = "127.0.0.1:%d"
  reply  = "extra"
}
backend "test" "out" {}
route {
  backend = "out"
}
`, addr, reply, extra)
	}
	s := startTestServer(t, cfg("one", freeTCPPort(t)))
	var refused atomic.Int64
	var dials atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			dials.Add(1)
			if err != nil {
				refused.Add(1)
				continue
			}
			c.Close()
		}
	}()
	for i := range 5 {
		c, diags := ParseConfig("test.hcl", []byte(cfg(fmt.Sprint("gen", i), freeTCPPort(t))), testRegistry())
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		if err := s.Reload(c); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if refused.Load() != 0 {
		t.Fatalf("%d of %d dials refused during reloads", refused.Load(), dials.Load())
	}
	if got := ask(t, addr, 1); got != "gen4" {
		t.Fatalf("after reload: %q", got)
	}
	t.Logf("%d dials, none refused", dials.Load())
}

// TestSessionSetRefusesAfterClose: once the shutdown closed every session,
// a connection accepted just before the listener closed is refused rather
// than added (its wg.Add would race the shutdown's wg.Wait).
func TestSessionSetRefusesAfterClose(t *testing.T) {
	s := &sessionSet{conns: map[net.Conn]struct{}{}}
	a, b := net.Pipe()
	defer b.Close()
	if !s.add(a) {
		t.Fatal("add before closeAll refused")
	}
	s.closeAll()
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("closeAll left a session open")
	}
	c, d := net.Pipe()
	defer c.Close()
	defer d.Close()
	if s.add(c) {
		t.Fatal("add after closeAll accepted")
	}
	s.remove(a)
	s.wg.Wait()
}
