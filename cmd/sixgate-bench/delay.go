package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// cmdDelay relays TCP connections from -listen to -to, holding every chunk
// for -delay in each direction: a user-space stand-in for netem, which this
// kernel lacks. A round trip through it costs 2 x delay. The TCP handshake
// with the relay itself is local, so it is not delayed.
func cmdDelay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("delay", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to accept clients on")
	to := fs.String("to", "", "address to relay to (the proxy)")
	delay := fs.Duration("delay", 20*time.Millisecond, "one-way delay added in each direction")
	dur := fs.Duration("duration", 30*time.Minute, "stop after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *to == "" {
		fmt.Fprintln(stderr, "-to is required")
		return errUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	dr := &delayRelay{ln: ln, to: *to, delay: *delay}
	b, _ := json.Marshal(map[string]string{"listen": ln.Addr().String(), "to": *to, "delay": delay.String()})
	fmt.Fprintf(stdout, "%s\n", b)
	ctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	go func() { <-ctx.Done(); ln.Close() }()
	dr.serve()
	return nil
}

// delayRelay is the relay behind cmdDelay; tests start it in-process.
type delayRelay struct {
	ln    net.Listener
	to    string
	delay time.Duration
	wg    sync.WaitGroup
}

func (dr *delayRelay) serve() {
	defer dr.wg.Wait()
	for {
		c, err := dr.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		dr.wg.Add(1)
		go func() {
			defer dr.wg.Done()
			dr.relay(c)
		}()
	}
}

func (dr *delayRelay) relay(client net.Conn) {
	defer client.Close()
	remote, err := net.DialTimeout("tcp", dr.to, 10*time.Second)
	if err != nil {
		return
	}
	defer remote.Close()
	var once sync.Once
	kill := func() { once.Do(func() { client.Close(); remote.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); delayPump(client, remote, dr.delay, kill) }()
	go func() { defer wg.Done(); delayPump(remote, client, dr.delay, kill) }()
	wg.Wait()
}

// chunk is data read at some time, due for writing delay later; eof marks
// the end of the direction, err a broken one.
type chunk struct {
	data []byte
	due  time.Time
	eof  bool
	err  bool
}

// delayPump copies src to dst, each chunk delay after it was read, and
// half-closes dst at src's end.
func delayPump(src, dst net.Conn, delay time.Duration, kill func()) {
	q := make(chan chunk, 4096)
	go func() {
		defer close(q)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{data: append([]byte(nil), buf[:n]...), due: time.Now().Add(delay)}
			}
			if err != nil {
				q <- chunk{due: time.Now().Add(delay), eof: errors.Is(err, io.EOF), err: !errors.Is(err, io.EOF)}
				return
			}
		}
	}()
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		switch {
		case c.err:
			kill()
		case c.eof:
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		default:
			if _, err := dst.Write(c.data); err != nil {
				kill()
			}
		}
	}
}
