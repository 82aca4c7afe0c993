package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// cmdUDP sends datagrams through A associations to a UDP echo at a target
// rate (or as fast as possible) for a bounded time and counts what comes
// back.
func cmdUDP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	c.turnOK = true
	fs := c.flags("udp", stderr)
	nAssoc := fs.Int("assocs", 1, "number of UDP associations")
	rate := fs.Float64("rate", 10000, "datagrams per second sent in total; 0 = as fast as the senders go (open loop, or closed by -inflight)")
	inflight := fs.Int("inflight", 0, "closed loop: at most this many datagrams unanswered per association (one counts as lost after -lost-after); 0 = off")
	lostAfter := fs.Duration("lost-after", 20*time.Millisecond, "with -inflight: how long a send waits for an answer before it counts one as lost")
	size := fs.Int("size", 100, "payload bytes per datagram (at least 16)")
	tick := fs.Duration("tick", 0, "with -rate: send in bursts, every association only at multiples of this interval (as turnutils_uclient does); 0 = spread out")
	fs.DurationVar(&c.duration, "duration", 5*time.Second, "sending time")
	drain := fs.Duration("drain", 500*time.Millisecond, "wait for late replies after sending stops")
	batch := fs.Int("batch", 1, "send up to this many datagrams per system call and read in batches (sendmmsg/recvmmsg where the protocol's client has them), so that the load is not what limits the rate")
	target := fs.String("target", "", "UDP echo address (default: a built-in echo on 127.0.0.1)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *nAssoc < 1 || *size < 16 || *size > 1400 || *rate < 0 || *inflight < 0 || *batch < 1 || *batch > 64 {
		return fmt.Errorf("-assocs must be positive, -size within 16..1400, -rate and -inflight not negative, -batch within 1..64")
	}
	as, err := newAssociator(&c)
	if err != nil {
		return err
	}
	var echo *udpEcho
	dst, err := targetAddr(*target)
	if err != nil {
		return err
	}
	if *target == "" {
		if echo, err = listenUDPEcho("127.0.0.1:0", 2); err != nil {
			return err
		}
		defer echo.close()
		dst = echo.addrPort()
	}
	assocs, err := openAssocs(ctx, as, *nAssoc, &c)
	if err != nil {
		return err
	}
	defer func() {
		for _, a := range assocs {
			a.close()
		}
	}()
	// One datagram through each association before the clock starts:
	// SOCKS 6 maps the association on its first datagram.
	for i, a := range assocs {
		if err := udpProbe(a, dst, *size, c.timeout); err != nil {
			return fmt.Errorf("association %d: first datagram: %w", i, err)
		}
	}

	var sent, rx, sendErr atomic.Int64
	var errs errCounter
	var mu sync.Mutex
	var lats []time.Duration
	var rwg, swg sync.WaitGroup
	var rx0 int64
	if echo != nil {
		rx0 = echo.rx.Load()
	}
	cpu, err := startCPU(c.serverPID)
	if err != nil {
		return err
	}
	t0 := time.Now()
	end := t0.Add(c.duration)
	for _, a := range assocs {
		// With -inflight, a token is taken per send and given back per
		// answer; a send that waits longer than -lost-after goes anyway.
		var tokens chan struct{}
		if *inflight > 0 {
			tokens = make(chan struct{}, *inflight)
			for range *inflight {
				tokens <- struct{}{}
			}
		}
		ba, batched := a.(batchAssoc)
		batched = batched && *batch > 1
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var local []time.Duration
			got := func(b []byte) {
				if len(b) < 16 {
					return
				}
				ts := int64(binary.BigEndian.Uint64(b))
				if ts < t0.UnixNano() {
					return // a late echo of a probe
				}
				if k := rx.Add(1); k%16 == 0 {
					local = append(local, time.Duration(time.Now().UnixNano()-ts))
				}
				if tokens != nil {
					select {
					case tokens <- struct{}{}:
					default:
					}
				}
			}
			if batched {
				ba.serve(got)
			} else {
				buf := make([]byte, 2048)
				for {
					n, err := a.recv(buf)
					if err != nil {
						break
					}
					got(buf[:n])
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
		swg.Add(1)
		go func() {
			defer swg.Done()
			per := *rate / float64(len(assocs))
			bufs := make([][]byte, *batch)
			for i := range bufs {
				bufs[i] = make([]byte, *size)
			}
			var mine int64
			nb := 0 // datagrams in bufs not sent yet
			fail := func(err error) {
				sendErr.Add(1)
				mu.Lock()
				errs.add(err)
				mu.Unlock()
			}
			lost := time.NewTimer(time.Hour)
			defer lost.Stop()
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					return
				}
				due := int64(1 << 62)
				elapsed := now.Sub(t0)
				if *tick > 0 {
					elapsed = elapsed.Truncate(*tick)
				}
				if per > 0 {
					due = int64(elapsed.Seconds()*per) + 1
				}
				for k := 0; mine < due && k < 64; {
					if tokens != nil {
						select {
						case <-tokens:
						default:
							lost.Reset(*lostAfter)
							select {
							case <-tokens:
							case <-lost.C:
							}
						}
					}
					buf := bufs[nb]
					binary.BigEndian.PutUint64(buf, uint64(time.Now().UnixNano()))
					binary.BigEndian.PutUint64(buf[8:], uint64(mine))
					mine++
					k++
					nb++
					if !batched {
						nb = 0
						if err := a.send(buf, dst); err != nil {
							fail(err)
							continue
						}
						sent.Add(1)
						continue
					}
					// A batch goes when it is full, when the send is
					// due no more, or when an answer must come first.
					if nb == len(bufs) || mine >= due || k == 64 || (tokens != nil && len(tokens) == 0) {
						n := nb
						nb = 0
						if err := ba.sendBatch(bufs[:n], dst); err != nil {
							fail(err)
							continue
						}
						sent.Add(int64(n))
					}
				}
				if per > 0 && mine >= due {
					if *tick > 0 {
						time.Sleep(time.Until(t0.Add(elapsed + *tick)))
					} else {
						time.Sleep(time.Millisecond)
					}
				}
			}
		}()
	}
	swg.Wait()
	sendEnd := time.Since(t0)
	sleepCtx(ctx, *drain)
	for _, a := range assocs {
		a.close()
	}
	rwg.Wait()
	s, got := sent.Load(), rx.Load()
	relayed := float64(2 * got)
	var up int64 = -1
	if echo != nil {
		up = echo.rx.Load() - rx0
		relayed = float64(up + got)
	}
	r := newResult("udp", &c)
	cpu.finish(r, "mdgram", relayed/1e6)
	r.Start, r.Seconds = t0, round(sendEnd.Seconds(), 3)
	r.Params["assocs"] = *nAssoc
	r.Params["rate"] = *rate
	if *tick > 0 {
		r.Params["tick_ms"] = float64(*tick) / float64(time.Millisecond)
	}
	if *inflight > 0 {
		r.Params["inflight"] = *inflight
	}
	if *batch > 1 {
		r.Params["batch"] = *batch
	}
	r.Params["size"] = *size
	r.Params["target"] = dst.String()
	sec := sendEnd.Seconds()
	r.Metrics["sent"] = float64(s)
	r.Metrics["received"] = float64(got)
	if up >= 0 {
		r.Metrics["echo_received"] = float64(up)
	}
	r.Metrics["relayed_datagrams"] = relayed
	r.Metrics["sent_per_sec"] = round(float64(s)/sec, 1)
	r.Metrics["received_per_sec"] = round(float64(got)/sec, 1)
	loss := 0.0
	if s > 0 {
		loss = 1 - float64(got)/float64(s)
	}
	r.Metrics["loss_pct"] = round(100*loss, 3)
	percentiles(r.Metrics, "rtt", lats)
	r.Errors, r.FirstError = errs.n, errs.first
	r.Notes = append(r.Notes, "relayed_datagrams counts both directions: what reached the echo plus what came back")
	return emit(stdout, stderr, r, fmt.Sprintf("%d assocs: sent %.0f/s, received %.0f/s, loss %.2f%%, rtt p50 %.2f ms",
		*nAssoc, float64(s)/sec, float64(got)/sec, 100*loss, r.Metrics["rtt_p50_ms"]))
}

// openAssocs opens n associations, 16 at a time.
func openAssocs(ctx context.Context, as associator, n int, c *common) ([]assoc, error) {
	out := make([]assoc, n)
	errc := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := as.associate(ctx)
			if err != nil {
				errc <- fmt.Errorf("association %d: %w", i, err)
				return
			}
			out[i] = a
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		for _, a := range out {
			if a != nil {
				a.close()
			}
		}
		return nil, err
	}
	return out, nil
}

// udpProbe sends one datagram through a and waits for its echo, retrying a
// few times (the first datagram of a fresh association may race its
// setup).
func udpProbe(a assoc, dst netip.AddrPort, size int, timeout time.Duration) error {
	got := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		_, err := a.recv(buf)
		got <- err
	}()
	buf := make([]byte, size)
	deadline := time.After(timeout)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := a.send(buf, dst); err != nil {
			return err
		}
		select {
		case err := <-got:
			return err
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("no echo within %v", timeout)
		}
	}
}
