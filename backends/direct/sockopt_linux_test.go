//go:build linux

package direct

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

// sockInt reads an integer socket option from conn's socket.
func sockInt(t *testing.T, c syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatalf("getsockopt(%d, %d): %v", level, opt, gerr)
	}
	return v
}

func tcpInfo(t *testing.T, c syscall.Conn) *unix.TCPInfo {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return info
}

func TestDialStackOptions(t *testing.T) {
	v4, _ := dualLoopback(t)
	port := v4.port()
	tests := []struct {
		name              string
		ip                string
		opts              gateway.StackOptions
		tos, ttl          uint8
		df                bool
		tosOut, ttlOut    gateway.Outcome
		level, tosO, ttlO int
	}{
		{name: "ipv4", ip: "127.0.0.1",
			opts: gateway.StackOptions{TOS: gateway.Want[uint8](0x28), TTL: gateway.Want[uint8](42), DF: gateway.Want(true)},
			tos:  0x28, ttl: 42, df: true, tosOut: gateway.Applied, ttlOut: gateway.Applied,
			level: unix.IPPROTO_IP, tosO: unix.IP_TOS, ttlO: unix.IP_TTL},
		{name: "ipv6", ip: "::1",
			opts: gateway.StackOptions{TOS: gateway.Want[uint8](0xb8), TTL: gateway.Want[uint8](7), DF: gateway.Want(true)},
			tos:  0xb8, ttl: 7, df: true, tosOut: gateway.Applied, ttlOut: gateway.Applied,
			level: unix.IPPROTO_IPV6, tosO: unix.IPV6_TCLASS, ttlO: unix.IPV6_UNICAST_HOPS},
		{name: "ipv4 df off ttl zero", ip: "127.0.0.1",
			opts: gateway.StackOptions{TTL: gateway.Want[uint8](0), DF: gateway.Want(false)},
			ttl:  64, df: false, tosOut: gateway.NotRequested, ttlOut: gateway.Declined,
			level: unix.IPPROTO_IP, tosO: unix.IP_TOS, ttlO: unix.IP_TTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{})
			st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr(tt.ip, port), Options: tt.opts})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			closeStream(t, st)
			c := st.Conn.(*net.TCPConn)
			o := st.Options
			if o.TOS.Outcome != tt.tosOut || (tt.tosOut == gateway.Applied && o.TOS.Value != tt.tos) {
				t.Errorf("TOS = %+v, want %v %#x", o.TOS, tt.tosOut, tt.tos)
			}
			if tt.tosOut == gateway.Applied {
				if got := sockInt(t, c, tt.level, tt.tosO); got != int(tt.tos) {
					t.Errorf("getsockopt TOS = %#x, want %#x", got, tt.tos)
				}
			}
			if o.TTL.Outcome != tt.ttlOut || o.TTL.Value != tt.ttl {
				t.Errorf("TTL = %+v, want %v %d", o.TTL, tt.ttlOut, tt.ttl)
			}
			if got := sockInt(t, c, tt.level, tt.ttlO); got != int(tt.ttl) {
				t.Errorf("getsockopt TTL = %d, want %d", got, tt.ttl)
			}
			if o.DF.Outcome != gateway.Applied || o.DF.Value != tt.df {
				t.Errorf("DF = %+v, want applied %v", o.DF, tt.df)
			}
			var df bool
			if tt.level == unix.IPPROTO_IP {
				df = sockInt(t, c, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER) == unix.IP_PMTUDISC_DO
			} else {
				df = sockInt(t, c, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG) == 1
			}
			if df != tt.df {
				t.Errorf("getsockopt DF = %v, want %v", df, tt.df)
			}
		})
	}
}

// TestDialTFO runs TCP Fast Open against a loopback server in the test's
// own network namespace with the host's TFO settings: the initial data must
// arrive first whether or not it rides in the SYN.
func TestDialTFO(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	tests := []struct {
		name string
		max  uint16
		data string
	}{
		{name: "any size", max: 0, data: "GET / HTTP/1.0\r\n\r\n"},
		{name: "limited", max: 3, data: "hello fast open"},
		{name: "large", max: 0, data: strings.Repeat("x", 100000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{})
			st, err := b.Dial(context.Background(), &gateway.StreamRequest{
				Dest: ipAddr("127.0.0.1", srv.port()), InitialData: []byte(tt.data),
				Options: gateway.StackOptions{TFO: gateway.Want(tt.max)},
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			closeStream(t, st)
			if tfo := st.Options.TFO; tfo.Outcome != gateway.Applied || tfo.Value != tt.max {
				t.Errorf("TFO = %+v, want applied %d", tfo, tt.max)
			}
			if got := sockInt(t, st.Conn.(*net.TCPConn), unix.IPPROTO_TCP, unix.TCP_FASTOPEN_CONNECT); got != 1 {
				t.Errorf("TCP_FASTOPEN_CONNECT = %d, want 1", got)
			}
			sc := srv.next(t)
			if got := readN(t, sc, len(tt.data)); got != tt.data {
				t.Errorf("server read %.40q, want %.40q", got, tt.data)
			}
		})
	}
}

func mptcpEnabled() bool {
	b, err := os.ReadFile("/proc/sys/net/mptcp/enabled")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

func TestMPTCP(t *testing.T) {
	if !mptcpEnabled() {
		t.Skip("net.mptcp.enabled is not 1")
	}
	listen := func(mptcp bool) *server {
		var lc net.ListenConfig
		lc.SetMultipathTCP(mptcp)
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return serve(t, ln.(*net.TCPListener))
	}
	tests := []struct {
		name        string
		serverMPTCP bool
		want        gateway.Opt[bool]
		wantOut     gateway.Outcome
	}{
		{name: "mptcp server", serverMPTCP: true, want: gateway.Want(true), wantOut: gateway.Applied},
		{name: "plain server", serverMPTCP: false, want: gateway.Want(true), wantOut: gateway.Declined},
		{name: "asked off", serverMPTCP: true, want: gateway.Want(false), wantOut: gateway.Applied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := listen(tt.serverMPTCP)
			b := newBackend(t, Config{}, Options{})
			st, err := b.Dial(context.Background(), &gateway.StreamRequest{
				Dest: ipAddr("127.0.0.1", srv.port()), Options: gateway.StackOptions{MPTCP: tt.want},
				InitialData: []byte("x"),
			})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			closeStream(t, st)
			readN(t, srv.next(t), 1)
			mp, _ := st.Conn.(*net.TCPConn).MultipathTCP()
			got := st.Options.MPTCP
			if got.Outcome != tt.wantOut || got.Value != mp {
				t.Errorf("MPTCP = %+v, connection MultipathTCP() = %v, want outcome %v", got, mp, tt.wantOut)
			}
			if tt.name == "mptcp server" && !mp {
				t.Error("connection to an MPTCP server is not MPTCP")
			}
		})
	}
	t.Run("listen", func(t *testing.T) {
		b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
		l := listenReq(t, b, &gateway.BindRequest{Options: gateway.StackOptions{MPTCP: gateway.Want(true)}})
		if got := l.Options().MPTCP; got.Outcome != gateway.Applied || !got.Value {
			t.Fatalf("listen MPTCP = %+v, want applied true", got)
		}
		var d net.Dialer
		d.SetMultipathTCP(true)
		c, err := d.Dial("tcp4", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		st := accept(t, l)
		if mp, _ := st.Conn.(*net.TCPConn).MultipathTCP(); !mp {
			t.Error("accepted peer is not MPTCP")
		}
	})
}

func TestListenStackOptions(t *testing.T) {
	b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
	l := listenReq(t, b, &gateway.BindRequest{Options: gateway.StackOptions{
		TTL: gateway.Want[uint8](33), TOS: gateway.Want[uint8](0x20), DF: gateway.Want(true),
		TFO: gateway.Want[uint16](0), HappyEyeballs: gateway.Want(true),
	}})
	o := l.Options()
	if o.TTL.Outcome != gateway.Applied || o.TTL.Value != 33 || o.TOS.Outcome != gateway.Applied || o.TOS.Value != 0x20 ||
		o.DF.Outcome != gateway.Applied || !o.DF.Value {
		t.Errorf("options = %+v", o)
	}
	if o.TFO.Outcome != gateway.Unsupported || o.HappyEyeballs.Outcome != gateway.Unsupported {
		t.Errorf("TFO %v, HappyEyeballs %v; want unsupported", o.TFO.Outcome, o.HappyEyeballs.Outcome)
	}
	dialFrom(t, "", l.Addr())
	st := accept(t, l)
	c := st.Conn.(*net.TCPConn)
	if got := sockInt(t, c, unix.IPPROTO_IP, unix.IP_TTL); got != 33 {
		t.Errorf("accepted peer TTL = %d, want 33", got)
	}
	if got := sockInt(t, c, unix.IPPROTO_IP, unix.IP_TOS); got != 0x20 {
		t.Errorf("accepted peer TOS = %#x, want 0x20", got)
	}
	if st.Options != o {
		t.Errorf("stream options %+v differ from binding options %+v", st.Options, o)
	}
}
