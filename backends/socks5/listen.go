package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// errOnePeer reports a second Accept on a BIND binding: RFC 1928 BIND
// hands out exactly one peer.
var errOnePeer = errors.New("a socks 5 bind accepts one peer")

// Listen asks the server to listen for one peer with an RFC 1928 BIND.
// The server's first reply is the listening address (an unspecified
// BND.ADDR is replaced with the server's address); Accept waits for the
// second reply, which names the peer, and returns the same TCP connection
// as the peer's stream.
//
// SOCKS 5 cannot ask for a listening address: the request names "any peer"
// (0.0.0.0:0) and req.Bind is not expressed, so the server chooses the
// address and port. A binding serves one peer: the Backlog option, like
// every other stack option, is Unsupported. dial_timeout bounds the call up
// to the first reply.
func (b *Backend) Listen(ctx context.Context, req *gateway.BindRequest) (gateway.Binding, error) {
	sctx, cancel := context.WithTimeout(ctx, b.dialTimeout)
	defer cancel()
	conn, err := b.reach(sctx, opListen, req.Principal)
	if err != nil {
		return nil, err
	}
	rep, err := b.exchange(sctx, opListen, conn, s5.Request{Command: s5.CmdBind}, nil)
	if err != nil {
		conn.Close()
		b.log.Debug("bind failed", "reason", gateway.ReasonOf(err).String(), "err", err)
		return nil, err
	}
	opts := req.Options
	opts.UnsupportPending()
	l := &binding{
		b:      b,
		conn:   conn,
		addr:   b.orServer(rep.Bound, conn),
		opts:   opts,
		policy: req.Policy,
	}
	b.log.Debug("bind listening", "listen", l.addr.String(), "user", req.Principal.User)
	return l, nil
}

// orServer returns a, an address the server reported, with an unspecified
// address replaced by the server's: the remote address of conn when the
// server is reached directly, else the configured server host.
func (b *Backend) orServer(a gateway.Addr, conn net.Conn) gateway.Addr {
	if !a.IsAny() {
		if a.IP.IsValid() {
			a.IP = a.IP.Unmap()
		}
		return a
	}
	if b.via == nil {
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			return gateway.Addr{IP: ta.AddrPort().Addr().Unmap(), Port: a.Port}
		}
	}
	return gateway.Addr{IP: b.server.IP, Name: b.server.Name, Port: a.Port}
}

// binding is a BIND at the server: its control connection becomes the
// peer's stream.
type binding struct {
	b      *Backend
	conn   net.Conn
	addr   gateway.Addr
	opts   gateway.StackOptions
	policy gateway.Policy // nil allows every peer

	mu    sync.Mutex
	state bindState
}

// bindState is where a binding is in its one-peer life.
type bindState uint8

const (
	bindListening bindState = iota
	bindAccepting           // Accept waits for the second reply
	bindHanded              // the connection belongs to the peer's stream
	bindClosed              // closed, failed, or denied its peer
)

var _ gateway.Binding = (*binding)(nil)

// Addr returns the listening address the server reported.
func (l *binding) Addr() gateway.Addr { return l.addr }

// Options returns the outcomes of the stack options (all Unsupported).
func (l *binding) Options() gateway.StackOptions { return l.opts }

// Accept waits for the server's second reply and returns the connection as
// the stream of the peer it names. The peer is checked against the
// request's policy (a peer the server names by a domain name is refused
// unless there is no policy); a denied peer closes the binding and fails
// with ReasonNotAllowed. Any failure ends the binding, and so does a
// second call: SOCKS 5 hands out one peer per BIND. Close ends a waiting
// Accept.
func (l *binding) Accept(ctx context.Context) (*gateway.Stream, error) {
	l.mu.Lock()
	if l.state != bindListening {
		l.mu.Unlock()
		return nil, gateway.NewError(gateway.ReasonGeneral, opAccept, fmt.Errorf("bind %s: %w: %w", l.addr, errOnePeer, net.ErrClosed))
	}
	l.state = bindAccepting
	l.mu.Unlock()

	st, err := l.accept(ctx)

	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.state == bindClosed: // Close ran meanwhile and closed the connection
		if err == nil {
			err = gateway.NewError(gateway.ReasonGeneral, opAccept, fmt.Errorf("bind %s: %w", l.addr, net.ErrClosed))
		}
		return nil, err
	case err != nil:
		l.state = bindClosed
		l.conn.Close()
		return nil, err
	}
	l.state = bindHanded
	return st, nil
}

func (l *binding) accept(ctx context.Context) (*gateway.Stream, error) {
	var rep s5.Reply
	err := withDeadline(ctx, l.conn, func() error {
		var err error
		rep, err = s5.ReadReply(l.conn)
		return err
	})
	switch {
	case rep.Code != s5.RepSucceeded:
		return nil, gateway.NewError(rep.Code.Reason(), opAccept, fmt.Errorf("bind %s: %w", l.addr, rep.Err()))
	case err != nil:
		return nil, gateway.NewError(stepReason(err), opAccept, fmt.Errorf("bind %s: server %s: %w", l.addr, l.b.server, protocolErr(err)))
	}
	peer := rep.Bound
	if l.policy != nil {
		if peer.IsName() {
			return nil, gateway.NewError(gateway.ReasonNotAllowed, opAccept,
				fmt.Errorf("bind %s: peer %s is a name, which the policy cannot judge", l.addr, peer))
		}
		ap := netip.AddrPortFrom(peer.IP.Unmap(), peer.Port)
		if err := l.policy.Allow(ap); err != nil {
			l.b.log.Info("bind peer denied", "listen", l.addr.String(), "peer", ap.String(), "err", err)
			return nil, gateway.NewError(gateway.ReasonNotAllowed, opAccept, fmt.Errorf("bind %s: peer %s: %w", l.addr, ap, err))
		}
		peer = gateway.AddrFromAddrPort(ap)
	} else if peer.IP.IsValid() {
		peer.IP = peer.IP.Unmap()
	}
	return &gateway.Stream{Conn: l.conn, Bound: l.addr, Peer: peer, Options: l.opts}, nil
}

// Close stops listening: it closes the control connection unless Accept
// has handed it out as the peer's stream.
func (l *binding) Close() error {
	l.mu.Lock()
	prev := l.state
	if prev != bindHanded {
		l.state = bindClosed
	}
	l.mu.Unlock()
	if prev == bindHanded || prev == bindClosed {
		return nil
	}
	return l.conn.Close()
}
