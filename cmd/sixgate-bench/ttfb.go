package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// cmdTTFB measures, one connection at a time, the time from opening the
// connection to the proxy to the first byte of the destination's response:
// the 16-byte request rides as initial data where the protocol allows, and
// the echo server answers it. With a `delay` relay between the tool and the
// proxy and -rtt set to its round-trip time, the figure is also given in
// round trips.
func cmdTTFB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := c.flags("ttfb", stderr)
	n := fs.Int("n", 20, "samples")
	rtt := fs.Duration("rtt", 0, "round-trip time of the path to the proxy (2 x the delay relay's -delay), to count round trips")
	gap := fs.Duration("gap", 10*time.Millisecond, "pause between samples")
	target := fs.String("target", "", "echo server address (default: a built-in echo on 127.0.0.1)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("-n must be positive")
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
	r := newResult("ttfb", &c)
	if c.proto == "socks6" && c.session {
		// The first Request opens the session and its window; the samples
		// are the requests that follow, carrying the Session ID and a token.
		if err := oneEcho(ctx, d, &c, dst); err != nil {
			return fmt.Errorf("opening the session: %w", err)
		}
		r.Notes = append(r.Notes, "session opened by a first request outside the samples")
	}
	var errs errCounter
	var samples []time.Duration
	cpu, err := startCPU(c.serverPID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for range *n {
		if ctx.Err() != nil {
			break
		}
		v, err := firstByte(ctx, d, &c, dst)
		if err != nil {
			errs.add(err)
		} else {
			samples = append(samples, v)
		}
		sleepCtx(ctx, *gap)
	}
	cpu.finish(r, "kconn", float64(len(samples))/1000)
	r.Start, r.Seconds = t0, round(time.Since(t0).Seconds(), 3)
	r.Params["samples"] = *n
	r.Params["target"] = dst.String()
	percentiles(r.Metrics, "ttfb", samples)
	summary := fmt.Sprintf("%d samples: p50 %.2f ms", len(samples), r.Metrics["ttfb_p50_ms"])
	if *rtt > 0 && len(samples) > 0 {
		r.Params["rtt_ms"] = float64(*rtt) / float64(time.Millisecond)
		rtts := r.Metrics["ttfb_p50_ms"] / (float64(*rtt) / float64(time.Millisecond))
		r.Metrics["rtts_p50"] = round(rtts, 2)
		r.Metrics["rtts_min"] = round(float64(minDur(samples))/float64(*rtt), 2)
		summary += fmt.Sprintf(" = %.2f round trips of %v", rtts, *rtt)
		r.Notes = append(r.Notes, "the TCP handshake with a delay relay is local (not delayed): the count starts with the connection up")
	}
	r.Errors, r.FirstError = errs.n, errs.first
	return emit(stdout, stderr, r, summary)
}

// firstByte makes one connection and returns the time to the first byte of
// the echo.
func firstByte(ctx context.Context, d dialer, c *common, dst netip.AddrPort) (time.Duration, error) {
	cctx, cancel := withTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	conn, err := d.dial(cctx, dst, echoProbe)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	defer stop()
	var buf [16]byte
	if _, err := io.ReadFull(conn, buf[:1]); err != nil {
		return 0, fmt.Errorf("first byte: %w", err)
	}
	v := time.Since(start)
	if _, err := io.ReadFull(conn, buf[1:]); err != nil {
		return 0, fmt.Errorf("echo: %w", err)
	}
	return v, nil
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}
