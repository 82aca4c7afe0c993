// Package socks6 is sixgate's SOCKS 6 frontend (draft-olteanu-intarea-socks-6
// revision -11, with a switch for -10 peers): the handshake with 0-RTT and
// in-band username/password, sessions and idempotence tokens, CONNECT with
// initial data and false start, BIND (with listen backlogs), NOOP, "DNS
// provided by SOCKS", UDP ASSOCIATE over UDP, TCP and DTLS, and stack
// options. Every byte goes through the codec in translate/socks6; every
// request is carried as a neutral association by the backend the router
// picks.
package socks6

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Protocol is the protocol label of this frontend.
const Protocol = "socks6"

// Frontend serves SOCKS 6 clients.
type Frontend struct {
	name     string
	rt       *gateway.Runtime
	log      *slog.Logger
	users    *gateway.UserSet
	limits   gateway.Limits
	dialect  s6.Dialect
	dns      bool
	window   uint32
	tls      *tls.Config
	eps      []gateway.Endpoint
	sessions *sessionStore
	udp      *udpRelay
	dtlsAddr string
}

var (
	_ gateway.Frontend = (*Frontend)(nil)
	_ gateway.Refuser  = (*Frontend)(nil)
)

// New builds the frontend from its configuration.
func New(env *gateway.Env, name string, c *Config) (*Frontend, error) {
	f := &Frontend{
		name: name, rt: env.Runtime, log: env.Log, limits: env.Limits, dialect: c.dialect(),
		dns: c.DNS == nil || *c.DNS, window: 1024,
	}
	if c.WindowSize != nil {
		f.window = uint32(*c.WindowSize)
	}
	if c.Users != "" {
		us, ok := env.Users[c.Users]
		if !ok {
			return nil, fmt.Errorf("socks6: no users %q", c.Users)
		}
		f.users = us
	}
	if c.TLS != nil {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("socks6: tls: %w", err)
		}
		f.tls = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	first := []byte(nil)
	if c.AcceptSOCKS5 {
		// Every first byte but SOCKS 5's: anything else gets SOCKS 6's
		// Version Mismatch reply.
		first = make([]byte, 0, 255)
		for b := 0; b < 256; b++ {
			if b != 0x05 {
				first = append(first, byte(b))
			}
		}
	}
	f.eps = []gateway.Endpoint{{Network: "tcp", Address: c.Listen, FirstBytes: first, HandshakeTimeout: f.limits.HandshakeTimeout}}
	f.sessions = env.State.Get("socks6/"+name+"/sessions", func() any { return newSessionStore() }).(*sessionStore)
	f.udp = env.State.Get("socks6/"+name+"/udp", func() any { return newUDPRelay() }).(*udpRelay)
	udpListen := c.UDPListen
	if udpListen == "" {
		udpListen = c.Listen
	}
	if udpListen != "off" {
		f.eps = append(f.eps, gateway.Endpoint{Network: "udp", Address: udpListen})
	}
	if c.DTLSListen != "" {
		f.dtlsAddr = c.DTLSListen
		f.eps = append(f.eps, gateway.Endpoint{Network: "udp", Address: c.DTLSListen})
	}
	return f, nil
}

// Name returns the frontend's name.
func (f *Frontend) Name() string { return f.name }

// Endpoints returns the TCP listener and the UDP/DTLS relay endpoints.
func (f *Frontend) Endpoints() []gateway.Endpoint { return f.eps }

// RefuseConn answers a connection refused by a gateway limit: the Request
// gets a successful Authentication Reply and an Operation Reply "general
// failure", so the client learns why.
func (f *Frontend) RefuseConn(conn net.Conn, err error) {
	if _, rerr := s6.ReadRequest(conn, nil, f.dialect); rerr != nil {
		return
	}
	out, _ := s6.AppendAuthReply(nil, &s6.AuthReply{Type: s6.AuthSuccess}, f.dialect)
	out = appendOpReply(out, s6.ReplyCodeForError(err), gateway.Addr{}, nil, f.dialect)
	conn.Write(out)
}

// conn is one client connection being served.
type conn struct {
	f      *Frontend
	c      net.Conn
	client netip.AddrPort
	start  time.Time
	req    s6.Request
	p      gateway.Principal
	sess   *session
	// initial is the Initial Data read with the Request.
	initial []byte
	// pending holds the Authentication Reply of a CONNECT not written yet,
	// so that it and the Operation Reply go out in one write (one segment,
	// one wake-up of the client). A client without an Advertisement may
	// false-start at once and so gains nothing from an early reply; one
	// with an Advertisement may send more data only once the reply reports
	// success, so hold releases it on its own when the connection takes
	// longer than authHold. pendMu orders that write before the Operation
	// Reply.
	pending []byte
	pendMu  sync.Mutex
	hold    *time.Timer
}

// authHold is how long the Authentication Reply of a CONNECT with an
// Advertisement waits for the Operation Reply before it is written alone.
// A connection to a nearby host is up well within it; a client waiting on
// a distant one loses at most this much of its false start.
const authHold = 2 * time.Millisecond

// holdAuth keeps b, an Authentication Reply, to be written with the
// Operation Reply; with release, at most authHold.
func (cn *conn) holdAuth(b []byte, release bool) {
	cn.pending = b
	if release {
		cn.hold = time.AfterFunc(authHold, cn.releaseAuth)
	}
}

// releaseAuth writes the held Authentication Reply, if still held.
func (cn *conn) releaseAuth() {
	cn.pendMu.Lock()
	defer cn.pendMu.Unlock()
	if b := cn.pending; b != nil {
		cn.pending = nil
		cn.c.Write(b)
	}
}

// takePending returns the held Authentication Reply, if still held, to
// be written ahead of the Operation Reply.
func (cn *conn) takePending() []byte {
	if cn.hold != nil {
		cn.hold.Stop()
		cn.hold = nil
	}
	cn.pendMu.Lock()
	defer cn.pendMu.Unlock()
	b := cn.pending
	cn.pending = nil
	return b
}

// ServeConn runs one SOCKS 6 connection: the handshake, then the command.
func (f *Frontend) ServeConn(ctx context.Context, nc net.Conn, ep gateway.Endpoint) {
	cn := &conn{f: f, c: nc, start: time.Now()}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		cn.client = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	cn.p = gateway.Principal{Frontend: f.name, Protocol: Protocol, Client: cn.client}
	// Clean-up goes to the connection's Tail: a CONNECT's relay outlives
	// this goroutine (see gateway.Tail).
	ctx, tail, own := gateway.EnsureTail(ctx)
	if own {
		defer tail.Finish()
	}
	f.rt.SessionActive(f.name, Protocol, 1)
	tail.Defer(func() { f.rt.SessionActive(f.name, Protocol, -1) })
	// The gateway set the handshake deadline at accept time.
	if f.tls != nil {
		tc := tls.Server(nc, f.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			f.rt.HandshakeFailed(f.name, "tls")
			f.log.Debug("tls handshake failed", "client", cn.client, "error", err)
			return
		}
		cn.c = tc
	}
	cn.serve(ctx)
}

func (cn *conn) serve(ctx context.Context) {
	f := cn.f
	// No preallocated buffer: the codec grows it as bytes arrive, so a
	// client that announces a large Request and sends little costs little.
	// The Request and its Initial Data are read through a read-ahead; what
	// the client sent after them stays in front of the connection.
	ra := gateway.NewReadAhead(cn.c)
	ok := cn.readRequest(ra.Reader())
	cn.c = ra.Done(ok)
	if !ok {
		return
	}
	req := &cn.req
	rep, ok := cn.authenticate()
	if !ok {
		return
	}
	tail := gateway.TailOf(ctx)
	if cn.sess != nil {
		tail.Defer(cn.sess.hold(f.rt.Clock.Now()))
	}
	sctx, release, err := f.rt.Tracker.AcquireUser(ctx, &f.limits, cn.p.User)
	if err != nil {
		f.rt.LimitHit(f.name, err)
		cn.writeAuth(rep)
		cn.opReply(s6.ReplyCodeForError(err), gateway.Addr{}, nil)
		cn.log(cn.command(), nil, gateway.RelayStats{}, err)
		return
	}
	tail.Defer(release)
	if req.Command == s6.CmdConnect {
		b, err := s6.AppendAuthReply(make([]byte, 0, 96), rep, f.dialect)
		if err != nil {
			return
		}
		cn.holdAuth(b, req.Options.Advertisement != nil)
	} else if err := cn.writeAuth(rep); err != nil {
		return
	}
	switch req.Command {
	case s6.CmdNoop:
		cn.opReply(s6.ReplySuccess, gateway.Addr{}, nil)
		cn.log(gateway.CmdNoop, nil, gateway.RelayStats{}, nil)
	case s6.CmdConnect:
		cn.connect(sctx)
	case s6.CmdBind:
		cn.bind(sctx)
	case s6.CmdUDPAssociate:
		cn.udpAssociate(sctx)
	default:
		err := gateway.NewError(gateway.ReasonCommandNotSupported, "socks6", fmt.Errorf("command 0x%02x", uint8(req.Command)))
		cn.opReply(s6.ReplyCommandNotSupported, gateway.Addr{}, nil)
		cn.log(0, nil, gateway.RelayStats{}, err)
	}
}

func (cn *conn) command() gateway.Command {
	switch cn.req.Command {
	case s6.CmdConnect:
		return gateway.CmdConnect
	case s6.CmdBind:
		return gateway.CmdBind
	case s6.CmdUDPAssociate:
		return gateway.CmdUDP
	case s6.CmdNoop:
		return gateway.CmdNoop
	}
	return 0
}

// readRequest reads the Request and its Initial Data from r; false when
// the handshake failed (answered and counted here).
func (cn *conn) readRequest(r io.Reader) bool {
	f := cn.f
	var err error
	cn.req, err = s6.ReadRequest(r, nil, f.dialect)
	if err != nil {
		if errors.Is(err, s6.ErrVersion) {
			cn.c.Write(s6.AppendVersionMismatch(nil))
			f.rt.HandshakeFailed(f.name, "version")
			return false
		}
		cn.handshakeError("request", err)
		return false
	}
	if n := cn.req.InitialDataLen(); n > 0 {
		cn.initial = make([]byte, n)
		if _, err := io.ReadFull(r, cn.initial); err != nil {
			cn.handshakeError("initial_data", err)
			return false
		}
	}
	return true
}

func (cn *conn) handshakeError(stage string, err error) {
	reason := stage
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		reason = "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		reason = stage + "_eof"
	case errors.Is(err, s6.ErrDomainStyle), errors.Is(err, s6.ErrAddrType), errors.Is(err, s6.ErrBadLength), errors.Is(err, s6.ErrShort):
		reason = "malformed"
	}
	cn.f.rt.HandshakeFailed(cn.f.name, reason)
	cn.f.log.Debug("handshake failed", "client", cn.client, "stage", stage, "error", err)
}

func (cn *conn) writeAuth(r *s6.AuthReply) error {
	b, err := s6.AppendAuthReply(make([]byte, 0, 64), r, cn.f.dialect)
	if err != nil {
		return err
	}
	_, err = cn.c.Write(b)
	return err
}

func appendOpReply(b []byte, code s6.ReplyCode, bound gateway.Addr, stack []s6.StackOption, d s6.Dialect) []byte {
	if bound.IsZero() || (!bound.IsName() && !bound.IP.IsValid()) {
		bound = gateway.Addr{IP: netip.IPv4Unspecified(), Port: bound.Port}
	}
	r := s6.OpReply{Code: code, Bind: bound, Options: s6.Options{Stack: stack}}
	out, err := s6.AppendOpReply(b, &r, d)
	if err != nil {
		r.Bind = gateway.Addr{IP: netip.IPv4Unspecified()}
		out, _ = s6.AppendOpReply(b, &r, d)
	}
	return out
}

func (cn *conn) opReply(code s6.ReplyCode, bound gateway.Addr, stack []s6.StackOption) error {
	b := cn.takePending()
	_, err := cn.c.Write(appendOpReply(b, code, bound, stack, cn.f.dialect))
	return err
}

func (cn *conn) log(cmd gateway.Command, route *gateway.Route, st gateway.RelayStats, err error) {
	dest := ""
	if cn.req.Command != s6.CmdNoop {
		dest = cn.req.Addr.String()
	}
	cn.f.rt.AccessLog(gateway.AccessRecord{
		Frontend: cn.f.name, Protocol: Protocol, Command: cmd, User: cn.p.User, Client: cn.client.String(),
		Dest: dest, Route: route, Bytes: st, Start: cn.start, Err: err,
	})
}
