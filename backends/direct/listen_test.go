package direct

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

func listenReq(t *testing.T, b *Backend, req *gateway.BindRequest) gateway.Binding {
	t.Helper()
	l, err := b.Listen(context.Background(), req)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// dialFrom connects to addr from the local IP src ("" for any).
func dialFrom(t *testing.T, src string, addr gateway.Addr) *net.TCPConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %v: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

func accept(t *testing.T, l gateway.Binding) *gateway.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := l.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	closeStream(t, st)
	return st
}

func localOf(c net.Conn) gateway.Addr {
	return gateway.AddrFromAddrPort(c.LocalAddr().(*net.TCPAddr).AddrPort())
}

func TestListenOneShot(t *testing.T) {
	for _, backlog := range []gateway.Opt[uint16]{{}, gateway.Want[uint16](0)} {
		t.Run("backlog "+backlog.Outcome.String(), func(t *testing.T) {
			b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
			l := listenReq(t, b, &gateway.BindRequest{Policy: loopback, Options: gateway.StackOptions{Backlog: backlog}})
			addr := l.Addr()
			if addr.IP != netip.MustParseAddr("127.0.0.1") || addr.Port == 0 {
				t.Fatalf("Addr = %v, want 127.0.0.1 and a port", addr)
			}
			wantOutcome := gateway.NotRequested
			if backlog.Wanted() {
				wantOutcome = gateway.Declined
			}
			if got := l.Options().Backlog.Outcome; got != wantOutcome {
				t.Errorf("Backlog = %v, want %v", got, wantOutcome)
			}
			c := dialFrom(t, "", addr)
			st := accept(t, l)
			if st.Peer != localOf(c) {
				t.Errorf("Peer = %v, want %v", st.Peer, localOf(c))
			}
			if st.Bound != addr {
				t.Errorf("Bound = %v, want %v", st.Bound, addr)
			}
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, st.Conn, 2); got != "hi" {
				t.Errorf("read %q", got)
			}

			// One-shot: the socket no longer listens.
			if c2, err := net.DialTimeout("tcp", addr.String(), 2*time.Second); err == nil {
				c2.Close()
				t.Error("a second peer could connect to a one-shot binding")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := l.Accept(ctx); err == nil || !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Accept err = %v, want net.ErrClosed", err)
			}
			if err := l.Close(); err != nil {
				t.Errorf("Close after one-shot: %v", err)
			}
		})
	}
}

func TestListenBacklog(t *testing.T) {
	b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
	l := listenReq(t, b, &gateway.BindRequest{
		Policy:  loopback,
		Options: gateway.StackOptions{Backlog: gateway.Want[uint16](3)},
	})
	if bl := l.Options().Backlog; bl.Outcome != gateway.Applied || bl.Value != 3 {
		t.Fatalf("Backlog = %+v, want applied 3", bl)
	}
	// Three peers queue before the first Accept.
	want := map[gateway.Addr]string{}
	for i := range 3 {
		c := dialFrom(t, "", l.Addr())
		msg := "peer" + strconv.Itoa(i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		want[localOf(c)] = msg
	}
	for range 3 {
		st := accept(t, l)
		msg, ok := want[st.Peer]
		if !ok {
			t.Fatalf("accepted unknown or repeated peer %v", st.Peer)
		}
		delete(want, st.Peer)
		if got := readN(t, st.Conn, len(msg)); got != msg {
			t.Errorf("peer %v sent %q, read %q", st.Peer, msg, got)
		}
	}
	// Still listening after three peers.
	c := dialFrom(t, "", l.Addr())
	st := accept(t, l)
	if st.Peer != localOf(c) {
		t.Errorf("fourth Peer = %v, want %v", st.Peer, localOf(c))
	}
}

func TestListenDeniedPeer(t *testing.T) {
	b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
	l := listenReq(t, b, &gateway.BindRequest{Policy: prefixes("127.0.0.1/32")})
	bad := dialFrom(t, "127.0.0.2", l.Addr())
	good := dialFrom(t, "127.0.0.1", l.Addr())
	st := accept(t, l)
	if st.Peer != localOf(good) {
		t.Fatalf("Peer = %v, want the allowed peer %v", st.Peer, localOf(good))
	}
	bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ne net.Error
	if n, err := bad.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("denied peer read %d, %v; want EOF or reset", n, err)
	}
	if d := l.(*binding).denied.Load(); d != 1 {
		t.Errorf("denied count = %d, want 1", d)
	}
}

func TestAcceptContext(t *testing.T) {
	b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
	l := listenReq(t, b, &gateway.BindRequest{Options: gateway.StackOptions{Backlog: gateway.Want[uint16](2)}})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := l.Accept(ctx)
	wantReason(t, err, gateway.ReasonTimeout)
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Accept took %v after a 100ms deadline", elapsed)
	}

	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = l.Accept(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	wantReason(t, err, gateway.ReasonGeneral)

	// The binding still works after cancelled Accepts.
	c := dialFrom(t, "", l.Addr())
	if st := accept(t, l); st.Peer != localOf(c) {
		t.Errorf("Peer = %v, want %v", st.Peer, localOf(c))
	}
}

func TestListenClose(t *testing.T) {
	b := newBackend(t, Config{BindIPv4: "127.0.0.1"}, Options{})
	l := listenReq(t, b, &gateway.BindRequest{Options: gateway.StackOptions{Backlog: gateway.Want[uint16](2)}})
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept(context.Background())
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestListenAddress(t *testing.T) {
	free := closedPort(t, "tcp4", "127.0.0.1")
	busy := listenTCP(t, "tcp4", "127.0.0.1:0").port()
	tests := []struct {
		name     string
		cfg      Config
		bind     gateway.Addr
		wantIP   string
		wantPort func(uint16) bool
		wantErr  gateway.Reason
	}{
		{name: "zero", bind: gateway.Addr{}, wantIP: "0.0.0.0"},
		{name: "v6 unspecified", bind: ipAddr("::", 0), wantIP: "::"},
		{name: "zero with bind_ipv4", cfg: Config{BindIPv4: "127.0.0.1"}, wantIP: "127.0.0.1"},
		{name: "v4 unspecified with bind_ipv4", cfg: Config{BindIPv4: "127.0.0.1"}, bind: ipAddr("0.0.0.0", 0), wantIP: "127.0.0.1"},
		{name: "zero with only bind_ipv6", cfg: Config{BindIPv6: "::1"}, wantIP: "::1"},
		{name: "mapped", bind: ipAddr("::ffff:127.0.0.1", 0), wantIP: "127.0.0.1"},
		{name: "advertised", cfg: Config{BindIPv4: "127.0.0.1", AdvertiseIPv4: "192.0.2.1"}, wantIP: "192.0.2.1"},
		{name: "advertised unspecified", cfg: Config{AdvertiseIPv4: "192.0.2.1"}, wantIP: "192.0.2.1"},
		{name: "other than bind_ipv4", cfg: Config{BindIPv4: "127.0.0.1"}, bind: ipAddr("127.0.0.2", 0),
			wantErr: gateway.ReasonNotAllowed},
		{name: "name", bind: nameAddr("example.org", 0), wantErr: gateway.ReasonAddrTypeNotSupported},
		{name: "privileged port", bind: ipAddr("127.0.0.1", 80), wantErr: gateway.ReasonNotAllowed},
		{name: "requested port", bind: ipAddr("127.0.0.1", free), wantIP: "127.0.0.1",
			wantPort: func(p uint16) bool { return p == free }},
		{name: "port busy", bind: ipAddr("127.0.0.1", busy), wantErr: gateway.ReasonGeneral},
		{name: "port_range", cfg: Config{PortRange: "40000-40009"}, bind: ipAddr("127.0.0.1", 0), wantIP: "127.0.0.1",
			wantPort: func(p uint16) bool { return p >= 40000 && p <= 40009 }},
		{name: "outside port_range", cfg: Config{PortRange: "40000-40009"}, bind: ipAddr("127.0.0.1", 50000),
			wantErr: gateway.ReasonNotAllowed},
		{name: "port_range exhausted", cfg: Config{PortRange: strconv.Itoa(int(busy))}, bind: ipAddr("127.0.0.1", 0),
			wantErr: gateway.ReasonCapacityExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.cfg, Options{})
			l, err := b.Listen(context.Background(), &gateway.BindRequest{Bind: tt.bind})
			if tt.wantErr != gateway.ReasonNone {
				if err == nil {
					l.Close()
					t.Fatalf("Listen succeeded on %v, want %v", l.Addr(), tt.wantErr)
				}
				if r := gateway.ReasonOf(err); r != tt.wantErr {
					t.Fatalf("reason = %v, want %v (err: %v)", r, tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			defer l.Close()
			if l.Addr().IP.String() != tt.wantIP || l.Addr().Port == 0 {
				t.Errorf("Addr = %v, want %s and a port", l.Addr(), tt.wantIP)
			}
			if tt.wantPort != nil && !tt.wantPort(l.Addr().Port) {
				t.Errorf("port %d not as wanted", l.Addr().Port)
			}
		})
	}
}
