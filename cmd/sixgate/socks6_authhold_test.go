package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	socks5 "github.com/armon/go-socks5"
	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/gateway/gatewaytest"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// TestSOCKS6AuthReplyHold: for a CONNECT the frontend holds the
// Authentication Reply so that it leaves with the Operation Reply in one
// segment. A client with an Advertisement may false-start once the reply
// reports success, so that hold lasts at most a few milliseconds: behind a
// slow connection (an upstream SOCKS 5 proxy that answers after 400 ms)
// the reply comes at once, the client's false-start data waits in the
// socket and reaches the destination after the Operation Reply. Without
// an Advertisement there is nothing to gain from the early reply, and both
// replies leave together however long the connection takes.
func TestSOCKS6AuthReplyHold(t *testing.T) {
	const slow = 400 * time.Millisecond
	echo := echoServer(t)
	// The upstream: armon/go-socks5 whose every CONNECT takes slow, then
	// reaches the echo server whatever the destination.
	up, err := socks5.New(&socks5.Config{Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		select {
		case <-time.After(slow):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, network, echo)
	}})
	if err != nil {
		t.Fatal(err)
	}
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upLn.Close() })
	go up.Serve(upLn)

	addr := fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	startGateway(t, fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
frontend "socks6" "s6" {
  listen = %q
}
backend "direct" "fast" {}
backend "socks5" "slow" {
  server = %q
}
route {
  destinations = ["127.0.0.2/32"]
  commands     = ["connect"]
  backend      = "slow"
}
route {
  destinations = ["127.0.0.0/8"]
  backend      = "fast"
}
`, addr, upLn.Addr().String()))
	fast := gateway.AddrFromAddrPort(netip.MustParseAddrPort(echo))
	slowDst := gateway.AddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 9))

	// request sends a CONNECT to dst, with an Advertisement carrying
	// initial data when initial is set, and returns the connection.
	request := func(t *testing.T, dst gateway.Addr, initial []byte) net.Conn {
		req := &s6.Request{Command: s6.CmdConnect, Addr: dst}
		if initial != nil {
			req.Options.Advertisement = &s6.Advertisement{InitialDataLen: uint16(len(initial))}
		}
		msg, err := s6.AppendRequest(nil, req, s6.Draft11)
		if err != nil {
			t.Fatal(err)
		}
		c := dialRaw(t, addr)
		if _, err := c.Write(append(msg, initial...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	readReplies := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if ar, err := s6.ReadAuthReply(c, nil, s6.Draft11); err != nil || ar.Type != s6.AuthSuccess {
			t.Fatalf("authentication reply %+v, %v", ar, err)
		}
		if op, err := s6.ReadOpReply(c, nil, s6.Draft11); err != nil || op.Code != s6.ReplySuccess {
			t.Fatalf("operation reply %+v, %v", op, err)
		}
	}
	expectEcho := func(t *testing.T, c net.Conn, want string) {
		t.Helper()
		got := make([]byte, len(want))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
			t.Fatalf("echo %q, %v; want %q", got, err, want)
		}
	}

	t.Run("fast connection: both replies in one segment", func(t *testing.T) {
		// The hold may run out on a loaded machine, so one of several
		// CONNECTs must show it; written apart, every one takes two
		// data segments.
		var segs []uint32
		for range 5 {
			c := request(t, fast, []byte("0-rtt"))
			readReplies(t, c)
			expectEcho(t, c, "0-rtt")
			info, err := tcpInfo(c)
			if err != nil {
				t.Skipf("TCP_INFO: %v", err)
			}
			c.Close()
			// data segments in: the replies, then the echo
			segs = append(segs, info.Data_segs_in)
			if info.Data_segs_in == 2 {
				return
			}
		}
		t.Fatalf("data segments in per connection (replies and echo) %v, want 2 (one for both replies) at least once", segs)
	})

	t.Run("slow connection with Advertisement: the reply comes at once and the false start works", func(t *testing.T) {
		start := time.Now()
		c := request(t, slowDst, []byte("ini"))
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if ar, err := s6.ReadAuthReply(c, nil, s6.Draft11); err != nil || ar.Type != s6.AuthSuccess {
			t.Fatalf("authentication reply %+v, %v", ar, err)
		}
		if d := time.Since(start); d >= slow/2 {
			t.Fatalf("authentication reply after %v: held for the connection (%v)", d, slow)
		}
		// False start: data right after the successful reply.
		if _, err := c.Write([]byte("-false-start")); err != nil {
			t.Fatal(err)
		}
		if op, err := s6.ReadOpReply(c, nil, s6.Draft11); err != nil || op.Code != s6.ReplySuccess {
			t.Fatalf("operation reply %+v, %v", op, err)
		}
		if d := time.Since(start); d < slow {
			t.Fatalf("operation reply after %v, before the upstream answered (%v)", d, slow)
		}
		expectEcho(t, c, "ini-false-start")
	})

	t.Run("slow connection without Advertisement: both replies together", func(t *testing.T) {
		start := time.Now()
		c := request(t, slowDst, nil)
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if ar, err := s6.ReadAuthReply(c, nil, s6.Draft11); err != nil || ar.Type != s6.AuthSuccess {
			t.Fatalf("authentication reply %+v, %v", ar, err)
		}
		if d := time.Since(start); d < slow {
			t.Fatalf("authentication reply after %v, ahead of the Operation Reply (connection takes %v)", d, slow)
		}
		if op, err := s6.ReadOpReply(c, nil, s6.Draft11); err != nil || op.Code != s6.ReplySuccess {
			t.Fatalf("operation reply %+v, %v", op, err)
		}
		if _, err := c.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		expectEcho(t, c, "after")
	})
}

// tcpInfo reads TCP_INFO of c's socket.
func tcpInfo(c net.Conn) (*unix.TCPInfo, error) {
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, err
	}
	return info, gerr
}
