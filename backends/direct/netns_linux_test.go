//go:build linux

package direct

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

// The tests in this file build network namespaces with iproute2 and run
// dials inside them. They need root; they never touch the host's own
// namespace.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("iproute2 is needed: %v", err)
	}
}

// run executes a command, failing the test on error.
func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newNetns creates a network namespace with lo up and deletes it at cleanup.
func newNetns(t *testing.T, suffix string) string {
	t.Helper()
	name := fmt.Sprintf("sgdirect-%d-%s", os.Getpid(), suffix)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// inNetns runs fn on an OS thread that has joined the namespace ns and waits
// for it. Sockets fn creates in its own goroutine belong to ns. The thread is
// never returned to the runtime (its goroutine exits while locked), so the
// namespace cannot leak to other goroutines. fn must not call t.Fatal.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	f, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		fn()
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestDialFailuresNetns builds two namespaces joined by a veth pair:
//
//	client 10.77.0.1/24 --veth-- 10.77.0.2/24 sink (ip_forward=0)
//
// In the client namespace 10.77.9.0/24 is routed via the sink, which drops
// what it cannot forward without a word, so a SYN there vanishes (timeout);
// 10.77.0.99 is on-link but unassigned, so ARP fails (host unreachable);
// 10.78.0.0/16 has no route at all (network unreachable).
func TestDialFailuresNetns(t *testing.T) {
	requireRoot(t)
	client := newNetns(t, "c")
	sink := newNetns(t, "s")
	va, vb := fmt.Sprintf("sgd%da", os.Getpid()), fmt.Sprintf("sgd%db", os.Getpid())
	run(t, "ip", "link", "add", va, "netns", client, "type", "veth", "peer", "name", vb, "netns", sink)
	run(t, "ip", "-n", client, "addr", "add", "10.77.0.1/24", "dev", va)
	run(t, "ip", "-n", sink, "addr", "add", "10.77.0.2/24", "dev", vb)
	run(t, "ip", "-n", client, "link", "set", va, "up")
	run(t, "ip", "-n", sink, "link", "set", vb, "up")
	run(t, "ip", "-n", client, "route", "add", "10.77.9.0/24", "via", "10.77.0.2")
	run(t, "ip", "netns", "exec", sink, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	// One ARP probe, 200 ms apart: an unanswered neighbour fails fast.
	run(t, "ip", "netns", "exec", client, "sysctl", "-qw",
		"net.ipv4.neigh."+va+".mcast_solicit=1", "net.ipv4.neigh."+va+".ucast_solicit=0",
		"net.ipv4.neigh."+va+".app_solicit=0", "net.ipv4.neigh."+va+".retrans_time_ms=200")

	tests := []struct {
		name string
		dest string
		want gateway.Reason
		max  time.Duration
	}{
		{name: "timeout", dest: "10.77.9.9", want: gateway.ReasonTimeout, max: 5 * time.Second},
		{name: "host unreachable", dest: "10.77.0.99", want: gateway.ReasonHostUnreachable, max: 5 * time.Second},
		{name: "network unreachable", dest: "10.78.0.1", want: gateway.ReasonNetUnreachable, max: 5 * time.Second},
		{name: "refused", dest: "10.77.0.2", want: gateway.ReasonRefused, max: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{DialTimeout: "700ms"}, Options{})
			var err error
			var elapsed time.Duration
			inNetns(t, client, func() {
				start := time.Now()
				var st *gateway.Stream
				st, err = b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr(tt.dest, 80)})
				elapsed = time.Since(start)
				if st != nil {
					st.Conn.Close()
				}
			})
			t.Logf("dial %s: %v after %v", tt.dest, err, elapsed)
			wantReason(t, err, tt.want)
			if elapsed > tt.max {
				t.Errorf("took %v, want at most %v", elapsed, tt.max)
			}
			if tt.want == gateway.ReasonTimeout && elapsed < 600*time.Millisecond {
				t.Errorf("timed out after %v, before the 700ms dial_timeout", elapsed)
			}
		})
	}
}

// TestDialTFONetns checks that with TCP Fast Open the initial data really
// rides in the SYN: the namespace lets clients send SYN data without a cookie
// and servers accept it (net.ipv4.tcp_fastopen = 0x207), and TCP_INFO on the
// outgoing socket must report the SYN data acknowledged. A refused TFO dial,
// whose connect(2) returns before any packet is sent, must still fail.
func TestDialTFONetns(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t, "tfo")
	run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.tcp_fastopen=0x207")

	b := newBackend(t, Config{}, Options{})
	var (
		srv      *server
		closed   uint16
		st       *gateway.Stream
		dialErr  error
		refusErr error
		synData  bool
	)
	data := "GET / HTTP/1.1\r\nHost: tfo.test\r\n\r\n"
	inNetns(t, ns, func() {
		lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_FASTOPEN, 16) })
			if err != nil {
				return err
			}
			return serr
		}}
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Errorf("listen: %v", err)
			return
		}
		srv = serve(t, ln.(*net.TCPListener))
		ln2, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Errorf("listen: %v", err)
			return
		}
		closed = ln2.Addr().(*net.TCPAddr).AddrPort().Port()
		ln2.Close()

		tfo := gateway.StackOptions{TFO: gateway.Want[uint16](0)}
		st, dialErr = b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: ipAddr("127.0.0.1", srv.port()), InitialData: []byte(data), Options: tfo,
		})
		if dialErr == nil {
			synData = tcpInfoOpts(st.Conn.(*net.TCPConn))&tcpiOptSynData != 0
		}
		_, refusErr = b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: ipAddr("127.0.0.1", closed), InitialData: []byte(data), Options: tfo,
		})
	})
	if srv == nil {
		t.FailNow()
	}
	if dialErr != nil {
		t.Fatalf("Dial: %v", dialErr)
	}
	closeStream(t, st)
	if tfo := st.Options.TFO; tfo.Outcome != gateway.Applied {
		t.Errorf("TFO = %+v, want applied", tfo)
	}
	if !synData {
		t.Error("TCP_INFO does not report the initial data acknowledged in the SYN")
	}
	if got := readN(t, srv.next(t), len(data)); got != data {
		t.Errorf("server read %q, want %q", got, data)
	}
	wantReason(t, refusErr, gateway.ReasonRefused)
}

func tcpInfoOpts(c *net.TCPConn) uint8 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var opts uint8
	_ = rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			opts = info.Options
		}
	})
	return opts
}
