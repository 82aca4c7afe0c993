package socks5

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// scriptServer runs handle for every connection to a TCP listener on
// 127.0.0.1 and closes the connection when handle returns.
func scriptServer(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	stop := make(chan struct{})
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				go func() { <-stop; c.Close() }()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); close(stop); wg.Wait() })
	return ln.Addr().String()
}

// hang blocks until the client closes.
func hang(c net.Conn) { io.Copy(io.Discard, c) }

// greeted reads the greeting and answers with method m.
func greeted(c net.Conn, m s5.Method) bool {
	if _, err := s5.ReadGreeting(c); err != nil {
		return false
	}
	_, err := c.Write(s5.AppendMethodSelection(nil, m))
	return err == nil
}

// answer reads the greeting and the request and writes raw as the reply.
func answer(raw string) func(c net.Conn) {
	return func(c net.Conn) {
		if !greeted(c, s5.MethodNoAuth) {
			return
		}
		if _, err := s5.ReadRequest(c); err != nil {
			return
		}
		c.Write([]byte(raw))
		// Let the client read before the close: a close with unread data
		// would reset the connection.
		c.(*net.TCPConn).CloseWrite()
		hang(c)
	}
}

func TestGarbageReplies(t *testing.T) {
	const ok = "\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
	tests := []struct {
		name   string
		creds  bool
		handle func(c net.Conn)
		reason gateway.Reason
		is     error
	}{
		{"close at once", false, func(c net.Conn) {}, gateway.ReasonGeneral, nil},
		{"selection version 4", false, func(c net.Conn) { s5.ReadGreeting(c); c.Write([]byte{4, 0}); hang(c) }, gateway.ReasonGeneral, ErrProtocol},
		{"selection cut", false, func(c net.Conn) { s5.ReadGreeting(c); c.Write([]byte{5}) }, gateway.ReasonGeneral, io.ErrUnexpectedEOF},
		{"no acceptable methods", false, func(c net.Conn) { greeted(c, s5.MethodNoAcceptable) }, gateway.ReasonAuthFailed, ErrNoAcceptableMethod},
		{"gssapi chosen", false, func(c net.Conn) { greeted(c, s5.MethodGSSAPI); hang(c) }, gateway.ReasonGeneral, ErrProtocol},
		{"username/password not offered", false, func(c net.Conn) { greeted(c, s5.MethodUserPass); hang(c) }, gateway.ReasonGeneral, ErrProtocol},
		{"userpass reply version 5", true, func(c net.Conn) {
			greeted(c, s5.MethodUserPass)
			s5.ReadUserPassRequest(c)
			c.Write([]byte{5, 0})
			hang(c)
		}, gateway.ReasonGeneral, ErrProtocol},
		{"userpass reply cut", true, func(c net.Conn) {
			greeted(c, s5.MethodUserPass)
			s5.ReadUserPassRequest(c)
			c.Write([]byte{1})
		}, gateway.ReasonGeneral, nil},
		{"userpass failure", true, func(c net.Conn) {
			greeted(c, s5.MethodUserPass)
			s5.ReadUserPassRequest(c)
			c.Write([]byte{1, 0x55})
		}, gateway.ReasonAuthFailed, ErrBadCredentials},
		{"reply version 4", false, answer("\x04\x00\x00\x01\x7f\x00\x00\x01\x04\x38"), gateway.ReasonGeneral, ErrProtocol},
		{"reply cut in address", false, answer("\x05\x00\x00\x01\x7f\x00"), gateway.ReasonGeneral, io.ErrUnexpectedEOF},
		{"reply cut after version", false, answer("\x05"), gateway.ReasonGeneral, ErrProtocol},
		{"reply bad atyp", false, answer("\x05\x00\x00\x09\x00\x00\x00\x00\x00\x00"), gateway.ReasonGeneral, s5.ErrAddrType},
		{"reply name with nul", false, answer("\x05\x00\x00\x03\x03a\x00b\x00\x50"), gateway.ReasonGeneral, gateway.ErrBadName},
		{"refused with cut address", false, answer("\x05\x05\x00\x01\x00"), gateway.ReasonRefused, nil},
		{"unassigned reply code", false, answer("\x05\x42\x00\x01\x00\x00\x00\x00\x00\x00"), gateway.ReasonGeneral, nil},
		{"ttl expired", false, answer("\x05\x06\x00\x01\x00\x00\x00\x00\x00\x00"), gateway.ReasonTTLExpired, nil},
		{"silent server", false, hang, gateway.ReasonTimeout, nil},
		{"silent after selection", false, func(c net.Conn) { greeted(c, s5.MethodNoAuth); hang(c) }, gateway.ReasonTimeout, nil},
		{"silent after request", false, func(c net.Conn) {
			greeted(c, s5.MethodNoAuth)
			s5.ReadRequest(c)
			hang(c)
		}, gateway.ReasonTimeout, nil},
		{"success then close", false, answer(ok), gateway.ReasonNone, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptServer(t, tt.handle)
			cfg := Config{Server: addr, DialTimeout: "300ms"}
			if tt.creds {
				cfg.Username, cfg.Password = "u", "p"
			}
			b := newBackend(t, "up", cfg, Options{})
			start := time.Now()
			st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: mustAddr(t, "192.0.2.1:80")})
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Dial took %s", d)
			}
			if tt.reason == gateway.ReasonNone {
				if err != nil {
					t.Fatal(err)
				}
				st.Conn.Close()
				return
			}
			reasonIs(t, err, tt.reason)
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Op != opDial {
				t.Errorf("error %v is not a *gateway.Error of %q", err, opDial)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// TestRandomReplies answers requests with random bytes after a valid
// method selection: every outcome must be an error or a stream, quickly,
// without a panic.
func TestRandomReplies(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	next := func() []byte {
		mu.Lock()
		defer mu.Unlock()
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		if len(b) > 0 && rng.IntN(2) == 0 {
			b[0] = 5 // a plausible version more often
		}
		return b
	}
	addr := scriptServer(t, func(c net.Conn) {
		if !greeted(c, s5.MethodNoAuth) {
			return
		}
		if _, err := s5.ReadRequest(c); err != nil {
			return
		}
		c.Write(next())
		c.(*net.TCPConn).CloseWrite()
		hang(c)
	})
	b := newBackend(t, "up", Config{Server: addr, DialTimeout: "300ms"}, Options{})
	for i := range 300 {
		ctx := context.Background()
		var err error
		switch i % 3 {
		case 0:
			var st *gateway.Stream
			if st, err = b.Dial(ctx, &gateway.StreamRequest{Dest: mustAddr(t, "192.0.2.1:80")}); err == nil {
				st.Conn.Close()
			}
		case 1:
			var l gateway.Binding
			if l, err = b.Listen(ctx, &gateway.BindRequest{}); err == nil {
				// The rest of the random bytes, if any, is the second reply.
				actx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				if st, err := l.Accept(actx); err == nil {
					st.Conn.Close()
				}
				cancel()
				l.Close()
			}
		case 2:
			var a gateway.Association
			if a, err = b.Associate(ctx, &gateway.AssocRequest{}); err == nil {
				a.Close()
			}
		}
		if err != nil && gateway.ReasonOf(err) == gateway.ReasonNone {
			t.Fatalf("error without a reason: %v", err)
		}
	}
}

func TestBindSecondReplyGarbage(t *testing.T) {
	first := "\x05\x00\x00\x01\x00\x00\x00\x00\x30\x39"
	for _, tt := range []struct {
		name   string
		second string
		reason gateway.Reason
	}{
		{"cut", "\x05\x00\x00", gateway.ReasonGeneral},
		{"bad version", "\x06\x00\x00\x01\x7f\x00\x00\x01\x00\x50", gateway.ReasonGeneral},
		{"refused", "\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00", gateway.ReasonRefused},
		{"peer name without policy check", "\x05\x00\x00\x03\x04peer\x00\x50", gateway.ReasonNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := scriptServer(t, func(c net.Conn) {
				greeted(c, s5.MethodNoAuth)
				s5.ReadRequest(c)
				c.Write([]byte(first))
				time.Sleep(20 * time.Millisecond)
				c.Write([]byte(tt.second))
				c.(*net.TCPConn).CloseWrite()
				hang(c)
			})
			b := newBackend(t, "up", Config{Server: addr, DialTimeout: "1s"}, Options{})
			l, err := b.Listen(context.Background(), &gateway.BindRequest{Policy: &denyPolicy{}})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// An unspecified BND.ADDR becomes the server's address.
			if want := mustAddr(t, "127.0.0.1:12345"); l.Addr() != want {
				t.Errorf("Addr = %s, want %s", l.Addr(), want)
			}
			_, err = l.Accept(testCtx(t, 2*time.Second))
			reasonIs(t, err, tt.reason)
		})
	}
}

func TestBindAcceptCancelled(t *testing.T) {
	addr := scriptServer(t, func(c net.Conn) {
		greeted(c, s5.MethodNoAuth)
		s5.ReadRequest(c)
		c.Write([]byte("\x05\x00\x00\x01\x7f\x00\x00\x01\x30\x39"))
		hang(c)
	})
	b := newBackend(t, "up", Config{Server: addr}, Options{})
	l, err := b.Listen(context.Background(), &gateway.BindRequest{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err = l.Accept(ctx)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Accept = %v, want a cancellation", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("cancellation took too long")
	}
}
