package socks6

import (
	"errors"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// authenticate runs the authentication phase of §7.3 and returns the
// successful Authentication Reply to send (not yet written), or ok = false
// after answering a failure (the caller then closes).
//
// Order: a Session ID (valid -> session-bound, no authentication; unknown ->
// Session Invalid; with Teardown -> dropped, the Request goes on as
// sessionless), 0-RTT username/password, no authentication when the frontend
// has no users, in-band username/password when advertised, else "no
// acceptable method". Then a Session Request creates a session, an
// Idempotence Request gives it a window, and an Expenditure spends a token
// (marked spent before the command runs).
func (cn *conn) authenticate() (*s6.AuthReply, bool) {
	f := cn.f
	o := &cn.req.Options
	rep := &s6.AuthReply{Type: s6.AuthSuccess}
	now := f.rt.Clock.Now()
	if o.SessionID != nil {
		sess := f.sessions.lookup(o.SessionID, now, f.limits.SessionIdleTimeout, f.userExists)
		if sess == nil {
			f.rt.AuthResult(f.name, "session_invalid")
			cn.writeAuth(&s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{SessionInvalid: true}})
			cn.log(cn.command(), nil, gateway.RelayStats{}, gateway.NewError(gateway.ReasonAuthFailed, "socks6", errors.New("unknown session")))
			return nil, false
		}
		if o.SessionTeardown {
			f.sessions.remove(sess)
		} else {
			cn.sess = sess
			cn.p.User = sess.user
			cn.p.Session = sess.idHex
			rep.Options.SessionOK = true
			f.rt.AuthResult(f.name, "session")
		}
	}
	if cn.sess == nil {
		user, authData, ok := cn.authenticateCredentials()
		if !ok {
			return nil, false
		}
		cn.p.User = user
		if authData != nil {
			rep.Options.AuthData = append(rep.Options.AuthData, *authData)
		}
		// A session can only start outside another one.
		if o.SessionRequest && o.SessionID == nil {
			if sess := f.sessions.create(user, now); sess != nil {
				cn.sess = sess
				cn.p.Session = sess.idHex
				rep.Options.SessionID = sess.id
			}
		}
	}
	if cn.sess == nil {
		return rep, true
	}
	sess := cn.sess
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if o.WindowRequest != nil && sess.window == nil {
		size := min(*o.WindowRequest, f.window, s6.MaxTokenWindow)
		// The high watermark at the window's end: tokens spent out of order
		// by concurrent requests never forfeit unspent ones.
		if w, err := s6.NewTokenWindow(randomU32(), size, 0, size); err == nil {
			sess.window = w
		}
	}
	if o.Expenditure != nil {
		if sess.window == nil || !sess.window.Spend(*o.Expenditure) {
			f.rt.AuthResult(f.name, "token_rejected")
			r := &s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{IdempotenceRejected: true}}
			if sess.window != nil {
				w := sess.window.Window()
				r.Options.Window = &w
			}
			cn.writeAuth(r)
			cn.log(cn.command(), nil, gateway.RelayStats{}, gateway.NewError(gateway.ReasonAuthFailed, "socks6", errors.New("token rejected")))
			return nil, false
		}
		rep.Options.IdempotenceAccepted = true
	}
	if sess.window != nil {
		w := sess.window.Window()
		rep.Options.Window = &w
	}
	return rep, true
}

func (f *Frontend) userExists(user string) bool {
	if f.users == nil {
		return user == ""
	}
	_, ok := f.users.Lookup(user)
	return ok
}

// authenticateCredentials authenticates a Request that is not bound to a
// session. It returns the user ("" for anonymous) and, for username/password,
// the Authentication Data the final reply carries.
func (cn *conn) authenticateCredentials() (string, *s6.AuthData, bool) {
	f := cn.f
	o := &cn.req.Options
	up, has0RTT, err := o.UserPass()
	if err != nil {
		has0RTT = false
	}
	if f.users == nil {
		// No authentication required: authentication material is ignored
		// and no Selection is sent (§4.3).
		return "", nil, true
	}
	if has0RTT {
		return cn.checkPassword(up, false)
	}
	if o.Advertisement != nil && o.Advertisement.Has(s6.MethodUserPass) {
		// In-band: Type 1 with Selection 2, the RFC 1929 exchange as raw
		// bytes, then the final reply.
		sel := s6.MethodUserPass
		if err := cn.writeAuth(&s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: &sel}}); err != nil {
			return "", nil, false
		}
		req, err := s6.ReadUserPassRequest(cn.c)
		if err != nil {
			cn.handshakeError("auth", err)
			return "", nil, false
		}
		return cn.checkPassword(req, true)
	}
	none := s6.MethodNoAcceptable
	f.rt.AuthResult(f.name, "no_acceptable_method")
	f.rt.HandshakeFailed(f.name, "no_acceptable_method")
	cn.writeAuth(&s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: &none}})
	cn.log(cn.command(), nil, gateway.RelayStats{}, gateway.NewError(gateway.ReasonAuthFailed, "socks6", errors.New("no acceptable method")))
	return "", nil, false
}

// checkPassword verifies RFC 1929 credentials. In-band, the RFC 1929 reply is
// written raw first; either way the final Authentication Reply carries it as
// Authentication Data. A failure is answered and ok is false.
func (cn *conn) checkPassword(up s6.UserPassRequest, inBand bool) (string, *s6.AuthData, bool) {
	f := cn.f
	ip := cn.client.Addr()
	status := byte(s6.UserPassSuccess)
	result := "success"
	switch {
	case !f.rt.Tracker.AuthAllowed(&f.limits, ip):
		status, result = s6.UserPassFailure, "rate_limited"
		f.rt.LimitHit(f.name, &gateway.LimitError{Limit: "auth_failures_per_ip"})
	case !f.users.Verify(up.Username, up.Password):
		status, result = s6.UserPassFailure, "failure"
		f.rt.Tracker.AuthFailed(&f.limits, ip)
	}
	f.rt.AuthResult(f.name, result)
	ad := s6.UserPassReplyData(status)
	if inBand {
		if _, err := cn.c.Write(s6.AppendUserPassReply(nil, s6.UserPassReply{Status: status})); err != nil {
			return "", nil, false
		}
	}
	if status != s6.UserPassSuccess {
		f.log.Info("authentication failed", "client", ip, "user", up.Username, "result", result)
		cn.writeAuth(&s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{AuthData: []s6.AuthData{ad}}})
		cn.p.User = up.Username
		cn.log(cn.command(), nil, gateway.RelayStats{}, gateway.NewError(gateway.ReasonAuthFailed, "socks6", errors.New(result)))
		return "", nil, false
	}
	return up.Username, &ad, true
}
