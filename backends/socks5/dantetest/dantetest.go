// Package dantetest runs Dante's SOCKS 5 server, danted, on 127.0.0.1 for
// tests: a real third-party server that speaks CONNECT, BIND and UDP
// ASSOCIATE, with or without RFC 1929 username/password authentication.
//
// danted comes from the Debian package dante-server (.ci/setup installs
// it); Start fails the test, rather than skipping it, when it is missing.
// Dante checks usernames against the system's accounts, so the
// authenticated instance runs in a private mount namespace in which copies
// of /etc/passwd and /etc/shadow that add the account User are
// bind-mounted over the originals: the host's files are never touched.
// That needs root (CAP_SYS_ADMIN for unshare and mount). This package is
// for tests only; it never runs in the gateway.
package dantetest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The account the authenticated instance accepts.
const (
	User     = "sixgatetest"
	Password = "dante-s3cret"
)

// passwordHash is the SHA-512 crypt(3) hash of Password with the fixed salt
// "sixgate5alt", made once with
//
//	openssl passwd -6 -salt sixgate5alt dante-s3cret
//
// and fixed here so that the tests need neither openssl nor a crypt(3)
// implementation.
const passwordHash = "$6$sixgate5alt$ES/uzKQPEJu7s60sptNL4vuHAqCPPX/iYA.gZTF1jU7idVjdNP7OebsmUWj2wZwv8i2K.m0aNkqZpGrbG5oU8/"

// Options configures an instance.
type Options struct {
	// Auth requires username/password authentication (socksmethod:
	// username) with User and Password; otherwise no authentication
	// (socksmethod: none).
	Auth bool
}

// Server is a running danted.
type Server struct {
	// Addr is the SOCKS 5 address, 127.0.0.1:port.
	Addr string
	// Conf is the path of the configuration file.
	Conf string

	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	mu      sync.Mutex
	out     bytes.Buffer
}

// Binary returns the path of danted, failing the test when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("danted"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/danted"); err == nil {
		return "/usr/sbin/danted"
	}
	t.Fatal("danted is not installed (Debian package dante-server; .ci/setup installs it)")
	return ""
}

// Start runs danted with a configuration of its own on a free port of
// 127.0.0.1 and returns once the port accepts connections. The instance is
// stopped when the test ends; its log is printed if the test failed.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := Binary(t)
	if opts.Auth && os.Geteuid() != 0 {
		t.Fatal("dantetest: the username-authenticated danted needs root (a private mount namespace with its own /etc/passwd and /etc/shadow)")
	}
	var lastErr error
	for range 3 { // the free port may be taken before danted binds it
		s, err := start(t, bin, opts)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatal(lastErr)
	return nil
}

func start(t testing.TB, bin string, opts Options) (*Server, error) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Addr:    fmt.Sprintf("127.0.0.1:%d", port),
		Conf:    filepath.Join(dir, "danted.conf"),
		logPath: filepath.Join(dir, "danted.log"),
		exited:  make(chan struct{}),
	}
	method := "none"
	if opts.Auth {
		method = "username"
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "logoutput: %s\n", s.logPath)
	fmt.Fprintf(&conf, "internal: 127.0.0.1 port = %d\n", port)
	conf.WriteString("external: lo\n")
	fmt.Fprintf(&conf, "socksmethod: %s\n", method)
	conf.WriteString("clientmethod: none\n")
	if os.Geteuid() == 0 {
		conf.WriteString("user.privileged: root\nuser.unprivileged: nobody\n")
	}
	conf.WriteString("client pass {\n  from: 127.0.0.0/8 to: 0.0.0.0/0\n  log: error\n}\n")
	for _, to := range []string{"0.0.0.0/0", "::/0"} {
		fmt.Fprintf(&conf, "socks pass {\n  from: 127.0.0.0/8 to: %s\n"+
			"  command: connect bind udpassociate udpreply bindreply\n  log: error connect disconnect\n}\n", to)
	}
	// Replies (UDP datagrams, BIND peers) from IPv6 hosts: Dante matches
	// them with the remote host as "from".
	conf.WriteString("socks pass {\n  from: ::/0 to: 0.0.0.0/0\n  command: udpreply bindreply\n  log: error\n}\n")
	if err := os.WriteFile(s.Conf, []byte(conf.String()), 0o644); err != nil {
		return nil, err
	}
	pid := filepath.Join(dir, "danted.pid")
	// -N 1: one server process; no -D: stay in the foreground.
	argv := []string{bin, "-f", s.Conf, "-N", "1", "-p", pid}
	if opts.Auth {
		passwd, shadow, err := accounts(dir)
		if err != nil {
			return nil, err
		}
		argv = []string{"unshare", "-m", "sh", "-c",
			`mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/shadow && shift 2 && exec "$@"`,
			"sh", passwd, shadow, bin, "-f", s.Conf, "-N", "1", "-p", pid}
	}
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout = &lockedWriter{s}
	s.cmd.Stderr = &lockedWriter{s}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("dantetest: starting danted: %w", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("danted %s log:\n%s", s.Addr, s.Log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("dantetest: danted exited at start:\n%s", s.Log())
		default:
		}
		err := s.probe(opts)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("dantetest: danted does not accept on %s: %v\n%s", s.Addr, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe checks that danted answers a method negotiation, not only that its
// port accepts: right after start, danted's main process accepts before
// its negotiation child is up and may drop (reset) what it accepted.
func (s *Server) probe(opts Options) error {
	c, err := net.DialTimeout("tcp", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	method := byte(0x00)
	if opts.Auth {
		method = 0x02
	}
	if _, err := c.Write([]byte{0x05, 0x01, method}); err != nil {
		return err
	}
	var reply [2]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return err
	}
	if reply != [2]byte{0x05, method} {
		return fmt.Errorf("method selection % x, want 05 %02x", reply, method)
	}
	return nil
}

// stop ends danted: SIGTERM to the process it started, then SIGKILL to its
// process group (danted's children) if it lingers.
func (s *Server) stop() {
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(3 * time.Second):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-s.exited
}

// Log returns danted's log file and its output so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(b) + s.out.String()
}

type lockedWriter struct{ s *Server }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.out.Write(p)
}

// accounts writes copies of /etc/passwd and /etc/shadow that add User.
func accounts(dir string) (passwd, shadow string, err error) {
	pw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", "", err
	}
	sh, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return "", "", err
	}
	passwd, shadow = filepath.Join(dir, "passwd"), filepath.Join(dir, "shadow")
	pw = append(withNewline(pw), User+":x:64999:64999:sixgate test:/nonexistent:/usr/sbin/nologin\n"...)
	sh = append(withNewline(sh), User+":"+passwordHash+":19000:0:99999:7:::\n"...)
	if err := os.WriteFile(passwd, pw, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(shadow, sh, 0o640); err != nil {
		return "", "", err
	}
	return passwd, shadow, nil
}

func withNewline(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return append(b, '\n')
	}
	return b
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
