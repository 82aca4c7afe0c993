package socks6

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// bind serves BIND (§3.6). A plain BIND answers the listening address, waits
// for one peer, answers its address and relays. Inside a session, a Listen
// Backlog makes the listening socket outlive this connection, which then
// stays open as a control channel relaying nothing; later BIND Requests of
// the session aimed at the listening address each take one queued peer.
func (cn *conn) bind(ctx context.Context) {
	f := cn.f
	if cn.sess != nil {
		if bl := cn.sess.backlog(cn.req.Addr); bl != nil {
			cn.acceptFrom(ctx, bl.b, bl.route, nil)
			return
		}
	}
	legs := s6.SplitStack(&cn.req, f.dialect)
	cn.clientLeg(&legs)
	if legs.Remote.Backlog.Wanted() && cn.sess == nil {
		legs.Remote.Backlog.Decline(0) // only inside a session
	}
	b, route, err := f.rt.Bind(ctx, &gateway.BindRequest{Bind: cn.req.Addr, Options: legs.Remote, Principal: cn.p})
	if err != nil {
		cn.opReply(s6.ReplyCodeForError(err), gateway.Addr{}, nil)
		cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
		return
	}
	legs.Remote = b.Options()
	if cn.sess != nil && legs.Remote.Backlog.Outcome == gateway.Applied && legs.Remote.Backlog.Value > 0 {
		cn.backlogControl(ctx, b, route, &legs)
		return
	}
	defer b.Close()
	if err := cn.opReply(s6.ReplySuccess, b.Addr(), legs.Echo(f.dialect)); err != nil {
		cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
		return
	}
	cn.acceptFrom(ctx, b, route, &legs)
}

// backlogControl keeps a listening socket with a backlog registered in the
// session for as long as this control connection lives.
func (cn *conn) backlogControl(ctx context.Context, b gateway.Binding, route *gateway.Route, legs *s6.Legs) {
	sess := cn.sess
	key := b.Addr()
	sess.addBacklog(key, &backlog{b: b, ctrl: cn.c, route: route})
	defer func() {
		sess.removeBacklog(key, b)
		b.Close()
	}()
	if err := cn.opReply(s6.ReplySuccess, key, legs.Echo(cn.f.dialect)); err != nil {
		cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
		return
	}
	cn.c.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { cn.c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var buf [256]byte
	var err error
	for {
		if _, err = cn.c.Read(buf[:]); err != nil {
			break
		}
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	} else {
		err = nil
	}
	cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
}

// acceptFrom waits for a peer on b (while watching the client for an early
// close), then sends the second Operation Reply and relays. For a BIND that
// takes a peer from a backlog, the first Operation Reply (the listening
// address) is sent here too.
func (cn *conn) acceptFrom(ctx context.Context, b gateway.Binding, route *gateway.Route, legs *s6.Legs) {
	f := cn.f
	if legs == nil {
		// A Request that takes a queued peer: the two replies of a plain
		// BIND.
		legs = &s6.Legs{}
		if err := cn.opReply(s6.ReplySuccess, b.Addr(), nil); err != nil {
			return
		}
	}
	cn.c.SetDeadline(time.Time{})
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var early [1]byte
	earlyN := 0
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		n, err := cn.c.Read(early[:])
		earlyN = n
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			cancel()
		}
	}()
	peer, err := b.Accept(actx)
	cn.c.SetReadDeadline(time.Unix(1, 0))
	<-watchDone
	cn.c.SetReadDeadline(time.Time{})
	if err != nil {
		if ctx.Err() == nil && actx.Err() == nil {
			cn.opReply(s6.ReplyCodeForError(err), gateway.Addr{}, nil)
		}
		cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
		return
	}
	peerLegs := s6.Legs{Remote: peer.Options}
	if err := cn.opReply(s6.ReplySuccess, peer.Peer, peerLegs.Echo(f.dialect)); err != nil {
		peer.Conn.Close()
		cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
		return
	}
	if earlyN > 0 {
		if _, err := peer.Conn.Write(early[:earlyN]); err != nil {
			peer.Conn.Close()
			cn.log(gateway.CmdBind, route, gateway.RelayStats{}, err)
			return
		}
	}
	stats, err := f.rt.RelayStream(ctx, &cn.p, &f.limits, cn.c, peer.Conn)
	cn.log(gateway.CmdBind, route, stats, err)
}

// backlog returns the session's listening socket at addr (an unspecified
// address matches by port).
func (s *session) backlog(addr gateway.Addr) *backlog {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bl, ok := s.backlogs[addr.String()]; ok {
		return bl
	}
	if addr.IsAny() && addr.Port != 0 {
		for _, bl := range s.backlogs {
			if bl.b.Addr().Port == addr.Port {
				return bl
			}
		}
	}
	return nil
}

func (s *session) addBacklog(addr gateway.Addr, bl *backlog) {
	s.mu.Lock()
	s.backlogs[addr.String()] = bl
	s.mu.Unlock()
}

func (s *session) removeBacklog(addr gateway.Addr, b gateway.Binding) {
	s.mu.Lock()
	if bl := s.backlogs[addr.String()]; bl != nil && bl.b == b {
		delete(s.backlogs, addr.String())
	}
	s.mu.Unlock()
}
