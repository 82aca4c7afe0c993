package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// TestCRelay builds the C floor relay of examples/benchmarks (crelay.c) with
// cc and drives it the way run.sh does: bulk bytes through two streams (the
// built-in sink counts what arrived, so bytes must really go through the
// spliced path) and CONNECTs with the 16-byte echo (each echo compared). It
// also checks the relay's answers to requests it does not serve, so a floor
// row in RESULTS.md can only come from a relay that relays.
func TestCRelay(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "crelay")
	cc := exec.Command("cc", "-O2", "-Wall", "-Werror", "-o", bin, "../../examples/benchmarks/crelay/crelay.c")
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("cc crelay.c: %v\n%s", err, out)
	}
	port := gatewaytest.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var log bytes.Buffer
	cmd := exec.Command(bin, "127.0.0.1", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crelay does not listen on %s: %s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	result := func(t *testing.T, args ...string) *Result {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("sixgate-bench %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
		var r Result
		if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
			t.Fatalf("result line %q: %v", out.String(), err)
		}
		if r.Errors > 0 {
			t.Errorf("%d errors, first: %s", r.Errors, r.FirstError)
		}
		return &r
	}

	t.Run("thru", func(t *testing.T) {
		r := result(t, "thru", "-proto", "socks5", "-proxy", addr, "-streams", "2",
			"-duration", "300ms", "-warmup", "50ms", "-server-pid", pid)
		// 300 ms of bulk through a splice relay on loopback carries far more
		// than the 16 KiB that stay on the read/write path.
		if b := r.Metrics["bytes_per_sec"]; b < 10<<20 {
			t.Errorf("bytes_per_sec = %v, want > 10 MiB/s through the spliced path", b)
		}
	})
	t.Run("connrate", func(t *testing.T) {
		r := result(t, "connrate", "-proto", "socks5", "-proxy", addr, "-n", "200", "-c", "8", "-server-pid", pid)
		if r.Metrics["connections"] != 200 {
			t.Errorf("connections = %v, want 200", r.Metrics["connections"])
		}
	})
	t.Run("refusals", func(t *testing.T) {
		dead := gatewaytest.FreePort(t) // nothing listens here
		for _, tc := range []struct {
			name      string
			greet     []byte
			req       []byte
			wantGreet []byte
			wantReply byte
		}{
			{"no acceptable method", []byte{5, 1, 2}, nil, []byte{5, 0xff}, 0},
			{"BIND", []byte{5, 1, 0}, []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, []byte{5, 0}, 7},
			{"domain name", []byte{5, 1, 0}, []byte{5, 1, 0, 3, 1, 'x', 0, 80}, []byte{5, 0}, 8},
			{"refused", []byte{5, 1, 0}, []byte{5, 1, 0, 1, 127, 0, 0, 1, byte(dead >> 8), byte(dead)}, []byte{5, 0}, 5},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(tc.greet); err != nil {
					t.Fatal(err)
				}
				got := make([]byte, 2)
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, tc.wantGreet) {
					t.Fatalf("method reply %x (%v), want %x", got, err, tc.wantGreet)
				}
				if tc.req != nil {
					if _, err := c.Write(tc.req); err != nil {
						t.Fatal(err)
					}
					rep := make([]byte, 10)
					if _, err := io.ReadFull(c, rep); err != nil || rep[0] != 5 || rep[1] != tc.wantReply {
						t.Fatalf("reply %x (%v), want code %d", rep, err, tc.wantReply)
					}
				}
				// Then the relay closes the connection.
				if n, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("after the refusal: %d bytes, %v; want EOF", n, err)
				}
			})
		}
	})
	// Peers that went away mid-transfer (the load's streams stop by closing)
	// must not have ended the relay: it still answers.
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("crelay is gone after the runs: %v\n%s", err, log.String())
	}
	c.Close()
}
