// Command sixgate is the SOCKS 6 / SOCKS 5 / TURN gateway.
//
// Usage:
//
//	sixgate run --config FILE
//	sixgate validate --config FILE
//	sixgate version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage:
  sixgate run --config FILE        run the gateway
  sixgate validate --config FILE   check a configuration file
  sixgate version                  print the version`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "sixgate %s\n", version)
		return 0
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "sixgate: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (HCL)")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if *path == "" {
		fmt.Fprintf(stderr, "sixgate %s: --config FILE is required\n", name)
		return "", false
	}
	return *path, true
}

func load(path string, stderr io.Writer) (*gateway.Config, bool) {
	cfg, diags := gateway.LoadConfig(path, registry())
	if len(diags) > 0 {
		printDiags(stderr, path, diags)
	}
	return cfg, !diags.HasErrors()
}

// printDiags prints each diagnostic as "file:line:column: severity:
// summary; detail" (the form editors jump to), followed by the source line
// with the range underlined.
func printDiags(w io.Writer, path string, diags hcl.Diagnostics) {
	src, _ := os.ReadFile(path)
	lines := strings.Split(string(src), "\n")
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "; " + d.Detail
		}
		if d.Subject == nil {
			fmt.Fprintf(w, "%s: %s: %s\n", path, sev, msg)
			continue
		}
		r := d.Subject
		fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", r.Filename, r.Start.Line, r.Start.Column, sev, msg)
		if r.Start.Line >= 1 && r.Start.Line <= len(lines) {
			line := lines[r.Start.Line-1]
			fmt.Fprintf(w, "    %s\n", line)
			width := 1
			if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
				width = r.End.Column - r.Start.Column
			}
			pad := strings.Repeat(" ", max(r.Start.Column-1, 0))
			fmt.Fprintf(w, "    %s%s\n", pad, strings.Repeat("^", width))
		}
	}
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if _, ok := load(path, stderr); !ok {
		return 1
	}
	fmt.Fprintln(stdout, "configuration is valid")
	return 0
}

func newLogger(w io.Writer, cfg *gateway.Config, level *slog.LevelVar) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if cfg != nil && cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
	}
	cfg, ok := load(path, stderr)
	if !ok {
		return 1
	}
	level := new(slog.LevelVar)
	log := newLogger(stderr, cfg, level)
	srv := gateway.NewServer(gateway.ServerOptions{
		Log: log, Level: level, Metrics: gateway.NewMetrics(version), Registry: registry(),
	})
	if err := srv.Start(cfg); err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	for k, a := range srv.Addrs() {
		log.Info("listening", "endpoint", k, "addr", a.String())
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP, syscall.SIGUSR1:
			newCfg, diags := gateway.LoadConfig(path, registry())
			if diags.HasErrors() {
				printDiags(stderr, path, diags)
				srv.ReloadFailed(diags)
				continue
			}
			srv.Reload(newCfg)
		case syscall.SIGTERM, syscall.SIGINT:
			log.Info("shutting down", "signal", sig.String(), "grace", cfg.ShutdownGrace)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("drain ended with sessions still open", "error", err)
			}
			log.Info("stopped")
			return 0
		}
	}
	return 0
}
