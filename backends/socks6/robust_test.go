package socks6

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// fakeProxy is a raw TCP server that answers each connection with a
// script: it reads the Request (and initial data), writes first; for an
// in-band exchange it then reads the RFC 1929 request and writes second;
// then it closes or, with hang, stays silent until the client gives up.
type fakeProxy struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	step fakeStep
	reqs []s6.Request
}

type fakeStep struct {
	first, second []byte
	inBand        bool
	hang          bool
}

func newFakeProxy(t *testing.T) *fakeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			st := p.step
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c, st)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *fakeProxy) set(st fakeStep) {
	p.mu.Lock()
	p.step = st
	p.mu.Unlock()
}

func (p *fakeProxy) serve(c net.Conn, st fakeStep) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := s6.ReadRequest(c, nil, s6.Draft11)
	if err != nil {
		return
	}
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	p.mu.Unlock()
	if n := req.InitialDataLen(); n > 0 {
		io.ReadFull(c, make([]byte, n))
	}
	c.Write(st.first)
	if st.inBand {
		if _, err := s6.ReadUserPassRequest(c); err != nil {
			return
		}
		c.Write(st.second)
	}
	if st.hang {
		io.Copy(io.Discard, c) // until the client closes
	}
}

// requests returns the Requests received so far and forgets them.
func (p *fakeProxy) requests() []s6.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func authRep(t testing.TB, r s6.AuthReply) []byte {
	b, err := s6.AppendAuthReply(nil, &r, s6.Draft11)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func opRep(t testing.TB, r s6.OpReply) []byte {
	b, err := s6.AppendOpReply(nil, &r, s6.Draft11)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func method(m s6.Method) *s6.Method { return &m }

// TestMalformedReplies feeds the client truncated, malformed and
// out-of-protocol replies from a raw TCP peer: every one must end in a
// clean error (or, where the codec tolerates it, success) within the
// deadline, never a panic or a hang.
func TestMalformedReplies(t *testing.T) {
	p := newFakeProxy(t)
	authOK := authRep(t, s6.AuthReply{Type: s6.AuthSuccess})
	opOK := opRep(t, s6.OpReply{Code: s6.ReplySuccess, Bind: ipAddr("127.0.0.1", 4000)})
	opHdr := func(code byte, atyp byte) []byte { return []byte{6, code, 0, 0, 0x0f, 0xa0, 0, atyp} }
	tests := []struct {
		name   string
		step   fakeStep
		creds  bool
		mode   AuthMode
		want   error // a sentinel the error must wrap; nil: any
		reason gateway.Reason
		ok     bool // the client must succeed
	}{
		{name: "closed at once", reason: gateway.ReasonGeneral},
		{name: "version mismatch", step: fakeStep{first: []byte{6}}, want: ErrVersionMismatch, reason: gateway.ReasonGeneral},
		{name: "socks 5 server", step: fakeStep{first: []byte{5, 0xff}}, want: ErrNotSOCKS6, reason: gateway.ReasonGeneral},
		{name: "private version 0xd4", step: fakeStep{first: []byte{0xd4, 0, 0, 0}}, want: s6.ErrVersion, reason: gateway.ReasonGeneral},
		{name: "truncated auth reply", step: fakeStep{first: []byte{6, 0, 0}}, want: s6.ErrShort, reason: gateway.ReasonGeneral},
		{name: "auth options length not x4", step: fakeStep{first: []byte{6, 0, 0, 3, 0, 0, 0}}, want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "auth options length above the cap", step: fakeStep{first: []byte{6, 0, 0x40, 0x04}}, want: s6.ErrBadLength, reason: gateway.ReasonGeneral},
		{name: "auth options announced then silence", step: fakeStep{first: []byte{6, 0, 0, 8, 0, 5}, hang: true}, reason: gateway.ReasonTimeout},
		{name: "silence", step: fakeStep{hang: true}, reason: gateway.ReasonTimeout},
		{name: "unknown auth reply type", step: fakeStep{first: []byte{6, 7, 0, 0}}, want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "unoffered method selected", creds: true,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodGSSAPI)}})},
			want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "failure without a reason", creds: true, step: fakeStep{first: []byte{6, 1, 0, 0}}, want: ErrAuthFailed, reason: gateway.ReasonAuthFailed},
		{name: "rfc 1929 failure in a 0-rtt reply", creds: true,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{AuthData: []s6.AuthData{s6.UserPassReplyData(1)}}})},
			want: ErrBadCredentials, reason: gateway.ReasonAuthFailed},
		{name: "op reply truncated", step: fakeStep{first: cat(authOK, []byte{6, 0, 0, 0, 0, 80})}, want: s6.ErrShort, reason: gateway.ReasonGeneral},
		{name: "op reply address type 2", step: fakeStep{first: cat(authOK, opHdr(0, 2), []byte{1, 2, 3, 4})}, want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "op reply domain style C", step: fakeStep{first: cat(authOK, opHdr(0, 3), []byte{8, 'a', '.', 'i', 'o', 0, 0, 0})}, want: s6.ErrDomainStyle, reason: gateway.ReasonGeneral},
		{name: "op reply empty name", step: fakeStep{first: cat(authOK, opHdr(0, 3), []byte{0, 0, 0, 0})}, want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "op reply unknown code", step: fakeStep{first: cat(authOK, opHdr(0x42, 1), []byte{0, 0, 0, 0})}, reason: gateway.ReasonGeneral},
		{name: "op reply options cut short then silence", step: fakeStep{first: cat(authOK, []byte{6, 0, 0, 16, 0, 80, 0, 1, 127, 0, 0, 1, 0, 1}), hang: true}, reason: gateway.ReasonTimeout},
		{name: "op reply malformed option tolerated", step: fakeStep{first: cat(authOK, []byte{6, 0, 0, 8, 0, 80, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2, 0, 0, 0, 0})}, ok: true},
		{name: "in-band: garbage after the selection", creds: true, mode: AuthInBand,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}),
				inBand: true, second: []byte{9, 9, 9, 9}},
			want: s6.ErrVersion, reason: gateway.ReasonGeneral},
		{name: "in-band: second reply selects again", creds: true, mode: AuthInBand,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}),
				inBand: true, second: cat([]byte{1, 0}, authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}))},
			want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "in-band: status failure with a successful reply", creds: true, mode: AuthInBand,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}),
				inBand: true, second: cat([]byte{1, 1}, authOK)},
			want: ErrProtocol, reason: gateway.ReasonGeneral},
		{name: "in-band: closed after the selection", creds: true, mode: AuthInBand,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}), inBand: true},
			want: s6.ErrShort, reason: gateway.ReasonGeneral},
		{name: "in-band: good", creds: true, mode: AuthInBand,
			step: fakeStep{first: authRep(t, s6.AuthReply{Type: s6.AuthFailure, Options: s6.Options{Selection: method(s6.MethodUserPass)}}),
				inBand: true, second: cat([]byte{1, 0}, authOK, opOK)},
			ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.set(tt.step)
			cfg := ClientConfig{Server: p.ln.Addr().String(), Auth: tt.mode}
			if tt.creds {
				cfg.Username, cfg.Password = "u", "p"
			}
			c := mustClient(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			conn, err := c.Connect(ctx, ipAddr("127.0.0.1", 80), &ConnectOptions{InitialData: []byte("hi")})
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if tt.ok {
				if err != nil {
					t.Fatalf("Connect: %v", err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatal("Connect succeeded")
			}
			t.Logf("%v", err)
			wantReason(t, err, tt.reason)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v does not wrap %v", err, tt.want)
			}
		})
	}
}

// TestGarbageReplies sends random bytes, and valid replies with random
// bytes changed, to many Connects and BINDs: each must end cleanly within
// its deadline.
func TestGarbageReplies(t *testing.T) {
	p := newFakeProxy(t)
	r := rand.New(rand.NewPCG(6, 11))
	authOK := authRep(t, s6.AuthReply{Type: s6.AuthSuccess, Options: s6.Options{SessionID: []byte{1, 2, 3, 4, 5, 6, 7, 8},
		Window: &s6.Window{Base: 7, Size: 16}, SessionOK: true}})
	opOK := opRep(t, s6.OpReply{Code: s6.ReplySuccess, Bind: gateway.Addr{Name: "bound.example", Port: 9},
		Options: s6.Options{Stack: []s6.StackOption{{Leg: s6.LegRemote, Kind: s6.StackTTL, Value: 4}}}})
	valid := cat(authOK, opOK, opOK)
	for i := range 300 {
		var msg []byte
		switch i % 3 {
		case 0: // random bytes, starting like SOCKS 6 half of the time
			msg = make([]byte, r.IntN(64))
			for j := range msg {
				msg[j] = byte(r.Uint32())
			}
			if len(msg) > 0 && r.IntN(2) == 0 {
				msg[0] = 6
			}
		case 1: // a valid sequence with bytes changed
			msg = append([]byte(nil), valid...)
			for range 1 + r.IntN(4) {
				msg[r.IntN(len(msg))] = byte(r.Uint32())
			}
		case 2: // a valid sequence cut short
			msg = valid[:r.IntN(len(valid))]
		}
		p.set(fakeStep{first: msg})
		c := mustClient(t, ClientConfig{Server: p.ln.Addr().String(), Session: r.IntN(2) == 0, WindowSize: 4})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		if i%2 == 0 {
			conn, err := c.Connect(ctx, ipAddr("127.0.0.1", 80), nil)
			if err == nil {
				conn.Close()
			}
		} else if b, err := c.Bind(ctx, gateway.Addr{}, nil); err == nil {
			if conn, err := b.Accept(ctx); err == nil {
				conn.Close()
			}
			b.Close()
		}
		cancel()
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("input %x: took %v", msg, d)
		}
	}
}

// TestSessionIDPlacement covers proxies that differ on where the Session
// ID goes (§7.1): the client accepts it from the Operation Reply too, and
// a proxy that opens no session is used without one.
func TestSessionIDPlacement(t *testing.T) {
	p := newFakeProxy(t)
	id := []byte{9, 8, 7, 6, 5, 4, 3, 2}
	win := &s6.Window{Base: 100, Size: 4}
	authOK := authRep(t, s6.AuthReply{Type: s6.AuthSuccess})
	okWin := authRep(t, s6.AuthReply{Type: s6.AuthSuccess, Options: s6.Options{SessionOK: true, Window: win}})
	opPlain := opRep(t, s6.OpReply{Code: s6.ReplySuccess, Bind: ipAddr("127.0.0.1", 1)})
	opWithID := opRep(t, s6.OpReply{Code: s6.ReplySuccess, Bind: ipAddr("127.0.0.1", 1), Options: s6.Options{SessionID: id}})
	dest := ipAddr("127.0.0.1", 80)

	t.Run("operation reply", func(t *testing.T) {
		c := mustClient(t, ClientConfig{Server: p.ln.Addr().String(), Username: "u", Password: "p", Session: true, WindowSize: 4})
		p.set(fakeStep{first: cat(authOK, opWithID)})
		conn, err := c.Connect(testCtx(t, 5*time.Second), dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if got := c.SessionID(); string(got) != string(id) {
			t.Fatalf("session %x, want %x from the Operation Reply", got, id)
		}
		p.set(fakeStep{first: cat(okWin, opPlain)})
		for range 2 {
			conn, err := c.Connect(testCtx(t, 5*time.Second), dest, nil)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
		reqs := p.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests", len(reqs))
		}
		first := reqs[0].Options
		if !first.SessionRequest || first.WindowRequest == nil || *first.WindowRequest != 4 || first.AuthData == nil {
			t.Errorf("opening request options %+v", first)
		}
		for i, r := range reqs[1:] {
			o := r.Options
			if string(o.SessionID) != string(id) || o.AuthData != nil || o.SessionRequest {
				t.Errorf("request %d: %+v, want the Session ID and no credentials", i+1, o)
			}
			if i == 1 && (o.Expenditure == nil || *o.Expenditure != win.Base) {
				t.Errorf("request %d spent %v, want token %d from the window", i+1, o.Expenditure, win.Base)
			}
		}
	})
	t.Run("no session", func(t *testing.T) {
		c := mustClient(t, ClientConfig{Server: p.ln.Addr().String(), Username: "u", Password: "p", Session: true})
		p.set(fakeStep{first: cat(authOK, opPlain)})
		for range 2 {
			conn, err := c.Connect(testCtx(t, 5*time.Second), dest, nil)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		}
		reqs := p.requests()
		if len(reqs) != 2 || !reqs[0].Options.SessionRequest || reqs[1].Options.SessionRequest || reqs[1].Options.AuthData == nil {
			t.Fatalf("requests %+v: want one Session Request, then credentials only", reqs)
		}
		if c.SessionID() != nil || c.Stats().SessionsOpened != 0 {
			t.Errorf("session %x", c.SessionID())
		}
	})
}

// TestOpenerFailureDoesNotSerialize: Requests that wait for another one to
// open the session wait for that one attempt only. When it fails (here the
// proxy never answers) they go on in parallel without a session, rather
// than each opening a session in turn behind the previous timeout.
func TestOpenerFailureDoesNotSerialize(t *testing.T) {
	p := newFakeProxy(t)
	p.set(fakeStep{hang: true})
	c := mustClient(t, ClientConfig{Server: p.ln.Addr().String(), Username: "u", Password: "p", Session: true,
		HandshakeTimeout: 300 * time.Millisecond})
	const n = 6
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Connect(testCtx(t, 10*time.Second), ipAddr("127.0.0.1", 80), nil)
			if gateway.ReasonOf(err) != gateway.ReasonTimeout {
				t.Errorf("Connect: %v, want a timeout", err)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("%d Connects took %v: waiters queued behind failing openers", n, d)
	}
	opens := 0
	for _, r := range p.requests() {
		if r.Options.SessionRequest {
			opens++
		}
	}
	if opens != 1 {
		t.Errorf("%d Requests asked for a session, want 1", opens)
	}
}
