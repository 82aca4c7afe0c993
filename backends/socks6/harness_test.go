package socks6

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
)

// binPath is the sixgate binary, built once, that plays the upstream proxy.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sixgate-s6backend")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "sixgate")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/sixgate/sixgate/cmd/sixgate")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sixgate:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// Test credentials configured in every upstream with users.
const (
	testUser = "alice"
	testPass = "s3cret"
)

// upstreamOpts shape the upstream sixgate's configuration.
type upstreamOpts struct {
	// users adds the users block and `users = "staff"` to the frontend.
	users bool
	// dialect is the frontend's dialect attribute, if set.
	dialect string
	// certFile and keyFile add a tls block.
	certFile, keyFile string
	// dialTimeout is the direct backend's dial_timeout.
	dialTimeout string
	// destinations are added to the allow route (127.0.0.0/8, ::1/128 and
	// localhost are always there).
	destinations []string
	// limits is the body of a top-level limits block.
	limits string
	// prefix runs the process inside a network namespace.
	prefix []string
	// udp gives the frontend its default UDP relay endpoint (the same
	// host:port as the TCP listener); without it udp_listen is "off".
	udp bool
	// dtls adds a DTLS relay endpoint (needs certFile and keyFile); its
	// address is upstream.DTLSAddr.
	dtls bool
	// udpListen, when set, is the frontend's udp_listen (overrides udp).
	udpListen string
}

// upstream is a running `sixgate run` with a SOCKS 6 frontend named "up"
// and a direct backend.
type upstream struct {
	t    testing.TB
	opts upstreamOpts
	port int
	cfg  string
	// Addr is host:port of the SOCKS 6 listener (and of the UDP relay
	// endpoint with upstreamOpts.udp).
	Addr string
	// DTLSAddr is host:port of the DTLS relay endpoint, if any.
	DTLSAddr string

	mu     sync.Mutex
	log    bytes.Buffer
	admin  string
	cmd    *exec.Cmd
	exited chan struct{}
}

var adminRE = regexp.MustCompile(`msg=listening endpoint=admin addr=(\S+)`)

func startUpstream(t testing.TB, o upstreamOpts) *upstream {
	t.Helper()
	u := &upstream{t: t, opts: o, port: gatewaytest.FreePort(t)}
	u.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(u.port))
	if o.dtls {
		u.DTLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(gatewaytest.FreePort(t)))
	}
	u.cfg = filepath.Join(t.TempDir(), "upstream.hcl")
	if err := os.WriteFile(u.cfg, []byte(u.config()), 0o600); err != nil {
		t.Fatal(err)
	}
	u.start()
	t.Cleanup(u.stop)
	return u
}

func (u *upstream) config() string {
	o := u.opts
	var b strings.Builder
	b.WriteString("admin {\n  listen = \"127.0.0.1:0\"\n}\n")
	if o.users {
		fmt.Fprintf(&b, "users \"staff\" {\n  user %q {\n    password = %q\n  }\n}\n", testUser, testPass)
	}
	if o.limits != "" {
		fmt.Fprintf(&b, "limits {\n%s\n}\n", o.limits)
	}
	fmt.Fprintf(&b, "frontend \"socks6\" \"up\" {\n  listen     = %q\n", u.Addr)
	switch {
	case o.udpListen != "":
		fmt.Fprintf(&b, "  udp_listen = %q\n", o.udpListen)
	case !o.udp:
		b.WriteString("  udp_listen = \"off\"\n")
	}
	if o.dtls {
		fmt.Fprintf(&b, "  dtls_listen = %q\n", u.DTLSAddr)
	}
	if o.users {
		b.WriteString("  users      = \"staff\"\n")
	}
	if o.dialect != "" {
		fmt.Fprintf(&b, "  dialect    = %q\n", o.dialect)
	}
	if o.certFile != "" {
		fmt.Fprintf(&b, "  tls {\n    cert_file = %q\n    key_file  = %q\n  }\n", o.certFile, o.keyFile)
	}
	b.WriteString("}\n")
	b.WriteString("backend \"direct\" \"out\" {\n")
	if o.dialTimeout != "" {
		fmt.Fprintf(&b, "  dial_timeout = %q\n", o.dialTimeout)
	}
	b.WriteString("}\n")
	dests := append([]string{"127.0.0.0/8", "::1/128", "localhost"}, o.destinations...)
	quoted := make([]string, len(dests))
	for i, d := range dests {
		quoted[i] = strconv.Quote(d)
	}
	fmt.Fprintf(&b, "route {\n  destinations = [%s]\n  backend      = \"out\"\n}\n", strings.Join(quoted, ", "))
	return b.String()
}

// start runs the process and returns once its listeners are bound.
func (u *upstream) start() {
	t := u.t
	t.Helper()
	argv := append(append([]string{}, u.opts.prefix...), binPath, "run", "--config", u.cfg)
	cmd := exec.Command(argv[0], argv[1:]...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	started := make(chan struct{})
	u.mu.Lock()
	u.cmd, u.exited, u.admin = cmd, exited, ""
	u.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var once sync.Once
		for sc.Scan() {
			line := sc.Text()
			u.mu.Lock()
			u.log.WriteString(line + "\n")
			if m := adminRE.FindStringSubmatch(line); m != nil {
				u.admin = m[1]
			}
			u.mu.Unlock()
			// Every listener is bound before the first "listening" line.
			if strings.Contains(line, "msg=listening") || strings.Contains(line, `msg="cannot start"`) {
				once.Do(func() { close(started) })
			}
		}
		io.Copy(io.Discard, stderr)
		cmd.Wait()
		once.Do(func() { close(started) })
		close(exited)
	}()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatalf("upstream did not start:\n%s", u.Log())
	}
	select {
	case <-exited:
		t.Fatalf("upstream exited:\n%s", u.Log())
	default:
	}
	// The admin line may come a moment after the first one.
	deadline := time.Now().Add(5 * time.Second)
	for u.adminAddr() == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (u *upstream) stop() {
	u.mu.Lock()
	cmd, exited := u.cmd, u.exited
	u.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if u.t.Failed() {
		u.t.Logf("upstream log:\n%s", u.Log())
	}
}

// restart kills the process and starts it again on the same port: every
// session it knew is gone.
func (u *upstream) restart() {
	u.t.Helper()
	u.mu.Lock()
	cmd, exited := u.cmd, u.exited
	u.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	u.start()
}

func (u *upstream) adminAddr() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.admin
}

// Log returns what the upstream logged so far.
func (u *upstream) Log() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.log.String()
}

// metric returns the value of the sample whose name and labels start with
// prefix (for example `sixgate_auth_total{frontend="up",result="session"}`),
// or 0 when there is none.
func (u *upstream) metric(prefix string) float64 {
	u.t.Helper()
	resp, err := http.Get("http://" + u.adminAddr() + "/metrics")
	if err != nil {
		u.t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				u.t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func authMetric(result string) string {
	return fmt.Sprintf(`sixgate_auth_total{frontend="up",result=%q}`, result)
}

// echoServer accepts on ln and echoes every connection until EOF.
type echoServer struct {
	ln   net.Listener
	wg   sync.WaitGroup
	port uint16
}

func newEcho(t testing.TB, network, addr string) *echoServer {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return serveEcho(t, ln)
}

func serveEcho(t testing.TB, ln net.Listener) *echoServer {
	e := &echoServer{ln: ln, port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	var mu sync.Mutex
	var conns []net.Conn
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		e.wg.Wait()
	})
	return e
}

// closedPort returns a port on 127.0.0.1 where nothing listens.
func closedPort(t testing.TB) uint16 {
	return uint16(gatewaytest.FreePort(t))
}

func ipAddr(s string, port uint16) gateway.Addr {
	return gateway.Addr{IP: netip.MustParseAddr(s), Port: port}
}

func mustClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// roundTrip writes n pseudo-random bytes on c, reads them back and checks
// them, half-closing at the end.
func roundTrip(t testing.TB, c net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		errc <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echo differs from what was sent")
	}
	c.SetDeadline(time.Time{})
}

func wantReason(t testing.TB, err error, want gateway.Reason) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", want)
	}
	if got := gateway.ReasonOf(err); got != want {
		t.Fatalf("reason %s (%v), want %s", got, err, want)
	}
	if !strings.HasPrefix(err.Error(), "socks6 backend: ") {
		t.Errorf("error %q lacks the component prefix", err)
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost and
// returns the certificate and key file paths.
func writeCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "sixgate test upstream"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost", "upstream.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// netns is a network namespace created for one test.
type netns struct {
	t    testing.TB
	name string
}

// newNetns creates a namespace with lo up, deleted when the test ends, or
// skips the test when namespaces cannot be made here.
func newNetns(t testing.TB) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) to create network namespaces")
	}
	b := make([]byte, 4)
	rand.Read(b)
	n := &netns{t: t, name: "sg6b-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	n.ip("link", "set", "lo", "up")
	return n
}

// ip runs ip(8) inside the namespace.
func (n *netns) ip(args ...string) {
	n.t.Helper()
	args = append([]string{"-n", n.name}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sysctl sets a sysctl inside the namespace.
func (n *netns) sysctl(kv string) {
	n.t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", n.name, "sysctl", "-qw", kv).CombinedOutput(); err != nil {
		n.t.Fatalf("sysctl %s: %v: %s", kv, err, out)
	}
}

func (n *netns) prefix() []string { return []string{"ip", "netns", "exec", n.name} }

// do runs f on an OS thread switched into the namespace; sockets f creates
// stay in the namespace after f returns. f must not call t.Fatal.
func (n *netns) do(f func()) {
	n.t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		target, err := os.Open("/run/netns/" + n.name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		f()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		n.t.Fatal(err)
	}
}

// errorsAs is errors.As for a target type.
func errorsAs[T error](err error) (T, bool) {
	var target T
	ok := errors.As(err, &target)
	return target, ok
}
