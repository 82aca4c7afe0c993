package turn

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/pion/stun"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// handleSTUN handles one decoded STUN message from a client (turn.md §4.2).
func (f *Frontend) handleSTUN(ctx context.Context, m *stun.Message, src *source) {
	switch tt.Dispatch(m.Type) {
	case tt.ActionDrop:
		f.c.drop(f.c.notTURN)
	case tt.ActionBadRequest:
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: not a request method")}, f.opts(m, nil))
	case tt.ActionBinding:
		if resp, err := tt.NewBindingSuccess(m, src.tuple.client, f.opts(m, nil)); err == nil {
			src.reply(resp.Raw)
		}
	case tt.ActionSend:
		f.fromClientSend(m, src)
	case tt.ActionRequest:
		f.request(ctx, m, src)
	}
}

// opts are the response options for a request: SOFTWARE, the key that
// authenticated it (nil before authentication), FINGERPRINT when it had one.
func (f *Frontend) opts(m *stun.Message, key []byte) tt.ResponseOptions {
	return tt.ResponseOptions{Software: f.s.software, Key: key, Fingerprint: tt.HasFingerprint(m)}
}

// replyErr answers a request with the error response for err.
func (f *Frontend) replyErr(src *source, m *stun.Message, err error, o tt.ResponseOptions) []byte {
	resp, berr := tt.NewErrorFor(m, err, o)
	if berr != nil {
		resp, berr = tt.NewError(m, stun.CodeServerError, o)
		if berr != nil {
			return nil
		}
	}
	src.reply(resp.Raw)
	return resp.Raw
}

// request authenticates a TURN request and dispatches it (turn.md §3.6 and
// §4.2).
func (f *Frontend) request(ctx context.Context, m *stun.Message, src *source) {
	// Step 0: a retransmission gets the response its first copy got, before
	// any nonce check.
	if a := f.st.get(src.tuple); a != nil {
		if resp := a.cached(m); resp != nil {
			src.reply(resp)
			return
		}
	} else if tb := f.st.tombFor(src.tuple); tb != nil {
		if resp := tb.cache.get(m, f.clock.Now()); resp != nil {
			src.reply(resp)
			return
		}
	}
	if m.Type == tt.TypeAllocateRequest {
		if tid, ok := f.st.pendingTID(src.tuple); ok && tid == m.TransactionID {
			return // the first copy is being served
		}
	}
	// A ConnectionBind arrives on a new connection, but clients sign it
	// with the nonce of the allocation's control connection (coturn
	// accepts that; turn.md §6): the nonce may be the one issued to that
	// 5-tuple as well.
	var alt *fiveTuple
	if m.Type == tt.TypeConnectionBindRequest {
		if id, err := tt.ParseConnectionBind(m); err == nil {
			if c := f.st.conn(id); c != nil {
				alt = &c.a.tuple
			}
		}
	}
	user, key, ok := f.authenticate(m, src, alt)
	if !ok {
		return
	}
	o := f.opts(m, key)
	if unknown := tt.UnknownRequired(m, nil); len(unknown) > 0 {
		if resp, err := tt.NewUnknownAttributes(m, unknown, o); err == nil {
			src.reply(resp.Raw)
		}
		return
	}
	if m.Type == tt.TypeAllocateRequest {
		f.allocate(ctx, m, src, user, key, o)
		return
	}
	if m.Type == tt.TypeConnectionBindRequest {
		// It comes on a connection without an allocation (RFC 6062 §5.4).
		f.connectionBind(m, src, user, o)
		return
	}
	a := f.st.get(src.tuple)
	if a == nil {
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeAllocMismatch, Err: errors.New("turn: no allocation")}, o)
		return
	}
	if a.user != user {
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeWrongCredentials, Err: errors.New("turn: allocation belongs to another user")}, o)
		return
	}
	if m.Type == tt.TypeConnectRequest {
		f.connect(ctx, a, m, src, o)
		return
	}
	var resp []byte
	var err error
	deleted := false
	switch m.Type {
	case tt.TypeRefreshRequest:
		resp, deleted, err = f.refresh(a, m, o)
	case tt.TypeCreatePermissionRequest:
		resp, err = f.createPermission(a, m, o)
	case tt.TypeChannelBindRequest:
		resp, err = f.channelBind(a, m, o)
	default:
		err = &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: not a request method")}
	}
	if err != nil {
		resp = f.replyErr(src, m, err, o)
	} else {
		src.reply(resp)
	}
	if resp != nil {
		a.remember(m, resp)
	}
	if deleted {
		a.close(nil)
	}
}

// authenticate runs steps 1 to 5 of turn.md §3.6 and answers every failure
// itself. It returns the USERNAME and the key that verified the request.
// A nonce issued to alt, when not nil, is accepted too.
func (f *Frontend) authenticate(m *stun.Message, src *source, alt *fiveTuple) (string, []byte, bool) {
	now := f.clock.Now()
	challenge := func(code stun.ErrorCode) {
		nonce := f.st.nonce(src.tuple, now.Add(f.s.nonceLife))
		o := f.opts(m, nil)
		var resp *stun.Message
		var err error
		if code == stun.CodeStaleNonce {
			resp, err = tt.NewStaleNonce(m, f.s.realm, nonce, o)
		} else {
			resp, err = tt.NewUnauthorized(m, f.s.realm, nonce, o)
		}
		if err == nil {
			src.reply(resp.Raw)
		}
	}
	creds, err := tt.ParseCredentials(m)
	if err != nil {
		if tt.CodeOf(err) == stun.CodeUnauthorized {
			challenge(stun.CodeUnauthorized)
		} else {
			f.replyErr(src, m, err, f.opts(m, nil))
		}
		return "", nil, false
	}
	if !f.st.checkNonce(creds.Nonce, src.tuple, now) && (alt == nil || !f.st.checkNonce(creds.Nonce, *alt, now)) {
		challenge(stun.CodeStaleNonce)
		return "", nil, false
	}
	ip := src.tuple.client.Addr()
	tr := f.rt.Tracker
	if tr != nil && !tr.AuthAllowed(&f.limits, ip) {
		f.rt.AuthResult(f.name, "rate_limited")
		f.rt.LimitHit(f.name, &gateway.LimitError{Limit: "auth_failures_per_ip"})
		challenge(stun.CodeUnauthorized)
		return "", nil, false
	}
	if key, ok := f.verify(m, creds, now); ok {
		return creds.Username, key, true
	}
	if tr != nil {
		tr.AuthFailed(&f.limits, ip)
	}
	f.rt.AuthResult(f.name, "failure")
	f.log.Info("authentication failed", "client", src.tuple.client, "user", creds.Username)
	challenge(stun.CodeUnauthorized)
	return "", nil, false
}

// dummyKey is verified against for unknown users, so a failure costs the
// same whether the name exists or not.
var dummyKey = tt.LongTermKey("-", "-", "-")

// verify checks MESSAGE-INTEGRITY with the configured user's key, then with
// the TURN REST secrets.
func (f *Frontend) verify(m *stun.Message, c tt.Credentials, now time.Time) ([]byte, bool) {
	if c.Realm != f.s.realm {
		return nil, false
	}
	key, known := f.users.TURNKey(c.Username, f.s.realm)
	if !known {
		key = dummyKey
	}
	if err := tt.VerifyIntegrity(m, key); err == nil && known {
		return key, true
	}
	if len(f.s.secrets) == 0 {
		return nil, false
	}
	key, err := tt.AuthenticateREST(m, c.Username, f.s.realm, f.s.secrets, now)
	return key, err == nil
}

// allocate serves an authenticated Allocate (turn.md §4.3): the static checks
// here, the association in its own goroutine so the listener never waits on a
// backend.
func (f *Frontend) allocate(ctx context.Context, m *stun.Message, src *source, user string, key []byte, o tt.ResponseOptions) {
	if f.st.get(src.tuple) != nil {
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeAllocMismatch, Err: errors.New("turn: 5-tuple already allocated")}, o)
		return
	}
	req, err := tt.ParseAllocate(m, tt.AllocateEnv{TCPRelays: f.s.tcpRelays, StreamClient: src.sc != nil})
	if err != nil {
		f.replyErr(src, m, err, o)
		return
	}
	if _, draining := f.rt.Lifecycle.DrainDeadline(); draining {
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: errors.New("turn: draining")}, o)
		return
	}
	if !f.st.startPending(src.tuple, m.TransactionID) {
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeAllocMismatch, Err: errors.New("turn: allocate in progress on the 5-tuple")}, o)
		return
	}
	select {
	case f.sem <- struct{}{}:
	default:
		f.st.install(src.tuple, nil)
		f.replyErr(src, m, &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: errors.New("turn: too many allocations in progress")}, o)
		return
	}
	raw := append([]byte(nil), m.Raw...)
	job := &allocJob{f: f, raw: raw, req: req, tuple: src.tuple, sink: src.sink(), user: user, key: key, o: o,
		ctx: context.WithoutCancel(ctx)}
	if src.sc != nil {
		job.streamDone = src.sc.done
	}
	go job.run()
}

// allocJob is one Allocate being served.
type allocJob struct {
	f          *Frontend
	ctx        context.Context
	raw        []byte
	req        tt.AllocateRequest
	tuple      fiveTuple
	sink       sink
	user       string
	key        []byte
	o          tt.ResponseOptions
	streamDone chan struct{}
}

func (j *allocJob) run() {
	f := j.f
	defer func() { <-f.sem }()
	installed := false
	defer func() {
		if !installed {
			f.st.install(j.tuple, nil)
		}
	}()
	m := new(stun.Message)
	m.Raw = j.raw
	if err := m.Decode(); err != nil {
		return
	}
	reply := func(err error) {
		resp, berr := tt.NewErrorFor(m, err, j.o)
		if berr != nil {
			return
		}
		j.sink.send(resp.Raw, true)
	}
	timeout := f.limits.HandshakeTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(j.ctx, timeout)
	defer cancel()
	hold := f.rt.Hold()
	a := &allocation{
		f: f, rt: f.rt, tuple: j.tuple, sink: j.sink, user: j.user, key: j.key, start: time.Now(), hold: hold,
		perms: map[netip.Addr]int64{}, byNum: map[uint16]*binding{}, byPeer: map[netip.AddrPort]*binding{},
		done: make(chan struct{}), allocTID: m.TransactionID, allocReq: j.raw,
	}
	fams := j.req.Families()
	var result tt.AllocateResult
	var firstErr error
	var actx context.Context
	if j.req.Transport == tt.ProtoTCP {
		fams = nil
		actx, firstErr = j.openTCP(ctx, a, &result)
	}
	for _, fam := range fams {
		ar := j.req.AssocRequest(fam)
		ar.Principal = gateway.Principal{User: j.user, Frontend: f.name, Protocol: Protocol, Client: j.tuple.client}
		assoc, route, err := f.rt.Associate(ctx, gateway.CmdTURNAllocate, &ar)
		var g tt.Grant
		if err == nil {
			if g, err = j.req.CheckAssociation(fam, assoc); err != nil {
				assoc.Close()
			}
		}
		if err != nil {
			var ce *tt.CodeError
			if !errors.As(err, &ce) {
				err = tt.CodeErrorFor(stun.MethodAllocate, err)
			}
			f.log.Debug("allocate failed", "client", j.tuple.client, "user", j.user, "family", fam.String(), "error", err)
			if firstErr == nil {
				firstErr = err
			}
			if len(fams) > 1 {
				ae := tt.AddressErrorFor(fam, err)
				result.AddressError = &ae
			}
			continue
		}
		if a.route == nil {
			a.route = route
		}
		a.relays = append(a.relays, &relay{family: fam, addr: g.Relay, assoc: assoc, bw: gateway.BatchWriterOf(assoc)})
		result.Relayed = append(result.Relayed, g.Relay)
		if g.ReservationToken != nil && result.ReservationToken == nil {
			result.ReservationToken = g.ReservationToken
		}
		a.df = a.df || g.DontFragment
	}
	fail := func(err error) {
		for _, r := range a.relays {
			r.assoc.Close()
		}
		if a.tcp != nil {
			a.tcp.closeAll()
		}
		hold()
		// Free the 5-tuple before answering, so the client's next
		// Allocate does not find this one pending.
		f.st.install(j.tuple, nil)
		installed = true
		reply(err)
		f.rt.AccessLog(gateway.AccessRecord{Frontend: f.name, Protocol: Protocol, Command: gateway.CmdTURNAllocate,
			User: j.user, Client: j.tuple.tr.String() + ":" + j.tuple.client.String(), Route: a.route, Start: a.start, Err: err})
	}
	if len(a.relays) == 0 && a.tcp == nil {
		if len(fams) > 1 {
			firstErr = &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: firstErr}
		}
		fail(firstErr)
		return
	}
	life := f.grant(j.req.Lifetime, j.req.HasLifetime, false)
	result.Lifetime = lifetimeAttr(life)
	result.Mapped = j.tuple.client
	resp, err := tt.NewAllocateSuccess(m, result, j.o)
	if err != nil {
		fail(&tt.CodeError{Code: stun.CodeServerError, Err: err})
		return
	}
	a.allocResp = resp.Raw
	a.expires.Store(f.clock.Now().Add(life).UnixNano())
	if j.streamDone != nil {
		select {
		case <-j.streamDone:
			fail(errors.New("turn: client connection closed"))
			return
		default:
		}
	}
	// A user removed by a reload loses the allocation.
	wctx, unwatch := f.rt.Tracker.Watch(context.Background(), j.user)
	a.unwatch = unwatch
	f.st.install(j.tuple, a)
	installed = true
	context.AfterFunc(wctx, func() {
		if errors.Is(context.Cause(wctx), gateway.ErrRevoked) {
			a.close(gateway.ErrRevoked)
		}
	})
	for _, r := range a.relays {
		a.wg.Add(1)
		a.readLoop(r)
	}
	if a.tcp != nil {
		a.wg.Add(1)
		go a.acceptLoop(actx, a.tcp)
	}
	f.log.Debug("allocation created", "client", j.tuple.client, "transport", j.tuple.tr.String(), "user", j.user,
		"relays", result.Relayed, "lifetime", life)
	f.rt.AuthResult(f.name, "success")
	j.sink.send(resp.Raw, true)
	if j.streamDone != nil {
		// The connection may have closed between the check and install.
		select {
		case <-j.streamDone:
			a.close(nil)
		default:
		}
	}
}

// grant returns the lifetime to grant (turn.md §4.3 and §4.5), with the
// frontend's default as the floor and its maximum as the ceiling: no LIFETIME
// gives the default; 0 deletes on Refresh and gives the default on Allocate.
// While the gateway drains, nothing is granted past the end of the grace
// period.
func (f *Frontend) grant(l tt.Lifetime, present, refresh bool) time.Duration {
	d := f.s.defLife
	switch {
	case present && l == 0 && refresh:
		return 0
	case present && l != 0:
		d = max(min(l.Duration(), f.s.maxLife), f.s.defLife)
	}
	if end, draining := f.rt.Lifecycle.DrainDeadline(); draining {
		left := end.Sub(f.clock.Now()).Truncate(time.Second)
		if left <= 0 {
			return 0
		}
		d = min(d, left)
	}
	return d
}

// refresh serves Refresh (turn.md §4.5).
func (f *Frontend) refresh(a *allocation, m *stun.Message, o tt.ResponseOptions) ([]byte, bool, error) {
	req, err := tt.ParseRefresh(m)
	if err != nil {
		return nil, false, err
	}
	var only *relay
	if req.Family != 0 && a.tcp != nil && req.Family != a.tcp.family {
		return nil, false, &tt.CodeError{Code: stun.CodePeerAddrFamilyMismatch, Err: errors.New("turn: no relay of that family")}
	}
	if req.Family != 0 && a.tcp == nil {
		a.mu.RLock()
		for _, r := range a.relays {
			if r.family == req.Family && !r.closed.Load() {
				only = r
			}
		}
		a.mu.RUnlock()
		if only == nil {
			return nil, false, &tt.CodeError{Code: stun.CodePeerAddrFamilyMismatch, Err: errors.New("turn: no relay of that family")}
		}
	}
	life := f.grant(req.Lifetime, req.HasLifetime, true)
	resp, err := tt.NewRefreshSuccess(m, lifetimeAttr(life), o)
	if err != nil {
		return nil, false, err
	}
	if life == 0 {
		if only != nil && len(a.families()) > 1 {
			a.closeRelay(only)
			return resp.Raw, false, nil
		}
		return resp.Raw, true, nil
	}
	a.expires.Store(f.clock.Now().Add(life).UnixNano())
	return resp.Raw, false, nil
}

// createPermission serves CreatePermission (turn.md §4.7): every peer is
// checked (443, then 403) before any is installed.
func (f *Frontend) createPermission(a *allocation, m *stun.Message, o tt.ResponseOptions) ([]byte, error) {
	peers, err := tt.ParseCreatePermission(m)
	if err != nil {
		return nil, err
	}
	ips := make([]netip.Addr, 0, len(peers))
	for _, p := range peers {
		if err := a.checkPeer(p); err != nil {
			return nil, err
		}
		ips = append(ips, p.Addr())
	}
	until := f.clock.Now().Add(a.f.s.permLife).UnixNano()
	a.mu.Lock()
	err = a.permit(ips, until)
	a.mu.Unlock()
	if err != nil {
		return nil, err
	}
	resp, err := tt.NewSuccess(m, o)
	if err != nil {
		return nil, err
	}
	return resp.Raw, nil
}

// channelBind serves ChannelBind (turn.md §4.8).
func (f *Frontend) channelBind(a *allocation, m *stun.Message, o tt.ResponseOptions) ([]byte, error) {
	if a.tcp != nil {
		// Channels carry datagrams; coturn answers 403 too (turn.md §6).
		return nil, &tt.CodeError{Code: stun.CodeForbidden, Err: errors.New("turn: channelbind on a tcp allocation")}
	}
	req, err := tt.ParseChannelBind(m)
	if err != nil && f.s.legacyChannels {
		var n tt.ChannelNumber
		if n.GetFrom(m) == nil && isLegacyChannel(uint16(n)) {
			req, err = parseLegacyChannelBind(m)
		}
	}
	if err != nil {
		return nil, err
	}
	peer := netip.AddrPortFrom(req.Peer.Addr(), req.Peer.Port())
	if peer.Port() == 0 {
		return nil, &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: channel peer without port")}
	}
	key := netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	now := f.clock.Now()
	nowNs := now.UnixNano()
	a.mu.RLock()
	b := a.byNum[req.Channel]
	byPeer := a.byPeer[key]
	n := len(a.byNum)
	a.mu.RUnlock()
	if b != nil && b.expires > nowNs && b.peer != key {
		return nil, &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: channel bound to another peer")}
	}
	if byPeer != nil && byPeer.expires > nowNs && byPeer.number != req.Channel {
		return nil, &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: peer bound to another channel")}
	}
	if err := a.checkPeer(peer); err != nil {
		return nil, err
	}
	if b == nil && n >= maxChannels {
		return nil, &tt.CodeError{Code: stun.CodeInsufficientCapacity, Err: errors.New("turn: too many channels")}
	}
	a.mu.Lock()
	if err := a.permit([]netip.Addr{peer.Addr()}, now.Add(a.f.s.permLife).UnixNano()); err != nil {
		a.mu.Unlock()
		return nil, err
	}
	if old := a.byNum[req.Channel]; old != nil && old.peer != key {
		delete(a.byPeer, old.peer)
	}
	if old := a.byPeer[key]; old != nil && old.number != req.Channel {
		delete(a.byNum, old.number)
	}
	nb := &binding{number: req.Channel, peer: key, expires: now.Add(a.f.s.channelLife).UnixNano()}
	a.byNum[req.Channel] = nb
	a.byPeer[key] = nb
	a.mu.Unlock()
	resp, err := tt.NewSuccess(m, o)
	if err != nil {
		return nil, err
	}
	return resp.Raw, nil
}

// datagramMeta returns the IP header wishes for a datagram relayed for src:
// RFC 8656 §14's preferred behaviour copies the client packet's TTL (minus
// one) and DSCP/ECN. ok is false when the TTL is used up.
func datagramMeta(src *source, meta gateway.DatagramMeta) (gateway.DatagramMeta, bool) {
	if src.ttl >= 0 {
		if src.ttl <= 1 {
			return meta, false
		}
		meta.TTL = uint8(src.ttl - 1)
	}
	if src.tos > 0 {
		meta.TOS, meta.HasTOS = uint8(src.tos), true
	}
	return meta, true
}

// fromClientSend relays a Send indication (turn.md §4.9); every problem
// drops it.
func (f *Frontend) fromClientSend(m *stun.Message, src *source) {
	c := f.c
	a := f.st.get(src.tuple)
	if a == nil {
		c.drop(c.noAlloc)
		return
	}
	if a.tcp != nil {
		c.drop(c.tcpRelay)
		return
	}
	s, err := tt.ParseSend(m)
	if err != nil {
		c.drop(c.malformed)
		return
	}
	peer := s.Peer
	now := f.clock.Now().UnixNano()
	a.mu.RLock()
	r := a.relayFor(peer.Addr())
	ok := a.permitted(peer.Addr(), now)
	a.mu.RUnlock()
	if r == nil {
		c.drop(c.fam)
		return
	}
	if !ok {
		c.drop(c.noPermission)
		return
	}
	meta, live := datagramMeta(src, s.SendMeta())
	if !live {
		c.drop(c.ttlExpired)
		return
	}
	a.sendToPeer(src, r, s.Data, peer, meta)
}

// fromClientChannel relays ChannelData (turn.md §4.10): an unbound channel or
// a lapsed permission drops it.
func (f *Frontend) fromClientChannel(n uint16, data []byte, src *source) {
	c := f.c
	a := f.st.get(src.tuple)
	if a == nil {
		c.drop(c.noAlloc)
		return
	}
	now := f.clock.Now().UnixNano()
	a.mu.RLock()
	b := a.byNum[n]
	var peer netip.AddrPort
	var r *relay
	ok := false
	if b != nil && b.expires > now {
		peer = b.peer
		r = a.relayFor(peer.Addr())
		ok = a.permitted(peer.Addr(), now)
	}
	a.mu.RUnlock()
	switch {
	case b == nil || !peer.IsValid():
		c.drop(c.noChannel)
		return
	case r == nil:
		c.drop(c.fam)
		return
	case !ok:
		c.drop(c.noPermission)
		return
	}
	meta, live := datagramMeta(src, tt.ChannelMeta(a.df))
	if !live {
		c.drop(c.ttlExpired)
		return
	}
	a.sendToPeer(src, r, data, peer, meta)
}

// sendToPeer relays data from src to peer through r; for a source that
// batches, it may wait in r until src.held is flushed.
func (a *allocation) sendToPeer(src *source, r *relay, data []byte, peer netip.AddrPort, meta gateway.DatagramMeta) {
	c := a.f.c
	if ref, ok := a.f.st.relayAt(peer); ok && ref.a != a {
		// Hairpin: the peer is another allocation's relay on this
		// frontend (two clients of one TURN server talking relay to
		// relay). The gateway never sends to its own sockets, so the
		// datagram is delivered in-process, as if it came from r.
		ref.a.deliver(data, r.addr)
		a.up.Add(int64(len(data)))
		c.relayed(true, len(data))
		return
	}
	dst := gateway.Addr{IP: peer.Addr(), Port: peer.Port()}
	var err error
	if src.batch && r.bw != nil {
		err = src.held.WriteToLater(r.bw, data, dst, meta)
	} else {
		err = r.assoc.WriteTo(data, dst, meta)
	}
	if err != nil {
		if gateway.ReasonOf(err) == gateway.ReasonNotAllowed {
			c.drop(c.denied)
		} else {
			c.drop(c.sendFailed)
		}
		return
	}
	a.up.Add(int64(len(data)))
	c.relayed(true, len(data))
}
