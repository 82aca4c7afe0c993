package socks5

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// aLongTimeAgo is a deadline in the past that unblocks pending I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// Operations named in errors.
const (
	opDial      = "socks5 backend: dial"
	opListen    = "socks5 backend: listen"
	opAccept    = "socks5 backend: accept"
	opAssociate = "socks5 backend: associate"
	opSend      = "socks5 backend: send"
)

// reach opens a connection to the server and sends the method negotiation
// message on it: through Via (the message is the stream's initial data, so
// a via hop that can carry 0-RTT data saves a round trip) or from a socket
// of the gateway host. The server's address is operator-configured, so no
// policy applies to it. ctx bounds the whole attempt.
func (b *Backend) reach(ctx context.Context, op string, p gateway.Principal) (net.Conn, error) {
	if b.via != nil {
		st, err := b.via.Dial(ctx, &gateway.StreamRequest{Dest: b.server, InitialData: b.greeting, Principal: p})
		if err != nil {
			return nil, b.serverFailed(op, fmt.Errorf("server %s through %q: %w", b.server, b.via.Name(), err))
		}
		return st.Conn, nil
	}
	conn, err := b.dialServer(ctx)
	if err != nil {
		return nil, b.serverFailed(op, fmt.Errorf("server %s: %w", b.server, err))
	}
	err = withDeadline(ctx, conn, func() error {
		_, err := conn.Write(b.greeting)
		return err
	})
	if err != nil {
		conn.Close()
		return nil, b.serverFailed(op, fmt.Errorf("server %s: method negotiation: %w", b.server, err))
	}
	return conn, nil
}

// dialServer connects to the server from the gateway host, trying the
// addresses of a server name one after another.
func (b *Backend) dialServer(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	if !b.server.IsName() {
		return d.DialContext(ctx, "tcp", b.server.AddrPort().String())
	}
	ips, err := b.resolver.LookupNetIP(ctx, "ip", b.server.Name)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s has no addresses", b.server.Name)
	}
	var first error
	for _, ip := range ips {
		c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip.Unmap(), b.server.Port).String())
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// exchange completes the method negotiation on a connection from reach,
// sends the request q, reads the (first) reply and, when it reports
// success, writes initial. Every error is a *gateway.Error with op; the
// caller closes conn on error. A reply that reports failure gives the
// reply's reason (so a refused destination is gateway.ReasonRefused) and
// the returned Reply still carries its code.
func (b *Backend) exchange(ctx context.Context, op string, conn net.Conn, q s5.Request, initial []byte) (s5.Reply, error) {
	var rep s5.Reply
	var opErr error // the *gateway.Error to return, set where the step is known
	err := withDeadline(ctx, conn, func() error {
		if err := b.negotiate(op, conn); err != nil {
			opErr = err
			return err
		}
		msg, err := q.Append(make([]byte, 0, 32))
		if err != nil {
			opErr = gateway.NewError(gateway.ReasonHostUnreachable, op, fmt.Errorf("%s %s: %w", q.Command, q.Dest, err))
			return err
		}
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		rep, err = s5.ReadReply(conn)
		switch {
		case rep.Code != s5.RepSucceeded:
			// A failure reply, even a malformed one, says why.
			opErr = gateway.NewError(rep.Code.Reason(), op, fmt.Errorf("%s %s: %w", q.Command, q.Dest, rep.Err()))
			return opErr
		case err != nil:
			return err
		}
		if len(initial) > 0 {
			if _, err := conn.Write(initial); err != nil {
				return err
			}
		}
		return nil
	})
	switch {
	case opErr != nil:
		return rep, opErr
	case err != nil:
		return rep, gateway.NewError(stepReason(err), op, fmt.Errorf("%s %s: server %s: %w", q.Command, q.Dest, b.server, protocolErr(err)))
	}
	return rep, nil
}

// negotiate reads the server's method selection (the greeting was sent by
// reach) and authenticates with the configured credentials when the server
// asks for them. It records the outcome for Health.
func (b *Backend) negotiate(op string, conn net.Conn) error {
	err := b.authenticate(conn)
	if err == nil {
		b.noteServer(nil)
		return nil
	}
	var ge *gateway.Error
	if !errors.As(err, &ge) {
		err = gateway.NewError(stepReason(err), op, fmt.Errorf("server %s: method negotiation: %w", b.server, protocolErr(err)))
	} else {
		ge.Op = op
	}
	b.noteServer(err)
	return err
}

func (b *Backend) authenticate(conn net.Conn) error {
	m, err := s5.ReadMethodSelection(conn)
	if err != nil {
		return err
	}
	switch {
	case m == s5.MethodNoAuth:
		return nil
	case m == s5.MethodNoAcceptable:
		return gateway.NewError(gateway.ReasonAuthFailed, "", fmt.Errorf("server %s: %w", b.server, ErrNoAcceptableMethod))
	case m != s5.MethodUserPass || b.userPass == nil:
		return fmt.Errorf("%w: server chose %s, which was not offered", ErrProtocol, m)
	}
	if _, err := conn.Write(b.userPass); err != nil {
		return err
	}
	status, err := s5.ReadUserPassReply(conn)
	if err != nil {
		return err
	}
	if status != s5.UserPassSuccess {
		return gateway.NewError(gateway.ReasonAuthFailed, "",
			fmt.Errorf("server %s: username/password authentication: %w (status 0x%02x)", b.server, ErrBadCredentials, status))
	}
	return nil
}

// serverFailed wraps a failure to reach the server, records it for Health
// and logs it. Whatever the cause, the client's request did not get as far
// as its destination, so the reason is ReasonGeneral (ReasonTimeout for a
// timeout): "connection refused" would tell a client that its destination
// refused.
func (b *Backend) serverFailed(op string, err error) error {
	err = gateway.NewError(stepReason(err), op, err)
	b.noteServer(err)
	b.log.Error("socks5 server unreachable", "server", b.server.String(), "err", err)
	return err
}

// stepReason is the reason of a failed step with the server: ReasonTimeout
// for a timeout, ReasonGeneral otherwise.
func stepReason(err error) gateway.Reason {
	if gateway.ReasonOf(err) == gateway.ReasonTimeout || gateway.Classify(err) == gateway.ReasonTimeout {
		return gateway.ReasonTimeout
	}
	return gateway.ReasonGeneral
}

// protocolErr marks a codec error (a malformed or truncated message from
// the server) with ErrProtocol; other errors are returned as they are.
func protocolErr(err error) error {
	var fe *s5.FieldError
	if errors.As(err, &fe) && !errors.Is(err, ErrProtocol) && stepReason(err) != gateway.ReasonTimeout {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return err
}

// withDeadline runs fn, blocking I/O on c, so that it returns when ctx is
// done: ctx's deadline becomes c's deadline and a cancellation moves the
// deadline into the past. The deadline is cleared afterwards. When ctx was
// cancelled the error wraps context.Canceled.
func withDeadline(ctx context.Context, c net.Conn, fn func() error) error {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.SetDeadline(aLongTimeAgo)
		close(fired)
	})
	err := fn()
	if !stop() {
		<-fired
	}
	_ = c.SetDeadline(time.Time{})
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", context.Canceled, err)
	}
	return err
}

// unmapAP returns ap with an IPv4-mapped address unmapped.
func unmapAP(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
