// Command sixgate-bench is the load tool for sixgate and the peers it is
// compared with (a direct loopback path, other SOCKS 5 servers, TURN
// servers). Each subcommand runs one bounded load against a proxy speaking
// -proto direct|socks5|socks6, prints one JSON result line on stdout and a
// human summary on stderr.
//
// Usage:
//
//	sixgate-bench thru     [flags]   bulk bytes through N streams to a sink
//	sixgate-bench connrate [flags]   dial, CONNECT, 16-byte echo, close; C workers, N total
//	sixgate-bench udp      [flags]   datagrams/s and loss through UDP associations
//	sixgate-bench ttfb     [flags]   time to the first response byte (in RTTs with delay)
//	sixgate-bench idle     [flags]   hold K idle CONNECTs / UDP associations, read the server
//	sixgate-bench delay    [flags]   a TCP relay adding a one-way delay each way
//	sixgate-bench serve    [flags]   run the built-in TCP sink/echo and UDP echo
//	sixgate-bench uclient  [flags] -- turnutils_uclient ARGS   server CPU per datagram of a uclient run
//	sixgate-bench report   [flags]   Markdown tables from a file of result lines
//
// Every load subcommand takes -server-pid P and then reports the CPU-seconds
// the server process tree used during the run (utime+stime of P, its live
// descendants and their reaped children, from /proc), normalized per GiB,
// per 1k connections or per million datagrams.
//
// The tool only ever sends traffic to the addresses it is given (loopback in
// the benchmarks) and every load is bounded in count and time.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: sixgate-bench COMMAND [flags]

commands:
  thru      bulk bytes through N streams for a duration (bytes/s)
  connrate  C workers, N connections: dial, CONNECT, 16-byte echo, close
  udp       datagrams per second and loss through UDP associations
  ttfb      time from the connection to the proxy to the first response byte
  idle      hold K idle CONNECT sessions / UDP associations, read RSS, fds, goroutines
  delay     TCP relay adding a fixed one-way delay in each direction
  serve     run the built-in TCP sink, TCP echo and UDP echo
  uclient   run turnutils_uclient and report the server's CPU per datagram
  report    turn a file of result lines into Markdown tables

run "sixgate-bench COMMAND -h" for a command's flags.`

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"thru":     cmdThru,
		"connrate": cmdConnrate,
		"udp":      cmdUDP,
		"ttfb":     cmdTTFB,
		"idle":     cmdIdle,
		"delay":    cmdDelay,
		"serve":    cmdServe,
		"uclient":  cmdUclient,
		"report":   cmdReport,
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fn, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "sixgate-bench: unknown command %q\n%s\n", args[0], usage)
		return 2
	}
	if err := fn(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintf(stderr, "sixgate-bench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// errUsage is returned for bad flags (the flag package already said why).
var errUsage = errors.New("usage")
