package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// echoProbe is the 16 bytes each connection sends and expects back.
var echoProbe = []byte("sixgate-bench-16")

// cmdConnrate runs C workers making N connections in total: dial the proxy,
// handshake and CONNECT to the echo server (the 16 bytes ride as initial
// data), read the 16 bytes back, close.
func cmdConnrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := c.flags("connrate", stderr)
	workers := fs.Int("c", 8, "concurrent workers")
	total := fs.Int("n", 2000, "connections in total")
	fs.DurationVar(&c.duration, "duration", time.Minute, "stop early after this long")
	target := fs.String("target", "", "echo server address (default: a built-in echo on 127.0.0.1)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *workers < 1 || *total < 1 {
		return fmt.Errorf("-c and -n must be positive")
	}
	d, err := newDialer(&c)
	if err != nil {
		return err
	}
	dst, err := targetAddr(*target)
	if err != nil {
		return err
	}
	if *target == "" {
		echo, err := listenTCP("127.0.0.1:0", true)
		if err != nil {
			return err
		}
		defer echo.close()
		dst = echo.addrPort()
	}
	// A session (and its token window) is opened before the clock starts.
	if c.proto == "socks6" && c.session {
		if err := oneEcho(ctx, d, &c, dst); err != nil {
			return fmt.Errorf("opening the session: %w", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var next atomic.Int64
	lat := make([][]time.Duration, *workers)
	var errs errCounter
	var mu sync.Mutex
	var wg sync.WaitGroup
	cpu, err := startCPU(c.serverPID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(*total) && ctx.Err() == nil {
				s := time.Now()
				if err := oneEcho(ctx, d, &c, dst); err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						errs.add(err)
						mu.Unlock()
					}
					continue
				}
				lat[w] = append(lat[w], time.Since(s))
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	r := newResult("connrate", &c)
	cpu.finish(r, "kconn", float64(len(all))/1000)
	r.Start, r.Seconds = t0, round(el.Seconds(), 3)
	r.Params["workers"] = *workers
	r.Params["connections"] = *total
	r.Params["target"] = dst.String()
	rate := float64(len(all)) / el.Seconds()
	r.Metrics["connections"] = float64(len(all))
	r.Metrics["conns_per_sec"] = round(rate, 1)
	percentiles(r.Metrics, "latency", all)
	r.Errors, r.FirstError = errs.n, errs.first
	if len(all) < *total {
		r.Notes = append(r.Notes, fmt.Sprintf("%d of %d connections completed", len(all), *total))
	}
	return emit(stdout, stderr, r, fmt.Sprintf("%d connections, %d workers: %.0f conn/s, p50 %.2f ms, p99 %.2f ms",
		len(all), *workers, rate, r.Metrics["latency_p50_ms"], r.Metrics["latency_p99_ms"]))
}

// oneEcho makes one connection, sends the probe and reads it back.
func oneEcho(ctx context.Context, d dialer, c *common, dst netip.AddrPort) error {
	cctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := d.dial(cctx, dst, echoProbe)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	defer stop()
	var buf [16]byte
	if _, err := io.ReadFull(conn, buf[:]); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if !bytes.Equal(buf[:], echoProbe) {
		return fmt.Errorf("echo: got %q", buf[:])
	}
	return nil
}
