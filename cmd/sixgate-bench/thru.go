package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

const gib = 1 << 30

// cmdThru pushes bulk bytes through N streams to a sink for a duration.
func cmdThru(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := c.flags("thru", stderr)
	streams := fs.Int("streams", 1, "number of parallel streams")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured duration")
	warmup := fs.Duration("warmup", 500*time.Millisecond, "time the streams run before the measurement starts")
	target := fs.String("target", "", "sink address (default: a built-in sink on 127.0.0.1)")
	wsize := fs.Int("write", 128<<10, "bytes per write")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *streams < 1 || *wsize < 1 {
		return fmt.Errorf("-streams and -write must be positive")
	}
	d, err := newDialer(&c)
	if err != nil {
		return err
	}
	var sink *tcpServer
	dst, err := targetAddr(*target)
	if err != nil {
		return err
	}
	if *target == "" {
		if sink, err = listenTCP("127.0.0.1:0", false); err != nil {
			return err
		}
		defer sink.close()
		dst = sink.addrPort()
	}

	conns := make([]net.Conn, *streams)
	for i := range conns {
		cctx, cancel := withTimeout(ctx, c.timeout)
		conns[i], err = d.dial(cctx, dst, nil)
		cancel()
		if err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return fmt.Errorf("stream %d: %w", i, err)
		}
	}
	counts := make([]atomic.Int64, *streams)
	var stop atomic.Bool
	var errs errCounter
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, *wsize)
			for !stop.Load() {
				n, err := conn.Write(buf)
				counts[i].Add(int64(n))
				if err != nil {
					if !stop.Load() {
						errMu.Lock()
						errs.add(err)
						errMu.Unlock()
					}
					return
				}
			}
		}()
	}
	snapshot := func() (total int64, per []int64) {
		per = make([]int64, len(counts))
		for i := range counts {
			per[i] = counts[i].Load()
		}
		if sink != nil {
			return sink.bytes.Load(), per
		}
		for _, v := range per {
			total += v
		}
		return total, per
	}
	sleepCtx(ctx, *warmup)
	cpu, err := startCPU(c.serverPID)
	if err != nil {
		stop.Store(true)
		return err
	}
	t0 := time.Now()
	b0, p0 := snapshot()
	sleepCtx(ctx, c.duration)
	b1, p1 := snapshot()
	el := time.Since(t0)
	r := newResult("thru", &c)
	cpu.finish(r, "gib", float64(b1-b0)/gib)
	stop.Store(true)
	for _, conn := range conns {
		conn.Close()
	}
	wg.Wait()

	r.Start, r.Seconds = t0, round(el.Seconds(), 3)
	r.Params["streams"] = *streams
	r.Params["write_bytes"] = *wsize
	r.Params["target"] = dst.String()
	bps := float64(b1-b0) / el.Seconds()
	r.Metrics["bytes"] = float64(b1 - b0)
	r.Metrics["bytes_per_sec"] = round(bps, 0)
	r.Metrics["gbit_per_sec"] = round(bps*8/1e9, 3)
	minS, maxS := -1.0, 0.0
	for i := range p1 {
		v := float64(p1[i]-p0[i]) / el.Seconds()
		if minS < 0 || v < minS {
			minS = v
		}
		maxS = max(maxS, v)
	}
	r.Metrics["per_stream_bytes_per_sec"] = round(bps/float64(*streams), 0)
	r.Metrics["stream_min_bytes_per_sec"] = round(minS, 0)
	r.Metrics["stream_max_bytes_per_sec"] = round(maxS, 0)
	r.Errors, r.FirstError = errs.n, errs.first
	if sink == nil {
		r.Notes = append(r.Notes, "bytes counted as written by the client (external sink)")
	}
	return emit(stdout, stderr, r, fmt.Sprintf("%d streams: %.2f Gbit/s (%.0f MB/s, per stream %.0f MB/s)",
		*streams, bps*8/1e9, bps/1e6, bps/float64(*streams)/1e6))
}

// targetAddr parses an optional -target.
func targetAddr(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, fmt.Errorf("-target %q: %w", s, err)
	}
	return ap, nil
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
