package socks6

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// BindOptions are the optional parts of a BIND.
type BindOptions struct {
	// Legs are the requested stack options. Legs.Remote.Backlog asks for a
	// listen backlog, which the proxy grants only inside a session
	// (ClientConfig.Session).
	Legs s6.Legs
}

// Binding is a listening socket on the proxy, opened by Bind.
//
// Without a backlog (one-shot BIND) the Request's connection waits for the
// one peer: Accept reads the second Operation Reply on it and hands the
// connection over. With a backlog granted, that connection stays open as
// the control channel and relays nothing; each Accept opens a new
// connection in the same session with a BIND for Addr and returns after its
// second Operation Reply.
type Binding struct {
	// Addr is the address the proxy listens on (the first Operation
	// Reply's address).
	Addr gateway.Addr
	// Legs are the requested stack options with the proxy's outcomes.
	Legs s6.Legs
	// AuthReply and OpReply are the proxy's replies to the BIND.
	AuthReply s6.AuthReply
	OpReply   s6.OpReply

	c *Client
	// session is the session a backlog binding lives in; nil for a
	// one-shot binding.
	session []byte

	mu    sync.Mutex
	conn  net.Conn
	state bindState
}

type bindState uint8

const (
	bindOpen bindState = iota
	bindAccepting
	bindAccepted
	bindClosed
)

// Bind asks the proxy to listen on addr (a zero address or port means
// "any") and returns once it does (the first Operation Reply).
func (c *Client) Bind(ctx context.Context, addr gateway.Addr, o *BindOptions) (*Binding, error) {
	if o == nil {
		o = &BindOptions{}
	}
	legs := o.Legs
	if addr.IsZero() {
		addr = gateway.Addr{IP: ipv4Any}
	}
	r := &request{cmd: s6.CmdBind, addr: addr, stack: legs.RequestOptions(c.cfg.Dialect)}
	res, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	legs.ApplyReply(res.op.Options.Stack)
	b := &Binding{Addr: res.op.Bind, Legs: legs, AuthReply: res.auth, OpReply: res.op, c: c, conn: res.conn}
	if bl := legs.Remote.Backlog; bl.Outcome == gateway.Applied && bl.Value > 0 && res.sess != nil {
		b.session = res.sess
	}
	return b, nil
}

// Backlog reports whether the proxy granted a listen backlog, so that
// Accept may be called repeatedly (and concurrently).
func (b *Binding) Backlog() bool { return b.session != nil }

// Accept waits for the next peer. A one-shot binding yields one peer; an
// Accept cut short by ctx then leaves it closed.
func (b *Binding) Accept(ctx context.Context) (*Conn, error) {
	if b.session != nil {
		return b.acceptBacklog(ctx)
	}
	b.mu.Lock()
	if b.state != bindOpen {
		st := b.state
		b.mu.Unlock()
		if st == bindClosed {
			return nil, fail(gateway.ReasonGeneral, "accept", net.ErrClosed)
		}
		return nil, fail(gateway.ReasonGeneral, "accept", fmt.Errorf("a one-shot binding has one peer"))
	}
	b.state = bindAccepting
	conn := b.conn
	b.mu.Unlock()
	op, err := b.c.readPeer(ctx, conn)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == bindClosed {
		return nil, fail(gateway.ReasonGeneral, "accept", net.ErrClosed)
	}
	if err != nil {
		b.state = bindClosed
		conn.Close()
		return nil, err
	}
	b.state = bindAccepted
	return &Conn{Conn: conn, Bound: op.Bind, Peer: op.Bind, Legs: b.Legs, AuthReply: b.AuthReply, OpReply: op}, nil
}

func (b *Binding) acceptBacklog(ctx context.Context) (*Conn, error) {
	b.mu.Lock()
	closed := b.state == bindClosed
	b.mu.Unlock()
	if closed {
		return nil, fail(gateway.ReasonGeneral, "accept", net.ErrClosed)
	}
	res, err := b.c.do(ctx, &request{cmd: s6.CmdBind, addr: b.Addr, pin: b.session})
	if err != nil {
		return nil, err
	}
	op, err := b.c.readPeer(ctx, res.conn)
	if err != nil {
		res.conn.Close()
		return nil, err
	}
	return &Conn{Conn: res.conn, Bound: op.Bind, Peer: op.Bind, Legs: b.Legs, AuthReply: res.auth, OpReply: op, Token: res.token}, nil
}

// readPeer reads a BIND's second Operation Reply, bounded by ctx only.
func (c *Client) readPeer(ctx context.Context, conn net.Conn) (s6.OpReply, error) {
	stop := watch(ctx, conn)
	op, err := s6.ReadOpReply(conn, nil, c.cfg.Dialect)
	if !stop() {
		return s6.OpReply{}, fail(gateway.Classify(ctx.Err()), "accept", ctx.Err())
	}
	if err != nil {
		return s6.OpReply{}, readErr("read second operation reply", err)
	}
	if op.Code != s6.ReplySuccess {
		return s6.OpReply{}, fail(op.Code.Reason(), "accept", &ReplyError{Command: s6.CmdBind, Code: op.Code})
	}
	return op, nil
}

// Close stops listening: it closes the control connection (backlog) or the
// waiting connection (one-shot, before Accept returned a peer). A peer
// already returned by Accept stays open.
func (b *Binding) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.state
	b.state = bindClosed
	if prev == bindAccepted || prev == bindClosed {
		return nil
	}
	return b.conn.Close()
}
