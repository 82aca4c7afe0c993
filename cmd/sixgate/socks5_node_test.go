package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// nodeClient runs testdata/socks5client.js (the npm package "socks", a real
// third-party SOCKS 5 client) and returns its stdout as a line scanner.
func nodeClient(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	dir := os.Getenv("SIXGATE_NODE_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "sixgate-node")
	}
	mods := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(mods, "socks")); err != nil {
		t.Fatalf("npm package socks missing in %s (.ci/setup installs it)", mods)
	}
	cmd := exec.Command("node", append([]string{"testdata/socks5client.js"}, args...)...)
	cmd.Env = append(os.Environ(), "SIXGATE_NODE_MODULES="+mods)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func TestSOCKS5BindWithNodeClient(t *testing.T) {
	authPort, anonPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	startGateway(t, socks5Config(authPort, anonPort))
	for _, auth := range [][]string{nil, {"alice", "s3cret"}} {
		port := anonPort
		if auth != nil {
			port = authPort
		}
		args := append([]string{"bind", "127.0.0.1", fmt.Sprint(port)}, auth...)
		cmd, sc := nodeClient(t, args...)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "BOUND ") {
			t.Fatalf("no BOUND line: %q", sc.Text())
		}
		_, bport, _ := net.SplitHostPort(strings.TrimPrefix(sc.Text(), "BOUND "))
		peer, err := net.DialTimeout("tcp", "127.0.0.1:"+bport, 5*time.Second)
		if err != nil {
			t.Fatalf("peer dial: %v", err)
		}
		peer.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, len("hello-from-client"))
		if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != "hello-from-client" {
			t.Fatalf("peer read %q %v", buf, err)
		}
		peer.Write([]byte("hello-from-peer"))
		peer.(*net.TCPConn).CloseWrite()
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "PEER hello-from-peer FROM 127.0.0.1") {
			t.Fatalf("client saw %q", sc.Text())
		}
		peer.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("node client: %v", err)
		}
	}
}
