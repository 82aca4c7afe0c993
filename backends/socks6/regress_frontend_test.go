package socks6

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Regression tests for problems this package's tests found in the SOCKS 6
// frontend.

// TestFrontendBacklogSessionExpiry: a session whose only activity is a
// backlog BIND's control connection expires after session_idle_timeout
// (lastUsed is refreshed only by Requests, not by live connections). The
// next Request of the session (the Accept) gets Session Invalid, the
// listener is closed, but the control connection is left open, so the
// client cannot tell its listener is gone. Either the session must stay
// alive while its control connection is open, or the proxy must close the
// control connection when it drops the session.
func TestFrontendBacklogSessionExpiry(t *testing.T) {
	u := startUpstream(t, upstreamOpts{users: true, limits: `  session_idle_timeout = "1s"`})
	c := mustClient(t, ClientConfig{Server: u.Addr, Username: testUser, Password: testPass, Session: true})
	ctx := testCtx(t, 20*time.Second)
	b, err := c.Bind(ctx, ipAddr("127.0.0.1", 0), &BindOptions{Legs: s6.Legs{Remote: gateway.StackOptions{Backlog: gateway.Want[uint16](2)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	time.Sleep(1500 * time.Millisecond) // longer than session_idle_timeout; the control connection is open
	peer, err := net.Dial("tcp", b.Addr.String())
	if err != nil {
		t.Fatalf("listener gone while its control connection is open: %v", err)
	}
	defer peer.Close()
	conn, acceptErr := b.Accept(ctx)
	if acceptErr == nil {
		conn.Close()
		return // the session was kept alive: fixed
	}
	b.conn.SetReadDeadline(time.Now().Add(time.Second))
	_, rerr := b.conn.Read(make([]byte, 1))
	if errors.Is(rerr, io.EOF) {
		return // the proxy closed the control connection with the session: fixed
	}
	t.Fatalf("Accept: %v; control connection still open (read: %v)", acceptErr, rerr)
}
