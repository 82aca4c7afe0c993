package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the sixgate binary built once for the process tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sixgate-bin")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "sixgate")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sixgate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gatewayProc is a running `sixgate run`.
type gatewayProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	cfg    string
	mu     sync.Mutex
	log    bytes.Buffer
	addrs  map[string]string
	exited chan struct{}
	err    error
}

var listenRE = regexp.MustCompile(`msg=listening endpoint="?([^"]+?)"? addr=(\S+)`)

// startGateway writes cfg to a file and runs sixgate on it until the test
// ends; it returns once every listener is bound.
func startGateway(t testing.TB, cfg string) *gatewayProc {
	t.Helper()
	return startGatewayCmd(t, cfg, nil)
}

// startGatewayCmd is startGateway with a command prefix (for example
// "ip netns exec NAME" to run the gateway inside a network namespace).
func startGatewayCmd(t testing.TB, cfg string, prefix []string) *gatewayProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gateway.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{t: t, cfg: path, addrs: map[string]string{}, exited: make(chan struct{})}
	argv := append(append([]string{}, prefix...), binPath, "run", "--config", path)
	g.cmd = exec.Command(argv[0], argv[1:]...)
	stderr, err := g.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			g.mu.Lock()
			g.log.WriteString(line + "\n")
			if m := listenRE.FindStringSubmatch(line); m != nil {
				g.addrs[m[1]] = m[2]
			}
			g.mu.Unlock()
			if strings.Contains(line, "msg=listening endpoint=admin") || strings.Contains(line, `msg="cannot start"`) {
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
		g.err = g.cmd.Wait()
		once.Do(func() { close(started) })
		close(g.exited)
	}()
	t.Cleanup(func() {
		g.cmd.Process.Signal(syscall.SIGKILL)
		<-g.exited
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.Log())
		}
	})
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("gateway did not start:\n%s", g.Log())
	}
	// The admin line is printed last among "listening" lines only by chance
	// of map order; give the others a moment.
	time.Sleep(50 * time.Millisecond)
	select {
	case <-g.exited:
		t.Fatalf("gateway exited: %v\n%s", g.err, g.Log())
	default:
	}
	return g
}

// Log returns what the gateway logged so far.
func (g *gatewayProc) Log() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

// Addr returns the bound address of an endpoint key ("admin", "tcp
// 127.0.0.1:1080").
func (g *gatewayProc) Addr(key string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.addrs[key]
}

// Signal sends a signal to the gateway.
func (g *gatewayProc) Signal(sig os.Signal) { g.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns its exit code.
func (g *gatewayProc) Wait(d time.Duration) (int, bool) {
	select {
	case <-g.exited:
		return g.cmd.ProcessState.ExitCode(), true
	case <-time.After(d):
		return -1, false
	}
}

// get fetches an admin URL path.
func (g *gatewayProc) get(path string) (int, string) {
	g.t.Helper()
	resp, err := http.Get("http://" + g.Addr("admin") + path)
	if err != nil {
		g.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rewriteConfig replaces the config file (for reload tests).
func (g *gatewayProc) rewriteConfig(cfg string) {
	if err := os.WriteFile(g.cfg, []byte(cfg), 0o600); err != nil {
		g.t.Fatal(err)
	}
}
