package direct

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "zero", cfg: Config{}},
		{name: "full", cfg: Config{BindIPv4: "127.0.0.1", BindIPv6: "::1", AdvertiseIPv4: "192.0.2.1",
			AdvertiseIPv6: "2001:db8::1", PortRange: "49152-65535", DialTimeout: "3s", HappyEyeballsDelay: "100ms"}},
		{name: "single port", cfg: Config{PortRange: "5000"}},
		{name: "bind_ipv4 v6", cfg: Config{BindIPv4: "::1"}, wantErr: "direct: bind_ipv4"},
		{name: "bind_ipv6 v4", cfg: Config{BindIPv6: "127.0.0.1"}, wantErr: "direct: bind_ipv6"},
		{name: "bind_ipv6 mapped", cfg: Config{BindIPv6: "::ffff:127.0.0.1"}, wantErr: "direct: bind_ipv6"},
		{name: "bind unspecified", cfg: Config{BindIPv4: "0.0.0.0"}, wantErr: "not a unicast address"},
		{name: "advertise garbage", cfg: Config{AdvertiseIPv4: "example.org"}, wantErr: "direct: advertise_ipv4"},
		{name: "port range reversed", cfg: Config{PortRange: "2000-1000"}, wantErr: "direct: port_range"},
		{name: "port range zero", cfg: Config{PortRange: "0-10"}, wantErr: "direct: port_range"},
		{name: "port range large", cfg: Config{PortRange: "1-70000"}, wantErr: "direct: port_range"},
		{name: "dial timeout garbage", cfg: Config{DialTimeout: "soon"}, wantErr: "direct: dial_timeout"},
		{name: "dial timeout negative", cfg: Config{DialTimeout: "-1s"}, wantErr: "not positive"},
		{name: "he delay small", cfg: Config{HappyEyeballsDelay: "1ms"}, wantErr: "direct: happy_eyeballs_delay"},
		{name: "he delay large", cfg: Config{HappyEyeballsDelay: "3s"}, wantErr: "direct: happy_eyeballs_delay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New("out", tt.cfg, Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if b.Name() != "out" {
					t.Errorf("Name = %q", b.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// dualLoopback listens on 127.0.0.1 and ::1 on the same port.
func dualLoopback(t *testing.T) (v4, v6 *server) {
	t.Helper()
	for range 20 {
		ln4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln4.Addr().(*net.TCPAddr).Port
		ln6, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
		if err != nil {
			ln4.Close()
			continue
		}
		return serve(t, ln4.(*net.TCPListener)), serve(t, ln6.(*net.TCPListener))
	}
	t.Fatal("no port free on both loopback addresses")
	return nil, nil
}

func TestDial(t *testing.T) {
	v4, v6 := dualLoopback(t)
	port := v4.port()
	tests := []struct {
		name     string
		dest     gateway.Addr
		wantPeer []string // any of
	}{
		{name: "ipv4", dest: ipAddr("127.0.0.1", port), wantPeer: []string{"127.0.0.1"}},
		{name: "ipv6", dest: ipAddr("::1", port), wantPeer: []string{"::1"}},
		{name: "ipv4-mapped", dest: ipAddr("::ffff:127.0.0.1", port), wantPeer: []string{"127.0.0.1"}},
		{name: "localhost", dest: nameAddr("localhost", port), wantPeer: []string{"127.0.0.1", "::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{})
			data := "hello " + tt.name
			req := &gateway.StreamRequest{
				Dest:        tt.dest,
				InitialData: []byte(data),
				Policy:      loopback,
				Options:     gateway.StackOptions{HappyEyeballs: gateway.Want(true)},
			}
			st, err := b.Dial(context.Background(), req)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			closeStream(t, st)
			tc, ok := st.Conn.(*net.TCPConn)
			if !ok {
				t.Fatalf("Conn is %T, want *net.TCPConn", st.Conn)
			}
			if !slices.Contains(tt.wantPeer, st.Peer.IP.String()) || st.Peer.Port != port {
				t.Errorf("Peer = %v, want one of %v port %d", st.Peer, tt.wantPeer, port)
			}
			local := tc.LocalAddr().(*net.TCPAddr).AddrPort()
			if st.Bound != gateway.AddrFromAddrPort(netip.AddrPortFrom(local.Addr().Unmap(), local.Port())) {
				t.Errorf("Bound = %v, want local address %v", st.Bound, local)
			}
			srv := v4
			if st.Peer.IP.Is6() {
				srv = v6
			}
			sc := srv.next(t)
			if got := readN(t, sc, len(data)); got != data {
				t.Errorf("server read %q, want %q", got, data)
			}
			if rp := sc.RemoteAddr().(*net.TCPAddr).AddrPort(); rp.Port() != st.Bound.Port {
				t.Errorf("server sees client port %d, Bound says %d", rp.Port(), st.Bound.Port)
			}
			he := st.Options.HappyEyeballs
			if tt.dest.IsName() {
				if he.Outcome != gateway.Applied || !he.Value {
					t.Errorf("HappyEyeballs = %+v, want applied true for a name", he)
				}
			} else if he.Outcome != gateway.Unsupported {
				t.Errorf("HappyEyeballs = %+v, want unsupported for an IP", he)
			}
		})
	}
}

func TestDialRefused(t *testing.T) {
	p4 := closedPort(t, "tcp4", "127.0.0.1")
	tests := []struct {
		name string
		dest gateway.Addr
		res  gateway.Resolver
	}{
		{name: "ipv4", dest: ipAddr("127.0.0.1", p4)},
		{name: "name both families", dest: nameAddr("closed.test", p4), res: newFakeResolver([]string{"::1", "127.0.0.1"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{Resolver: tt.res})
			_, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: tt.dest, Policy: loopback})
			wantReason(t, err, gateway.ReasonRefused)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("err %v does not wrap ECONNREFUSED", err)
			}
		})
	}
}

func TestDialPolicyDeny(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	port := srv.port()
	tests := []struct {
		name   string
		dest   gateway.Addr
		res    gateway.Resolver
		policy gateway.Policy
		want   gateway.Reason
	}{
		{name: "ip denied", dest: ipAddr("127.0.0.1", port), policy: prefixes("10.0.0.0/8"), want: gateway.ReasonNotAllowed},
		{name: "mapped ip denied", dest: ipAddr("::ffff:127.0.0.1", port), policy: prefixes("10.0.0.0/8"), want: gateway.ReasonNotAllowed},
		{name: "name all denied", dest: nameAddr("inside.test", port), res: newFakeResolver([]string{"127.0.0.1", "::1"}),
			policy: prefixes("10.0.0.0/8"), want: gateway.ReasonNotAllowed},
		{name: "unspecified ip", dest: ipAddr("0.0.0.0", port), want: gateway.ReasonHostUnreachable},
		{name: "name to unspecified", dest: nameAddr("zero.test", port), res: newFakeResolver([]string{"0.0.0.0", "::"}),
			want: gateway.ReasonHostUnreachable},
		{name: "no address", dest: gateway.Addr{Port: port}, want: gateway.ReasonHostUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{Resolver: tt.res})
			_, err := b.Dial(context.Background(), &gateway.StreamRequest{
				Dest: tt.dest, Policy: tt.policy, InitialData: []byte("secret"),
			})
			wantReason(t, err, tt.want)
			srv.none(t, 200*time.Millisecond)
		})
	}
}

// samePortPair listens on one port of two addresses, retrying while the
// port chosen for the first is taken on the second.
func samePortPair(t *testing.T, a, b string) (*server, *server) {
	t.Helper()
	for range 20 {
		la, err := net.Listen("tcp4", net.JoinHostPort(a, "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := la.Addr().(*net.TCPAddr).Port
		lb, err := net.Listen("tcp4", net.JoinHostPort(b, strconv.Itoa(port)))
		if err != nil {
			la.Close()
			continue
		}
		return serve(t, la.(*net.TCPListener)), serve(t, lb.(*net.TCPListener))
	}
	t.Fatal("no port free on both addresses")
	return nil, nil
}

// TestDialRebinding checks that a name answering differently on a second
// lookup never makes the backend connect to the unchecked address.
func TestDialRebinding(t *testing.T) {
	t.Run("loopback", func(t *testing.T) {
		// 127.0.0.2 is allowed, 127.0.0.1 is not; both listen on one port.
		good, bad := samePortPair(t, "127.0.0.2", "127.0.0.1")
		res := newFakeResolver([]string{"127.0.0.2"}, []string{"127.0.0.1"})
		b := newBackend(t, Config{}, Options{Resolver: res})
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: nameAddr("rebind.test", good.port()), Policy: prefixes("127.0.0.2/32"),
		})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		closeStream(t, st)
		if st.Peer != ipAddr("127.0.0.2", good.port()) {
			t.Errorf("Peer = %v, want 127.0.0.2", st.Peer)
		}
		good.next(t)
		bad.none(t, 200*time.Millisecond)
		if n := res.Calls(); n != 1 {
			t.Errorf("resolver called %d times, want 1", n)
		}
	})
	t.Run("203.0.113.x", func(t *testing.T) {
		// The checked address is TEST-NET-3; the Control hook records every
		// connect and aborts it, so no packet leaves the host.
		bad := listenTCP(t, "tcp4", "127.0.0.1:0")
		port := bad.port()
		res := newFakeResolver([]string{"203.0.113.7"}, []string{"127.0.0.1"})
		var mu sync.Mutex
		var connects []string
		errAborted := errors.New("test: connect aborted")
		b := newBackend(t, Config{}, Options{
			Resolver: res,
			Control: func(ctx context.Context, network, address string, c syscall.RawConn) error {
				mu.Lock()
				defer mu.Unlock()
				connects = append(connects, address)
				if strings.HasPrefix(address, "203.0.113.") {
					return errAborted
				}
				return nil
			},
		})
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: nameAddr("rebind.test", port), Policy: prefixes("203.0.113.0/24"),
		})
		if err == nil {
			st.Conn.Close()
			if st.Peer.IP != netip.MustParseAddr("203.0.113.7") {
				t.Fatalf("dial reached %v", st.Peer)
			}
		} else if !errors.Is(err, errAborted) {
			t.Fatalf("err = %v, want the aborted connect to the checked address", err)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{netip.AddrPortFrom(netip.MustParseAddr("203.0.113.7"), port).String()}
		if !slices.Equal(connects, want) {
			t.Errorf("connects = %v, want %v", connects, want)
		}
		bad.none(t, 200*time.Millisecond)
		if n := res.Calls(); n != 1 {
			t.Errorf("resolver called %d times, want 1", n)
		}
	})
}

func TestRecheck(t *testing.T) {
	want := netip.MustParseAddrPort("203.0.113.7:80")
	allow := prefixes("203.0.113.0/24")
	tests := []struct {
		name    string
		address string
		policy  gateway.Policy
		ok      bool
	}{
		{name: "checked", address: "203.0.113.7:80", policy: allow, ok: true},
		{name: "checked mapped", address: "[::ffff:203.0.113.7]:80", policy: allow, ok: true},
		{name: "other address", address: "127.0.0.1:80", policy: gateway.AllowAll{}},
		{name: "other port", address: "203.0.113.7:81", policy: allow},
		{name: "policy changed", address: "203.0.113.7:80", policy: prefixes("10.0.0.0/8")},
		{name: "garbage", address: "203.0.113.7", policy: allow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := recheck(want, tt.address, tt.policy)
			if (err == nil) != tt.ok {
				t.Fatalf("recheck(%q) = %v, want ok %v", tt.address, err, tt.ok)
			}
			if err != nil && reasonFor(err) != gateway.ReasonNotAllowed {
				t.Errorf("reason = %v, want not allowed", reasonFor(err))
			}
		})
	}
}

func TestInterleave(t *testing.T) {
	ap := func(ss ...string) []netip.AddrPort {
		var out []netip.AddrPort
		for _, s := range ss {
			out = append(out, netip.AddrPortFrom(netip.MustParseAddr(s), 80))
		}
		return out
	}
	tests := []struct {
		name     string
		in, want []netip.AddrPort
	}{
		{name: "empty"},
		{name: "one", in: ap("::1"), want: ap("::1")},
		{name: "v6 first", in: ap("2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"),
			want: ap("2001:db8::1", "192.0.2.1", "2001:db8::2", "192.0.2.2")},
		{name: "v4 first", in: ap("192.0.2.1", "2001:db8::1", "2001:db8::2", "2001:db8::3"),
			want: ap("192.0.2.1", "2001:db8::1", "2001:db8::2", "2001:db8::3")},
		{name: "one family", in: ap("192.0.2.1", "192.0.2.2"), want: ap("192.0.2.1", "192.0.2.2")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := interleave(tt.in); !slices.Equal(got, tt.want) {
				t.Errorf("interleave = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHappyEyeballs(t *testing.T) {
	t.Run("delay", func(t *testing.T) {
		// ::1 is tried first and hangs before connect; 127.0.0.1 starts after
		// the delay and wins; the hanging attempt is cancelled.
		srv := listenTCP(t, "tcp4", "127.0.0.1:0")
		port := srv.port()
		hang := netip.AddrPortFrom(netip.IPv6Loopback(), port).String()
		cancelled := make(chan struct{})
		b := newBackend(t, Config{HappyEyeballsDelay: "100ms"}, Options{
			Resolver: newFakeResolver([]string{"::1", "127.0.0.1"}),
			Control: func(ctx context.Context, network, address string, c syscall.RawConn) error {
				if address == hang {
					<-ctx.Done()
					close(cancelled)
					return ctx.Err()
				}
				return nil
			},
		})
		start := time.Now()
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: nameAddr("he.test", port), Policy: loopback})
		elapsed := time.Since(start)
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		closeStream(t, st)
		if st.Peer.IP != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("Peer = %v, want 127.0.0.1", st.Peer)
		}
		if elapsed < 90*time.Millisecond || elapsed > 5*time.Second {
			t.Errorf("Dial took %v, want about the 100ms delay", elapsed)
		}
		select {
		case <-cancelled:
		default:
			t.Error("the losing attempt was not cancelled before Dial returned")
		}
		if he := st.Options.HappyEyeballs; he.Outcome != gateway.NotRequested {
			t.Errorf("HappyEyeballs = %+v, want not requested (nothing to echo)", he)
		}
	})
	t.Run("failover", func(t *testing.T) {
		// ::1 refuses at once: the next attempt must not wait for the delay.
		srv := listenTCP(t, "tcp4", "127.0.0.1:0")
		port := srv.port()
		b := newBackend(t, Config{HappyEyeballsDelay: "2s"}, Options{
			Resolver: newFakeResolver([]string{"::1", "127.0.0.1"}),
		})
		start := time.Now()
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: nameAddr("he.test", port), Policy: loopback,
			Options: gateway.StackOptions{HappyEyeballs: gateway.Want(true)},
		})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		closeStream(t, st)
		if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
			t.Errorf("Dial took %v; a failed attempt must start the next one at once", elapsed)
		}
		if st.Peer.IP != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("Peer = %v, want 127.0.0.1", st.Peer)
		}
		if he := st.Options.HappyEyeballs; he.Outcome != gateway.Applied || !he.Value {
			t.Errorf("HappyEyeballs = %+v, want applied true", he)
		}
	})
	t.Run("order and error", func(t *testing.T) {
		// Every connect is aborted by the hook (documentation addresses, no
		// packet leaves): the attempts follow RFC 8305 order.
		var mu sync.Mutex
		var order []string
		errAborted := errors.New("test: connect aborted")
		b := newBackend(t, Config{HappyEyeballsDelay: "10ms"}, Options{
			Resolver: newFakeResolver([]string{"2001:db8::1", "2001:db8::2", "192.0.2.1", "192.0.2.2"}),
			Control: func(ctx context.Context, network, address string, c syscall.RawConn) error {
				mu.Lock()
				order = append(order, address)
				mu.Unlock()
				return errAborted
			},
		})
		_, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: nameAddr("doc.test", 80)})
		wantReason(t, err, gateway.ReasonGeneral)
		if !errors.Is(err, errAborted) {
			t.Errorf("err = %v, want the aborted connect", err)
		}
		want := []string{"[2001:db8::1]:80", "192.0.2.1:80", "[2001:db8::2]:80", "192.0.2.2:80"}
		if !slices.Equal(order, want) {
			t.Errorf("attempt order = %v, want %v", order, want)
		}
	})
	t.Run("off", func(t *testing.T) {
		srv := listenTCP(t, "tcp4", "127.0.0.1:0")
		port := srv.port()
		b := newBackend(t, Config{}, Options{Resolver: newFakeResolver([]string{"::1", "127.0.0.1"})})
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{
			Dest: nameAddr("he.test", port), Policy: loopback,
			Options: gateway.StackOptions{HappyEyeballs: gateway.Want(false)},
		})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		closeStream(t, st)
		if he := st.Options.HappyEyeballs; he.Outcome != gateway.Applied || he.Value {
			t.Errorf("HappyEyeballs = %+v, want applied false", he)
		}
	})
}

func TestDialContext(t *testing.T) {
	hook := func(ctx context.Context, network, address string, c syscall.RawConn) error {
		<-ctx.Done()
		return ctx.Err()
	}
	t.Run("dial_timeout", func(t *testing.T) {
		b := newBackend(t, Config{DialTimeout: "150ms"}, Options{Control: hook})
		start := time.Now()
		_, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 9)})
		wantReason(t, err, gateway.ReasonTimeout)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Dial took %v", elapsed)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		b := newBackend(t, Config{}, Options{Control: hook})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := b.Dial(ctx, &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", 9)})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		wantReason(t, err, gateway.ReasonGeneral)
	})
}

func TestDialSourceAddress(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	tests := []struct {
		name      string
		cfg       Config
		wantSrc   string
		wantBound string
	}{
		{name: "bind_ipv4", cfg: Config{BindIPv4: "127.0.0.2"}, wantSrc: "127.0.0.2", wantBound: "127.0.0.2"},
		{name: "advertise_ipv4", cfg: Config{BindIPv4: "127.0.0.3", AdvertiseIPv4: "192.0.2.10"},
			wantSrc: "127.0.0.3", wantBound: "192.0.2.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.cfg, Options{})
			st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", srv.port())})
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			closeStream(t, st)
			sc := srv.next(t)
			src := sc.RemoteAddr().(*net.TCPAddr).AddrPort()
			if src.Addr().String() != tt.wantSrc {
				t.Errorf("server sees source %v, want %s", src, tt.wantSrc)
			}
			if st.Bound != ipAddr(tt.wantBound, src.Port()) {
				t.Errorf("Bound = %v, want %s:%d", st.Bound, tt.wantBound, src.Port())
			}
			if st.Peer != ipAddr("127.0.0.1", srv.port()) {
				t.Errorf("Peer = %v", st.Peer)
			}
		})
	}
}

func TestDialInitialData(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	data := strings.Repeat("0123456789", 10000) // larger than one segment
	st, err := b.Dial(context.Background(), &gateway.StreamRequest{
		Dest: ipAddr("127.0.0.1", srv.port()), InitialData: []byte(data),
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	closeStream(t, st)
	sc := srv.next(t)
	if got := readN(t, sc, len(data)); got != data {
		t.Error("server did not read the initial data first")
	}
}

func TestHalfClose(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", srv.port())})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	closeStream(t, st)
	cc := st.Conn.(*net.TCPConn)
	sc := srv.next(t)

	// Client -> server direction closes first; the other still works.
	if _, err := cc.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if err := cc.CloseWrite(); err != nil {
		t.Fatalf("client CloseWrite: %v", err)
	}
	sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(sc)
	if err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v; want ping then EOF", got, err)
	}
	if _, err := sc.Write([]byte("pong")); err != nil {
		t.Fatalf("server write after client half-close: %v", err)
	}
	if err := sc.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	cc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err = io.ReadAll(cc)
	if err != nil || string(got) != "pong" {
		t.Fatalf("client read %q, %v; want pong then EOF", got, err)
	}
}

func TestDialUnknownOptions(t *testing.T) {
	srv := listenTCP(t, "tcp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	st, err := b.Dial(context.Background(), &gateway.StreamRequest{
		Dest: ipAddr("127.0.0.1", srv.port()),
		Options: gateway.StackOptions{
			Backlog:    gateway.Want[uint16](5),
			UDPError:   gateway.Want(true),
			PortParity: gateway.Want(gateway.PortParity{Parity: gateway.ParityEven}),
			TFO:        gateway.Want[uint16](0), // no initial data
		},
	})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	closeStream(t, st)
	o := st.Options
	for name, got := range map[string]gateway.Outcome{
		"Backlog": o.Backlog.Outcome, "UDPError": o.UDPError.Outcome, "PortParity": o.PortParity.Outcome,
	} {
		if got != gateway.Unsupported {
			t.Errorf("%s = %v, want unsupported", name, got)
		}
	}
	if o.TFO.Outcome != gateway.Declined {
		t.Errorf("TFO without initial data = %v, want declined", o.TFO.Outcome)
	}
	for name, got := range map[string]gateway.Outcome{
		"TOS": o.TOS.Outcome, "TTL": o.TTL.Outcome, "DF": o.DF.Outcome, "MPTCP": o.MPTCP.Outcome, "HappyEyeballs": o.HappyEyeballs.Outcome,
	} {
		if got != gateway.NotRequested {
			t.Errorf("%s = %v, want not requested", name, got)
		}
	}
}

// TestDialFDs measures the file descriptors an idle established stream
// holds. The listener never accepts, so the peers' sockets wait in its accept
// queue and hold no descriptor of this process.
func TestDialFDs(t *testing.T) {
	const n = 100
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).AddrPort().Port()
	b := newBackend(t, Config{}, Options{Logger: discardLogger()})
	dial := func() *gateway.Stream {
		st, err := b.Dial(context.Background(), &gateway.StreamRequest{Dest: ipAddr("127.0.0.1", port)})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		return st
	}
	dial().Conn.Close() // warm up the poller
	// Settle the garbage collector first so that no finalizer closes a
	// descriptor while the streams are counted.
	runtime.GC()
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	before := countFDs(t)
	streams := make([]*gateway.Stream, 0, n)
	for range n {
		streams = append(streams, dial())
	}
	after := countFDs(t)
	for _, st := range streams {
		st.Conn.Close()
	}
	per := float64(after-before) / n
	t.Logf("file descriptors per idle established Dial: %.2f (%d streams, %d -> %d)", per, n, before, after)
	if after-before != n {
		t.Errorf("%d idle streams hold %d descriptors, want %d", n, after-before, n)
	}
}
