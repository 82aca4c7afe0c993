package socks6

import (
	"context"
	"crypto/tls"
	"net"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// clientLeg applies the client–proxy leg stack options (TOS, TTL, DF) on the
// client's own socket, recording outcomes in legs.Client; everything else on
// that leg is unsupported.
func (cn *conn) clientLeg(legs *s6.Legs) {
	if sc, ok := rawSocket(cn.c); ok {
		gateway.ApplyConnIPOptions(sc, cn.client.Addr().Is6(), &legs.Client)
	}
	legs.Client.UnsupportPending()
}

// rawSocket finds the socket under the client connection (under TLS and the
// gateway's first-byte wrapper).
func rawSocket(c net.Conn) (syscall.Conn, bool) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	c = gateway.UnwrapConn(c)
	if u, ok := c.(interface{ Unwrap() (net.Conn, bool) }); ok {
		c, _ = u.Unwrap()
	}
	sc, ok := c.(syscall.Conn)
	return sc, ok
}

// isDNSRequest reports a CONNECT to 0.0.0.0:53 or [::]:53: "DNS provided by
// SOCKS" (§3.1).
func isDNSRequest(a gateway.Addr) bool {
	return !a.IsName() && a.IP.IsValid() && a.IP.IsUnspecified() && a.Port == 53
}

func (cn *conn) connect(ctx context.Context) {
	f := cn.f
	dest := cn.req.Addr
	if isDNSRequest(dest) {
		cn.serveDNS(ctx)
		return
	}
	legs := s6.SplitStack(&cn.req, f.dialect)
	cn.clientLeg(&legs)
	// Without an MPTCP option a CONNECT must not use MPTCP (§5.3).
	req := &gateway.StreamRequest{Dest: dest, Options: legs.Remote, InitialData: cn.initial, Principal: cn.p}
	st, route, err := f.rt.Connect(ctx, req)
	if err != nil {
		cn.opReply(s6.ReplyCodeForError(err), gateway.Addr{}, nil)
		cn.log(gateway.CmdConnect, route, gateway.RelayStats{}, err)
		return
	}
	legs.Remote = st.Options
	if err := cn.opReply(s6.ReplySuccess, st.Bound, legs.Echo(f.dialect)); err != nil {
		st.Conn.Close()
		cn.log(gateway.CmdConnect, route, gateway.RelayStats{}, err)
		return
	}
	cn.c.SetDeadline(time.Time{})
	// False-start data the client sent after the Request is still in the
	// socket: the relay carries it after the initial data.
	f.rt.RelayStreamThen(ctx, &cn.p, &f.limits, cn.c, st.Conn, func(stats gateway.RelayStats, err error) {
		stats.Up += int64(len(cn.initial))
		cn.log(gateway.CmdConnect, route, stats, err)
	})
}
