// Package socks5 is sixgate's SOCKS 5 frontend (RFC 1928, RFC 1929): method
// negotiation with username/password against the frontend's users, CONNECT,
// BIND and UDP ASSOCIATE, each carried as a neutral association through
// whatever backend the router picks. The wire format lives in
// translate/socks5; this package does the I/O.
package socks5

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// Protocol is the protocol label of this frontend.
const Protocol = "socks5"

// Frontend serves SOCKS 5 clients.
type Frontend struct {
	name      string
	rt        *gateway.Runtime
	log       *slog.Logger
	users     *gateway.UserSet
	limits    gateway.Limits
	eps       []gateway.Endpoint
	advertise netip.Addr
}

var (
	_ gateway.Frontend = (*Frontend)(nil)
	_ gateway.Refuser  = (*Frontend)(nil)
)

func newFrontend(env *gateway.Env, name, listen, users string, adv netip.Addr, firstBytes []byte) (*Frontend, error) {
	f := &Frontend{name: name, rt: env.Runtime, log: env.Log, limits: env.Limits, advertise: adv,
		eps: []gateway.Endpoint{{Network: "tcp", Address: listen, FirstBytes: firstBytes, HandshakeTimeout: env.Limits.HandshakeTimeout}}}
	if users != "" {
		us, ok := env.Users[users]
		if !ok {
			return nil, fmt.Errorf("socks5: no users %q", users)
		}
		f.users = us
	}
	return f, nil
}

// Name returns the frontend's name.
func (f *Frontend) Name() string { return f.name }

// Endpoints returns the TCP listener.
func (f *Frontend) Endpoints() []gateway.Endpoint { return f.eps }

// ServePacket is not used: SOCKS 5 relay sockets are per association.
func (f *Frontend) ServePacket(ctx context.Context, pc net.PacketConn, ep gateway.Endpoint) error {
	return errors.New("socks5: no packet endpoint")
}

// RefuseConn answers a connection refused by a gateway limit: the greeting
// is answered with "no acceptable methods".
func (f *Frontend) RefuseConn(conn net.Conn, err error) {
	if _, rerr := s5.ReadGreeting(conn); rerr == nil {
		conn.Write(s5.AppendMethodSelection(nil, s5.MethodNoAcceptable))
	}
}

// session is one client connection.
type session struct {
	f      *Frontend
	conn   net.Conn
	client netip.AddrPort
	p      gateway.Principal
	start  time.Time
}

// ServeConn runs one SOCKS 5 session.
func (f *Frontend) ServeConn(ctx context.Context, conn net.Conn, ep gateway.Endpoint) {
	s := &session{f: f, conn: conn, start: time.Now()}
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
		s.client = ap
	}
	s.p = gateway.Principal{Frontend: f.name, Protocol: Protocol, Client: s.client}
	// Clean-up goes to the connection's Tail: a CONNECT's relay outlives
	// this goroutine (see gateway.Tail).
	ctx, tail, own := gateway.EnsureTail(ctx)
	if own {
		defer tail.Finish()
	}
	f.rt.SessionActive(f.name, Protocol, 1)
	tail.Defer(func() { f.rt.SessionActive(f.name, Protocol, -1) })
	// The gateway set the handshake deadline at accept time. The greeting,
	// RFC 1929 and the request are read through a read-ahead; what the
	// client sent after the request stays in front of the connection.
	ra := gateway.NewReadAhead(conn)
	ok := s.authenticate(ra.Reader())
	var req s5.Request
	var err error
	if ok {
		req, err = s5.ReadRequest(ra.Reader())
	}
	s.conn = ra.Done(ok && err == nil)
	if !ok {
		return
	}
	if err != nil {
		s.handshakeError("request", err)
		if code, ok := s5.RequestFailure(err); ok {
			s.reply(code, gateway.Addr{})
		}
		return
	}
	sctx, release, err := f.rt.Tracker.AcquireUser(ctx, &f.limits, s.p.User)
	if err != nil {
		f.rt.LimitHit(f.name, err)
		s.reply(s5.ReplyForError(err), gateway.Addr{})
		s.log(cmdOf(req.Command), req.Dest.String(), nil, gateway.RelayStats{}, err)
		return
	}
	tail.Defer(release)
	switch req.Command {
	case s5.CmdConnect:
		s.connect(sctx, req.Dest)
	case s5.CmdBind:
		s.bind(sctx, req.Dest)
	case s5.CmdUDPAssociate:
		s.udpAssociate(sctx, req.Dest)
	}
}

// authenticate negotiates the method and runs RFC 1929 when users are
// configured, reading from r. It reports whether the session may continue.
func (s *session) authenticate(r io.Reader) bool {
	f := s.f
	g, err := s5.ReadGreeting(r)
	if err != nil {
		s.handshakeError("greeting", err)
		return false
	}
	want := s5.MethodNoAuth
	if f.users != nil {
		want = s5.MethodUserPass
	}
	if !g.Offers(want) {
		s.conn.Write(s5.AppendMethodSelection(nil, s5.MethodNoAcceptable))
		f.rt.HandshakeFailed(f.name, "no_acceptable_method")
		return false
	}
	if _, err := s.conn.Write(s5.AppendMethodSelection(nil, want)); err != nil {
		return false
	}
	if want == s5.MethodNoAuth {
		return true
	}
	up, err := s5.ReadUserPassRequest(r)
	if err != nil {
		s.handshakeError("auth", err)
		return false
	}
	tr := f.rt.Tracker
	if !tr.AuthAllowed(&f.limits, s.client.Addr()) {
		s.conn.Write(s5.AppendUserPassReply(nil, s5.UserPassFailure))
		f.rt.AuthResult(f.name, "rate_limited")
		f.rt.LimitHit(f.name, &gateway.LimitError{Limit: "auth_failures_per_ip"})
		f.log.Info("authentication rate-limited", "client", s.client.Addr())
		return false
	}
	if !f.users.Verify(up.Username, up.Password) {
		tr.AuthFailed(&f.limits, s.client.Addr())
		s.conn.Write(s5.AppendUserPassReply(nil, s5.UserPassFailure))
		f.rt.AuthResult(f.name, "failure")
		f.log.Info("authentication failed", "client", s.client.Addr(), "user", up.Username)
		return false
	}
	f.rt.AuthResult(f.name, "success")
	s.p.User = up.Username
	_, err = s.conn.Write(s5.AppendUserPassReply(nil, s5.UserPassSuccess))
	return err == nil
}

func (s *session) handshakeError(stage string, err error) {
	reason := stage
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		reason = stage + "_eof"
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = "timeout"
	case errors.Is(err, s5.ErrVersion):
		reason = "version"
	}
	s.f.rt.HandshakeFailed(s.f.name, reason)
	s.f.log.Debug("handshake failed", "client", s.client, "stage", stage, "error", err)
}

func (s *session) reply(code s5.ReplyCode, bound gateway.Addr) error {
	b, err := s5.Reply{Code: code, Bound: bound}.Append(make([]byte, 0, 32))
	if err != nil {
		b, _ = s5.Reply{Code: code}.Append(b[:0])
	}
	_, err = s.conn.Write(b)
	return err
}

func (s *session) log(cmd gateway.Command, dest string, route *gateway.Route, st gateway.RelayStats, err error) {
	s.f.rt.AccessLog(gateway.AccessRecord{
		Frontend: s.f.name, Protocol: Protocol, Command: cmd, User: s.p.User, Client: s.client.String(),
		Dest: dest, Route: route, Bytes: st, Start: s.start, Err: err,
	})
}

func cmdOf(c s5.Command) gateway.Command {
	switch c {
	case s5.CmdBind:
		return gateway.CmdBind
	case s5.CmdUDPAssociate:
		return gateway.CmdUDP
	}
	return gateway.CmdConnect
}

func (s *session) connect(ctx context.Context, dest gateway.Addr) {
	st, route, err := s.f.rt.Connect(ctx, &gateway.StreamRequest{Dest: dest, Principal: s.p})
	if err != nil {
		s.reply(s5.ReplyForError(err), gateway.Addr{})
		s.log(gateway.CmdConnect, dest.String(), route, gateway.RelayStats{}, err)
		return
	}
	if err := s.reply(s5.RepSucceeded, st.Bound); err != nil {
		st.Conn.Close()
		s.log(gateway.CmdConnect, dest.String(), route, gateway.RelayStats{}, err)
		return
	}
	s.conn.SetDeadline(time.Time{})
	s.f.rt.RelayStreamThen(ctx, &s.p, &s.f.limits, s.conn, st.Conn, func(stats gateway.RelayStats, err error) {
		s.log(gateway.CmdConnect, dest.String(), route, stats, err)
	})
}

// bind opens a listening socket through the backend (RFC 1928 BIND): the
// first reply carries the listening address, the second the peer's. DST in
// the request names the expected peer; when it is an IP, only that IP may
// connect.
func (s *session) bind(ctx context.Context, want gateway.Addr) {
	b, route, err := s.f.rt.Bind(ctx, &gateway.BindRequest{Principal: s.p})
	if err != nil {
		s.reply(s5.ReplyForError(err), gateway.Addr{})
		s.log(gateway.CmdBind, want.String(), route, gateway.RelayStats{}, err)
		return
	}
	defer b.Close()
	if err := s.reply(s5.RepSucceeded, b.Addr()); err != nil {
		s.log(gateway.CmdBind, want.String(), route, gateway.RelayStats{}, err)
		return
	}
	s.conn.SetDeadline(time.Time{})
	// The client sends nothing until the second reply; its closing the
	// connection cancels the wait. A byte it sends early is kept.
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var early [1]byte
	earlyN := 0
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		n, err := s.conn.Read(early[:])
		earlyN = n
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel()
		}
	}()
	var peer *gateway.Stream
	for {
		peer, err = b.Accept(actx)
		if err != nil {
			break
		}
		if want.IsName() || want.IsAny() || peer.Peer.IP.Unmap() == want.IP.Unmap() {
			break
		}
		s.f.log.Info("bind: unexpected peer refused", "peer", peer.Peer, "want", want)
		peer.Conn.Close()
	}
	// Stop the watcher: a read deadline in the past unblocks it.
	s.conn.SetReadDeadline(time.Unix(1, 0))
	<-watchDone
	s.conn.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() == nil {
			s.reply(s5.ReplyForError(err), gateway.Addr{})
		}
		s.log(gateway.CmdBind, want.String(), route, gateway.RelayStats{}, err)
		return
	}
	if earlyN > 0 {
		if _, err := peer.Conn.Write(early[:earlyN]); err != nil {
			peer.Conn.Close()
			s.log(gateway.CmdBind, want.String(), route, gateway.RelayStats{}, err)
			return
		}
	}
	if err := s.reply(s5.RepSucceeded, peer.Peer); err != nil {
		peer.Conn.Close()
		s.log(gateway.CmdBind, want.String(), route, gateway.RelayStats{}, err)
		return
	}
	stats, err := s.f.rt.RelayStream(ctx, &s.p, &s.f.limits, s.conn, peer.Conn)
	s.log(gateway.CmdBind, peer.Peer.String(), route, stats, err)
}
