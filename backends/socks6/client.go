package socks6

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// AuthMode says how the client sends its username and password.
type AuthMode uint8

// Authentication modes.
const (
	// Auth0RTT sends the credentials as an Authentication Data option in
	// the Request (the form every implementation uses). It is the default.
	Auth0RTT AuthMode = iota
	// AuthInBand advertises method 2 and runs the RFC 1929 exchange on the
	// stream after the proxy's Selection (-11 only; -12 drops it).
	AuthInBand
)

// String returns "0-rtt" or "in-band".
func (m AuthMode) String() string {
	switch m {
	case Auth0RTT:
		return "0-rtt"
	case AuthInBand:
		return "in-band"
	}
	return "auth(" + strconv.Itoa(int(m)) + ")"
}

// DefaultHandshakeTimeout bounds one exchange with the proxy, from the dial
// to the first Operation Reply, when the caller's context has no earlier
// deadline. Waiting for a BIND peer is bounded by the context only.
const DefaultHandshakeTimeout = 30 * time.Second

// sessionRetry is how long the client works without a session after a
// proxy answered a Session Request without opening one.
const sessionRetry = time.Minute

// ipv4Any is 0.0.0.0, the address of a NOOP and of a BIND for any address.
var ipv4Any = netip.IPv4Unspecified()

// ClientConfig configures a Client.
type ClientConfig struct {
	// Server is host:port of the proxy's TCP (or TLS) listener.
	Server string
	// Dialect is the proxy's draft revision: s6.Draft11 (the zero value)
	// or s6.Draft10.
	Dialect s6.Dialect
	// Username and Password are the RFC 1929 credentials; both empty means
	// no authentication. Each is at most 255 bytes.
	Username, Password string
	// Auth says how the credentials travel; Auth0RTT by default.
	Auth AuthMode
	// TLS, when set, runs SOCKS 6 over TLS. An empty ServerName is set to
	// the host of Server.
	TLS *tls.Config
	// Dial opens the connection to Server; nil uses a net.Dialer. A
	// backend with `via` supplies one that dials through another backend.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Session opens a session on the first Request and reuses it: later
	// Requests carry the Session ID (and a token) instead of credentials.
	Session bool
	// WindowSize is the idempotence window asked for when the session is
	// opened (0 = none). Later Requests spend tokens from it, lowest first.
	WindowSize uint32
	// TFO turns on TCP Fast Open towards the proxy (TCP_FASTOPEN_CONNECT,
	// Linux), so the Request and the initial data ride in the SYN. It has
	// no effect with a custom Dial.
	TFO bool
	// HandshakeTimeout overrides DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Log receives the client's records (session opened, recovered); nil
	// discards them.
	Log *slog.Logger
}

// ClientStats are a Client's counters since it was made.
type ClientStats struct {
	// Requests counts Requests written to the proxy, retries included.
	Requests uint64
	// SessionsOpened counts sessions the proxy opened for the client.
	SessionsOpened uint64
	// TokensSpent counts idempotence tokens the proxy accepted.
	TokensSpent uint64
	// TokensRejected counts tokens the proxy rejected (each retried once
	// without a token).
	TokensRejected uint64
	// SessionRecoveries counts Session Invalid answers the client
	// recovered from by dropping the session and retrying.
	SessionRecoveries uint64
	// AuthFailures counts credential failures: rejected credentials, no
	// acceptable method, or an unexplained authentication failure.
	AuthFailures uint64
}

// Client is a SOCKS 6 client for one proxy. It is safe for concurrent use:
// parallel Requests share one session and one token wallet.
type Client struct {
	cfg     ClientConfig
	tls     *tls.Config
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	log     *slog.Logger
	timeout time.Duration
	// onDial, when set, learns the outcome of every connection attempt to
	// the proxy (the backend's health).
	onDial func(err error)

	mu     sync.Mutex
	sessID []byte
	wallet s6.Wallet
	// windowKnown is set once a window was adopted for sessID.
	windowKnown bool
	// opening is non-nil while one Request opens the session; it is closed
	// when that Request knows whether it got one.
	opening chan struct{}
	// openPending is set while an opener whose waiters were released may
	// still learn its Session ID from the Operation Reply.
	openPending    bool
	noSessionUntil time.Time

	requests, sessions, tokens, rejected, recoveries, authFailures atomic.Uint64
}

// NewClient checks cfg and returns a Client. It opens no connection.
func NewClient(cfg ClientConfig) (*Client, error) {
	host, port, err := net.SplitHostPort(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("socks6 backend: server %q: %w", cfg.Server, err)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || host == "" {
		return nil, fmt.Errorf("socks6 backend: server %q is not a host and a port", cfg.Server)
	}
	if len(cfg.Username) > 255 || len(cfg.Password) > 255 {
		return nil, errors.New("socks6 backend: username and password are at most 255 bytes")
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, errors.New("socks6 backend: a password needs a username")
	}
	if cfg.Dialect != s6.Draft11 && cfg.Dialect != s6.Draft10 {
		return nil, fmt.Errorf("socks6 backend: unknown dialect %d", cfg.Dialect)
	}
	if cfg.Auth != Auth0RTT && cfg.Auth != AuthInBand {
		return nil, fmt.Errorf("socks6 backend: unknown authentication mode %d", cfg.Auth)
	}
	if cfg.WindowSize > s6.MaxWindowSize {
		return nil, fmt.Errorf("socks6 backend: window size %d is above %d", cfg.WindowSize, s6.MaxWindowSize)
	}
	c := &Client{cfg: cfg, dial: cfg.Dial, log: cfg.Log, timeout: cfg.HandshakeTimeout}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultHandshakeTimeout
	}
	if cfg.TLS != nil {
		c.tls = cfg.TLS.Clone()
		if c.tls.ServerName == "" {
			c.tls.ServerName = host
		}
	}
	if c.dial == nil {
		d := &net.Dialer{}
		if cfg.TFO {
			d.Control = tfoControl
		}
		c.dial = d.DialContext
	}
	return c, nil
}

// ConnectOptions are the optional parts of a CONNECT.
type ConnectOptions struct {
	// InitialData is sent right after the Request as 0-RTT initial data
	// (an Advertisement carries its length); at most s6.MaxInitialData
	// bytes. The proxy sends it to the destination first.
	InitialData []byte
	// FalseStart is sent after the Request and the initial data without
	// waiting for a reply; in an in-band authentication it follows the
	// client's RFC 1929 request, as the draft allows.
	FalseStart []byte
	// Legs are the requested stack options (Client and Remote legs).
	Legs s6.Legs
}

// Conn is an established stream through the proxy: a CONNECT, or a peer
// accepted by a BIND. Reads and writes go straight to the proxy connection.
type Conn struct {
	net.Conn
	// Bound is the Operation Reply's address: for a CONNECT the proxy's
	// local endpoint of the outgoing connection, for a BIND peer the peer's
	// address (the second reply).
	Bound gateway.Addr
	// Peer is the far end: the CONNECT destination or the BIND peer.
	Peer gateway.Addr
	// Legs are the requested stack options with the proxy's outcomes
	// (ApplyReply); for a BIND peer, those of the listening socket.
	Legs s6.Legs
	// AuthReply is the proxy's final Authentication Reply.
	AuthReply s6.AuthReply
	// OpReply is the proxy's (last) Operation Reply.
	OpReply s6.OpReply
	// Token is the idempotence token the proxy accepted for this Request,
	// if any.
	Token *uint32
}

// Unwrap returns the proxy connection, so that gateway.UnwrapConn and the
// relay can splice it.
func (c *Conn) Unwrap() (net.Conn, bool) { return c.Conn, true }

// CloseWrite half-closes the stream when the connection supports it.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Reply is the outcome of a NOOP.
type Reply struct {
	Auth s6.AuthReply
	Op   s6.OpReply
}

// request is one Request to make.
type request struct {
	cmd        s6.Command
	addr       gateway.Addr
	stack      []s6.StackOption
	initial    []byte
	falseStart []byte
	teardown   bool
	// pin is the session a backlog Accept must use; nil lets the client
	// choose.
	pin     []byte
	noToken bool
}

// ticket is how one attempt uses the session.
type ticket struct {
	// sent is the Session ID the Request carries.
	sent  []byte
	token *uint32
	// open is set when the Request carries a Session Request; released
	// once its waiters were let go, settled once the outcome is known.
	open     bool
	released bool
	settled  bool
	// session is the session the Request belongs to: sent, or the one it
	// opened.
	session []byte
}

// result is a completed exchange up to the first Operation Reply.
type result struct {
	conn  net.Conn
	auth  s6.AuthReply
	op    s6.OpReply
	sess  []byte
	token *uint32
}

// Connect opens a stream to dest through the proxy. A failed Operation
// Reply gives an error wrapping *gateway.Error with the code's reason and a
// *ReplyError; an authentication failure wraps gateway.ReasonAuthFailed and
// one of ErrBadCredentials, ErrNoAcceptableMethod or ErrAuthFailed.
func (c *Client) Connect(ctx context.Context, dest gateway.Addr, o *ConnectOptions) (*Conn, error) {
	if o == nil {
		o = &ConnectOptions{}
	}
	if len(o.InitialData) > s6.MaxInitialData {
		return nil, fail(gateway.ReasonGeneral, "connect",
			fmt.Errorf("%d bytes of initial data, at most %d fit", len(o.InitialData), s6.MaxInitialData))
	}
	legs := o.Legs
	r := &request{cmd: s6.CmdConnect, addr: dest, stack: legs.RequestOptions(c.cfg.Dialect),
		initial: o.InitialData, falseStart: o.FalseStart}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	legs.ApplyReply(res.op.Options.Stack)
	return &Conn{Conn: res.conn, Bound: res.op.Bind, Peer: dest, Legs: legs,
		AuthReply: res.auth, OpReply: res.op, Token: res.token}, nil
}

// Noop sends a NOOP and returns the proxy's replies. With Session set it
// opens the session (and asks for the window) if none is open yet, or
// refreshes the wallet from the session's window.
func (c *Client) Noop(ctx context.Context) (*Reply, error) {
	r := &request{cmd: s6.CmdNoop, addr: gateway.Addr{IP: ipv4Any}}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	res.conn.Close()
	return &Reply{Auth: res.auth, Op: res.op}, nil
}

// SessionID returns a copy of the open session's ID, or nil.
func (c *Client) SessionID() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.sessID)
}

// Teardown ends the open session: a NOOP with the Session ID and Session
// Teardown (with the credentials, since the proxy then treats the Request
// as sessionless). The client forgets the session at once, whatever the
// proxy answers; a Session Invalid answer counts as success. Without a
// session it does nothing.
func (c *Client) Teardown(ctx context.Context) error {
	c.mu.Lock()
	id := c.sessID
	c.dropLocked()
	c.mu.Unlock()
	if id == nil {
		return nil
	}
	t := ticket{sent: id, session: id}
	res, err := c.attempt(ctx, &request{cmd: s6.CmdNoop, addr: gateway.Addr{IP: ipv4Any}, teardown: true}, &t)
	if errors.Is(err, ErrSessionInvalid) {
		return nil
	}
	if err != nil {
		return err
	}
	res.conn.Close()
	c.log.Debug("session torn down")
	return nil
}

// Stats returns the client's counters.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		Requests:          c.requests.Load(),
		SessionsOpened:    c.sessions.Load(),
		TokensSpent:       c.tokens.Load(),
		TokensRejected:    c.rejected.Load(),
		SessionRecoveries: c.recoveries.Load(),
		AuthFailures:      c.authFailures.Load(),
	}
}

// do makes a Request, recovering once from Session Invalid (drop the
// session, retry without it, which opens a new one) and once from
// Idempotence Rejected (retry without a token).
func (c *Client) do(ctx context.Context, r *request) (*result, error) {
	retriedSession, retriedToken := false, false
	for {
		t, err := c.acquire(ctx, r)
		if err != nil {
			return nil, err
		}
		res, err := c.attempt(ctx, r, &t)
		if err == nil {
			return res, nil
		}
		switch {
		case errors.Is(err, ErrSessionInvalid) && t.sent != nil:
			c.invalidate(t.sent)
			if r.pin == nil && !retriedSession && ctx.Err() == nil {
				retriedSession = true
				c.recoveries.Add(1)
				c.log.Info("upstream forgot the session; opening a new one")
				continue
			}
		case errors.Is(err, ErrTokenRejected) && t.token != nil:
			c.rejected.Add(1)
			if !retriedToken && ctx.Err() == nil {
				retriedToken = true
				r.noToken = true
				c.log.Debug("idempotence token rejected; retrying without a token", "token", *t.token)
				continue
			}
		}
		return nil, err
	}
}

// acquire decides how a Request uses the session: with the open one (and
// the next token), by opening one, or without. While another Request opens
// the session it waits for that Request's Authentication Reply, once: if
// that brings no session the Request goes on without one, so no Request
// ever queues behind a chain of failing openers.
func (c *Client) acquire(ctx context.Context, r *request) (ticket, error) {
	if r.pin != nil {
		t := ticket{sent: r.pin, session: r.pin}
		c.mu.Lock()
		if bytes.Equal(c.sessID, r.pin) {
			t.token = c.nextTokenLocked(r)
		}
		c.mu.Unlock()
		return t, nil
	}
	if !c.cfg.Session {
		return ticket{}, nil
	}
	waited := false
	for {
		c.mu.Lock()
		switch {
		case c.sessID != nil:
			t := ticket{sent: c.sessID, session: c.sessID, token: c.nextTokenLocked(r)}
			c.mu.Unlock()
			return t, nil
		case waited || c.openPending || time.Now().Before(c.noSessionUntil):
			c.mu.Unlock()
			return ticket{}, nil
		case c.opening != nil:
			ch := c.opening
			c.mu.Unlock()
			select {
			case <-ch:
				waited = true
				continue
			case <-ctx.Done():
				return ticket{}, fail(gateway.Classify(ctx.Err()), "wait for session", ctx.Err())
			}
		}
		c.opening = make(chan struct{})
		c.mu.Unlock()
		return ticket{open: true}, nil
	}
}

func (c *Client) nextTokenLocked(r *request) *uint32 {
	if r.noToken || r.cmd == s6.CmdNoop {
		return nil
	}
	if t, ok := c.wallet.Next(); ok {
		return &t
	}
	return nil
}

// release lets the Requests waiting for an opening session go on without
// one: the opener's Authentication Reply succeeded without a Session ID,
// which may still come in its Operation Reply. Until then new Requests do
// not open another session.
func (c *Client) release(t *ticket) {
	if !t.open || t.settled || t.released {
		return
	}
	t.released = true
	c.mu.Lock()
	close(c.opening)
	c.opening = nil
	c.openPending = true
	c.mu.Unlock()
}

// settle ends the opening of a session: id is the Session ID the proxy gave
// (nil if none); authOK says the proxy carried out the Request without
// opening a session, so the client stops asking for a while.
func (c *Client) settle(t *ticket, id []byte, authOK bool) {
	if !t.open || t.settled {
		return
	}
	t.settled = true
	c.mu.Lock()
	if id != nil {
		c.sessID = bytes.Clone(id)
		c.wallet, c.windowKnown = s6.Wallet{}, false
		t.session = c.sessID
	} else if authOK {
		c.noSessionUntil = time.Now().Add(sessionRetry)
	}
	if t.released {
		c.openPending = false
	} else {
		close(c.opening)
		c.opening = nil
	}
	c.mu.Unlock()
	if id != nil {
		c.sessions.Add(1)
		c.log.Debug("session opened")
	} else if authOK {
		c.log.Info("upstream opened no session; working without one", "retry_after", sessionRetry)
	}
}

// observeWindow adopts an advertised window for the ticket's session if it
// is still the open one.
func (c *Client) observeWindow(t *ticket, w *s6.Window) {
	if w == nil || t.session == nil {
		return
	}
	c.mu.Lock()
	if bytes.Equal(c.sessID, t.session) && c.wallet.Update(*w) {
		c.windowKnown = true
	}
	c.mu.Unlock()
}

func (c *Client) invalidate(id []byte) {
	c.mu.Lock()
	if bytes.Equal(c.sessID, id) {
		c.dropLocked()
	}
	c.mu.Unlock()
}

func (c *Client) dropLocked() {
	c.sessID = nil
	c.wallet, c.windowKnown = s6.Wallet{}, false
}

func (c *Client) wantsWindowLocked() bool {
	return c.cfg.WindowSize > 0 && !c.windowKnown
}

func (c *Client) hasCredentials() bool { return c.cfg.Username != "" || c.cfg.Password != "" }

// dialServer connects to the proxy (and runs the TLS handshake).
func (c *Client) dialServer(ctx context.Context) (net.Conn, error) {
	conn, err := c.dial(ctx, "tcp", c.cfg.Server)
	if err == nil && c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err = tc.HandshakeContext(ctx); err != nil {
			conn.Close()
		} else {
			conn = tc
		}
	}
	if c.onDial != nil {
		c.onDial(err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fail(gateway.Classify(ctx.Err()), "dial upstream "+c.cfg.Server, err)
		}
		return nil, fail(upstreamReason(err), "dial upstream "+c.cfg.Server, err)
	}
	return conn, nil
}

// watch makes conn's I/O fail once ctx ends. The returned stop clears that
// and reports whether it did so before ctx ended; after false the
// connection must be given up.
func watch(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	after := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() bool {
		if !after() {
			return false
		}
		conn.SetDeadline(time.Time{})
		return true
	}
}

// attempt runs one exchange: dial, Request (with initial and false-start
// data), Authentication Reply(s), first Operation Reply.
func (c *Client) attempt(ctx context.Context, r *request, t *ticket) (res *result, err error) {
	// A failed Request says nothing about whether the proxy opens
	// sessions (it opens one only for a Request that succeeds): the next
	// Request asks again.
	defer func() {
		if err != nil {
			c.settle(t, nil, false)
		}
	}()
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	conn, err := c.dialServer(hctx)
	if err != nil {
		return nil, err
	}
	stop := watch(hctx, conn)
	defer func() {
		if err != nil {
			stop()
			conn.Close()
		}
	}()
	ioErr := func(step string, err error) error {
		if hctx.Err() != nil {
			return fail(gateway.Classify(hctx.Err()), step, fmt.Errorf("%w: %w", hctx.Err(), err))
		}
		return readErr(step, err)
	}

	msg, inBand, err := c.buildRequest(r, t)
	if err != nil {
		return nil, err
	}
	c.requests.Add(1)
	if _, err := conn.Write(msg); err != nil {
		return nil, ioErr("write request", err)
	}

	rep, err := c.readAuth(conn)
	if err != nil {
		return nil, ioErr("read authentication reply", err)
	}
	falseSent := !inBand
	if rep.Continues() {
		m := *rep.Options.Selection
		if !inBand || m != s6.MethodUserPass {
			return nil, fail(gateway.ReasonGeneral, "authentication",
				fmt.Errorf("%w: proxy selected method %d, which was not offered", ErrProtocol, m))
		}
		b, err := s6.AppendUserPassRequest(nil, s6.UserPassRequest{Username: c.cfg.Username, Password: c.cfg.Password})
		if err != nil {
			return nil, fail(gateway.ReasonGeneral, "authentication", err)
		}
		b = append(b, r.falseStart...)
		falseSent = true
		if _, err := conn.Write(b); err != nil {
			return nil, ioErr("write username/password", err)
		}
		up, rep2, err := s6.ReadInBandResult(conn, nil, c.cfg.Dialect)
		if err != nil {
			return nil, ioErr("read authentication result", err)
		}
		if rep2.Continues() {
			return nil, fail(gateway.ReasonGeneral, "authentication",
				fmt.Errorf("%w: a second authentication reply opens another negotiation", ErrProtocol))
		}
		if rep2.Type == s6.AuthSuccess && up != nil && !up.OK() {
			return nil, fail(gateway.ReasonGeneral, "authentication",
				fmt.Errorf("%w: username/password status %d with a successful reply", ErrProtocol, up.Status))
		}
		if rep2.Type == s6.AuthFailure && !rep2.Options.SessionInvalid && !rep2.Options.IdempotenceRejected {
			c.authFailures.Add(1)
			return nil, fail(gateway.ReasonAuthFailed, "authentication", ErrBadCredentials)
		}
		rep = rep2
	}
	if rep.Type == s6.AuthSuccess && t.open {
		if rep.Options.SessionID != nil {
			c.settle(t, rep.Options.SessionID, true)
		} else {
			c.release(t)
		}
	}
	c.observeWindow(t, rep.Options.Window)
	if rep.Type != s6.AuthSuccess {
		return nil, c.authErr(&rep, inBand)
	}
	if !falseSent && len(r.falseStart) > 0 {
		if _, err := conn.Write(r.falseStart); err != nil {
			return nil, ioErr("write false-start data", err)
		}
	}

	op, err := s6.ReadOpReply(conn, nil, c.cfg.Dialect)
	if err != nil {
		return nil, ioErr("read operation reply", err)
	}
	// A proxy may put the Session ID in the Operation Reply (§7.1); Go's
	// proxies repeat it in every one, which is harmless.
	if t.open && op.Options.SessionID != nil {
		c.settle(t, op.Options.SessionID, true)
	}
	if op.Code != s6.ReplySuccess {
		return nil, fail(op.Code.Reason(), r.cmd.String(), &ReplyError{Command: r.cmd, Code: op.Code})
	}
	c.settle(t, nil, true)
	if !stop() {
		return nil, fail(gateway.Classify(hctx.Err()), r.cmd.String(), hctx.Err())
	}
	res = &result{conn: conn, auth: rep, op: op, sess: t.session}
	if t.token != nil && rep.Options.IdempotenceAccepted {
		c.tokens.Add(1)
		res.token = t.token
	}
	return res, nil
}

// buildRequest encodes the Request with its initial data and, unless an
// in-band authentication may run first, the false-start data. inBand says
// whether method 2 is advertised.
func (c *Client) buildRequest(r *request, t *ticket) (msg []byte, inBand bool, err error) {
	o := s6.Options{Stack: r.stack}
	if t.sent != nil {
		o.SessionID = t.sent
		o.Expenditure = t.token
		o.SessionTeardown = r.teardown
	}
	if c.hasCredentials() && (t.sent == nil || r.teardown) {
		if c.cfg.Auth == AuthInBand {
			inBand = true
		} else {
			ad, err := s6.UserPassAuthData(s6.UserPassRequest{Username: c.cfg.Username, Password: c.cfg.Password})
			if err != nil {
				return nil, false, fail(gateway.ReasonGeneral, "request", err)
			}
			o.AuthData = []s6.AuthData{ad}
		}
	}
	ws := c.cfg.WindowSize
	switch {
	case t.open:
		o.SessionRequest = true
		if ws > 0 {
			o.WindowRequest = &ws
		}
	case t.sent != nil && !r.teardown && r.cmd == s6.CmdNoop:
		c.mu.Lock()
		want := c.wantsWindowLocked()
		c.mu.Unlock()
		if want {
			o.WindowRequest = &ws
		}
	}
	if inBand || len(r.initial) > 0 {
		adv := &s6.Advertisement{InitialDataLen: uint16(len(r.initial))}
		if inBand {
			adv.Methods = []s6.Method{s6.MethodUserPass}
		}
		o.Advertisement = adv
	}
	msg = make([]byte, 0, 64+len(r.initial)+len(r.falseStart))
	msg, err = s6.AppendRequest(msg, &s6.Request{Command: r.cmd, Addr: r.addr, Options: o}, c.cfg.Dialect)
	if err != nil {
		return nil, false, fail(gateway.ReasonGeneral, "request", err)
	}
	msg = append(msg, r.initial...)
	if !inBand {
		msg = append(msg, r.falseStart...)
	}
	return msg, inBand, nil
}

// countReader remembers how many bytes were read and the first one.
type countReader struct {
	r     net.Conn
	n     int
	first byte
}

func (cr *countReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	if n > 0 && cr.n == 0 {
		cr.first = p[0]
	}
	cr.n += n
	return n, err
}

// readAuth reads the first Authentication Reply and recognizes the Version
// Mismatch reply (a lone 06 and the end of the stream).
func (c *Client) readAuth(conn net.Conn) (s6.AuthReply, error) {
	cr := &countReader{r: conn}
	rep, err := s6.ReadAuthReply(cr, nil, c.cfg.Dialect)
	if err != nil && cr.n == 1 && cr.first == s6.Version && isEOF(err) {
		return rep, ErrVersionMismatch
	}
	return rep, err
}

// authErr classifies a final failed Authentication Reply.
func (c *Client) authErr(rep *s6.AuthReply, inBand bool) error {
	o := &rep.Options
	var why error
	switch {
	case rep.Type != s6.AuthFailure:
		return fail(gateway.ReasonGeneral, "authentication",
			fmt.Errorf("%w: authentication reply type %d", ErrProtocol, rep.Type))
	case o.SessionInvalid:
		return fail(gateway.ReasonAuthFailed, "authentication", ErrSessionInvalid)
	case o.IdempotenceRejected:
		return fail(gateway.ReasonAuthFailed, "authentication", ErrTokenRejected)
	case o.Selection != nil && *o.Selection == s6.MethodNoAcceptable:
		why = ErrNoAcceptableMethod
	default:
		if res, ok, err := o.UserPassResult(); ok && err == nil && !res.OK() {
			why = ErrBadCredentials
		} else if !c.hasCredentials() {
			why = ErrNoAcceptableMethod
		} else {
			why = ErrAuthFailed
		}
	}
	c.authFailures.Add(1)
	return fail(gateway.ReasonAuthFailed, "authentication", why)
}

func isEOF(err error) bool {
	var fe *s6.FieldError
	return errors.As(err, &fe) && errors.Is(err, s6.ErrShort)
}

// readErr classifies an error from writing to or reading from the proxy.
func readErr(step string, err error) error {
	switch {
	case errors.Is(err, ErrVersionMismatch):
		return fail(gateway.ReasonGeneral, step, err)
	case errors.Is(err, s6.ErrVersion):
		return fail(gateway.ReasonGeneral, step, fmt.Errorf("%w: %w", ErrNotSOCKS6, err))
	case gateway.Classify(err) == gateway.ReasonTimeout:
		return fail(gateway.ReasonTimeout, step, err)
	case errors.Is(err, io.EOF):
		return fail(gateway.ReasonGeneral, step, fmt.Errorf("proxy closed the connection: %w", err))
	}
	var fe *s6.FieldError
	if errors.As(err, &fe) {
		if errors.Is(err, s6.ErrShort) {
			return fail(gateway.ReasonGeneral, step, fmt.Errorf("proxy closed the connection mid-message: %w", err))
		}
		if errors.Is(err, s6.ErrBadLength) || errors.Is(err, s6.ErrAddrType) || errors.Is(err, s6.ErrDomainStyle) ||
			errors.Is(err, s6.ErrValue) || errors.Is(err, gateway.ErrBadName) {
			return fail(gateway.ReasonGeneral, step, fmt.Errorf("%w: %w", ErrProtocol, err))
		}
	}
	return fail(upstreamReason(err), step, err)
}
