package socks5

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/sixgate/sixgate/gateway"
	s5 "github.com/sixgate/sixgate/translate/socks5"
)

// Dial opens a stream to req.Dest with a SOCKS 5 CONNECT and writes
// req.InitialData right after the server's success reply, before it
// returns.
//
// An IP destination is checked against req.Policy before anything is sent
// (before the server is even contacted). A name is forwarded to the server
// (ATYP 3) with resolve = "remote"; with resolve = "local" it is resolved
// with the backend's resolver, every address is checked against the policy
// and the allowed ones are tried one after another, each with a
// connection of its own, until the server reports success for one.
//
// Stream.Bound is BND.ADDR/BND.PORT of the reply (the server's outgoing
// address); Stream.Peer is the destination asked for (the address tried,
// with local resolution). A failure reply gives its neutral reason
// (translate/socks5 ReplyCode.Reason), so a refused destination is
// gateway.ReasonRefused; failing to reach the server is ReasonGeneral (or
// ReasonTimeout), rejected credentials ReasonAuthFailed. SOCKS 5 cannot
// express stack options: every requested option is Unsupported. dial_timeout
// bounds the whole call.
func (b *Backend) Dial(ctx context.Context, req *gateway.StreamRequest) (*gateway.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, b.dialTimeout)
	defer cancel()
	policy := gateway.PolicyOrAll(req.Policy)
	var dests []gateway.Addr
	switch {
	case !req.Dest.IsName():
		ap := netip.AddrPortFrom(req.Dest.IP.Unmap(), req.Dest.Port)
		if err := policy.Allow(ap); err != nil {
			return nil, b.denied(opDial, ap, err)
		}
		dests = []gateway.Addr{gateway.AddrFromAddrPort(ap)}
	case b.local:
		var err error
		if dests, err = b.resolve(ctx, opDial, req.Dest, policy); err != nil {
			return nil, err
		}
	default:
		dests = []gateway.Addr{req.Dest}
	}

	var firstErr error
	for _, dest := range dests {
		st, replied, err := b.connect(ctx, dest, req)
		if err == nil {
			return st, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		// Only the server's verdict on this address is worth another
		// address; a server that cannot be reached or refuses us, or a
		// spent deadline, fails every address alike.
		if !replied || ctx.Err() != nil {
			break
		}
	}
	b.log.Debug("stream dial failed", "dest", req.Dest.String(), "reason", gateway.ReasonOf(firstErr).String(), "err", firstErr)
	return nil, firstErr
}

// connect runs one CONNECT to dest on a connection of its own. replied
// reports that the error is the server's failure reply (its verdict on
// dest), not a failure to reach or negotiate with the server.
func (b *Backend) connect(ctx context.Context, dest gateway.Addr, req *gateway.StreamRequest) (st *gateway.Stream, replied bool, err error) {
	conn, err := b.reach(ctx, opDial, req.Principal)
	if err != nil {
		return nil, false, err
	}
	rep, err := b.exchange(ctx, opDial, conn, s5.Request{Command: s5.CmdConnect, Dest: dest}, req.InitialData)
	if err != nil {
		conn.Close()
		return nil, rep.Code != s5.RepSucceeded, err
	}
	opts := req.Options
	opts.UnsupportPending()
	return &gateway.Stream{Conn: conn, Bound: rep.Bound, Peer: dest, Options: opts}, false, nil
}

// resolve looks up dest's name and returns the addresses the policy allows,
// in the resolver's order. A name with no allowed address fails with
// ReasonNotAllowed.
func (b *Backend) resolve(ctx context.Context, op string, dest gateway.Addr, policy gateway.Policy) ([]gateway.Addr, error) {
	ips, err := b.resolver.LookupNetIP(ctx, "ip", dest.Name)
	if err != nil {
		return nil, gateway.NewError(gateway.ReasonOf(err), op, fmt.Errorf("resolving %s: %w", dest.Name, err))
	}
	var out []gateway.Addr
	var deny error
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), dest.Port)
		if err := policy.Allow(ap); err != nil {
			if deny == nil {
				deny = err
			}
			continue
		}
		out = append(out, gateway.AddrFromAddrPort(ap))
	}
	switch {
	case len(out) > 0:
		return out, nil
	case deny != nil:
		return nil, gateway.NewError(gateway.ReasonNotAllowed, op, fmt.Errorf("%s: no address allowed: %w", dest.Name, deny))
	}
	return nil, gateway.NewError(gateway.ReasonHostUnreachable, op, fmt.Errorf("%s has no addresses", dest.Name))
}

// denied is the error for an address the policy refused.
func (b *Backend) denied(op string, ap netip.AddrPort, err error) error {
	b.log.Debug("destination denied", "dest", ap.String(), "err", err)
	return gateway.NewError(gateway.ReasonNotAllowed, op, fmt.Errorf("%s: %w", ap, err))
}
