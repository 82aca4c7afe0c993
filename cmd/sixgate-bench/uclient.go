package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// uclient's closing totals.
var (
	uclientTotals = regexp.MustCompile(`start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)`)
	uclientLost   = regexp.MustCompile(`Total lost packets (\d+) \(([0-9.]+)%\)`)
)

// cmdUclient runs coturn's turnutils_uclient (the arguments after --)
// against a TURN server and reports the server's CPU per million relayed
// datagrams. Relayed datagrams are counted as what uclient sent plus what
// it received back through the server (turnutils_peer echoes).
func cmdUclient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := c.flags("uclient", stderr)
	fs.DurationVar(&c.duration, "duration", 5*time.Minute, "kill uclient after this long")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(stderr, "usage: sixgate-bench uclient [flags] -- turnutils_uclient ARGS...")
		return errUsage
	}
	c.proto = "turn"
	cpu, err := startCPU(c.serverPID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	runErr := cmd.Run()
	el := time.Since(t0)
	text := out.String()
	m := uclientTotals.FindAllStringSubmatch(text, -1)
	if m == nil {
		return fmt.Errorf("%s: no totals in its output (%v):\n%s", argv[0], runErr, tailText(text, 3000))
	}
	last := m[len(m)-1]
	sent, _ := strconv.ParseFloat(last[1], 64)
	got, _ := strconv.ParseFloat(last[2], 64)
	relayed := sent + got
	r := newResult("uclient", &c)
	r.Proxy = ""
	cpu.finish(r, "mdgram", relayed/1e6)
	r.Start, r.Seconds = t0, round(el.Seconds(), 3)
	r.Params["argv"] = strings.Join(argv, " ")
	r.Metrics["sent"] = sent
	r.Metrics["received"] = got
	r.Metrics["relayed_datagrams"] = relayed
	r.Metrics["received_per_sec"] = round(got/el.Seconds(), 1)
	if l := uclientLost.FindStringSubmatch(text); l != nil {
		v, _ := strconv.ParseFloat(l[2], 64)
		r.Metrics["loss_pct"] = round(v, 3)
	}
	if runErr != nil {
		r.Errors, r.FirstError = 1, runErr.Error()
	}
	r.Notes = append(r.Notes, "relayed_datagrams = sent + received by uclient; seconds include allocation setup")
	return emit(stdout, stderr, r, fmt.Sprintf("sent %.0f, received %.0f (%.0f/s), loss %.2f%%",
		sent, got, got/el.Seconds(), r.Metrics["loss_pct"]))
}

func tailText(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
