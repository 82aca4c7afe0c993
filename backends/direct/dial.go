package direct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// aLongTimeAgo is a deadline in the past that unblocks pending I/O at once.
var aLongTimeAgo = time.Unix(1, 0)

// dialPlan is what every connection attempt of one Dial shares. It is read
// only once the attempts start.
type dialPlan struct {
	policy gateway.Policy
	// opts are the requested options; each attempt records its own outcomes
	// in a copy.
	opts gateway.StackOptions
	// synData is the part of the initial data to carry in the SYN with TCP
	// Fast Open; nil when TFO is not used.
	synData []byte
}

// attemptResult is the outcome of one connection attempt.
type attemptResult struct {
	conn *net.TCPConn
	// opts holds the outcomes of TOS, TTL, DF and TFO on this attempt's
	// socket.
	opts gateway.StackOptions
	// synSent reports that plan.synData has been written on conn.
	synSent bool
	err     error
}

// Dial opens a TCP connection to req.Dest and sends req.InitialData on it
// before returning.
//
// A name is resolved through the backend's Resolver (A and AAAA in one
// lookup); every resolved address is checked against req.Policy and only the
// allowed ones are tried, families interleaved, with Happy Eyeballs (RFC 8305):
// the next attempt starts when the previous one fails or after
// happy_eyeballs_delay, the first established connection wins and the others
// are cancelled. Each socket re-checks, immediately before connect(2), that the
// address it connects to is one that was checked.
//
// Stack options on the returned Stream: TOS, TTL and DF are Applied with the
// value read back from the socket (Declined when the kernel refuses the value);
// TFO is Applied when TCP_FASTOPEN_CONNECT is set and the initial data (at most
// TFO.Value bytes of it when non-zero) went to the kernel as SYN payload, and
// Declined when there is no initial data; MPTCP is Applied only when the
// connection really is Multipath TCP. HappyEyeballs is Applied (true) when
// Dest is a name: names are always raced unless the option asks for false,
// which tries the addresses one after another and is recorded as Applied
// (false). For an IP destination no racing happens and the option is
// Unsupported, so it is not echoed. Every other option is Unsupported.
//
// Errors are *gateway.Error values with Op "direct: dial" around a
// *net.OpError.
func (b *Backend) Dial(ctx context.Context, req *gateway.StreamRequest) (*gateway.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, b.dialTimeout)
	defer cancel()

	p := &dialPlan{policy: gateway.PolicyOrAll(req.Policy), opts: req.Options}
	if p.opts.TFO.Pending() && haveTFO && len(req.InitialData) > 0 {
		p.synData = req.InitialData
		if n := int(p.opts.TFO.Value); n > 0 && n < len(p.synData) {
			p.synData = p.synData[:n]
		}
	}

	var addrs []netip.AddrPort
	if req.Dest.IsName() {
		var err error
		if addrs, err = b.resolve(ctx, req.Dest, p.policy); err != nil {
			return nil, b.dialFailed(req.Dest, err)
		}
	} else {
		ap := netip.AddrPortFrom(req.Dest.IP.Unmap(), req.Dest.Port)
		if err := usable(ap.Addr()); err != nil {
			return nil, b.dialFailed(req.Dest, err)
		}
		if err := p.policy.Allow(ap); err != nil {
			return nil, b.dialFailed(req.Dest, denied(err))
		}
		addrs = []netip.AddrPort{ap}
	}

	race := req.Dest.IsName() && !(p.opts.HappyEyeballs.Wanted() && !p.opts.HappyEyeballs.Value)
	var r attemptResult
	if race && len(addrs) > 1 {
		r = b.race(ctx, addrs, p)
	} else {
		r = b.sequential(ctx, addrs, p)
	}
	if r.err != nil {
		return nil, b.dialFailed(req.Dest, r.err)
	}
	conn := r.conn

	rest := req.InitialData
	if r.synSent {
		rest = rest[len(p.synData):]
	}
	if len(rest) > 0 {
		err := withContext(ctx, conn.SetWriteDeadline, func() error {
			_, err := conn.Write(rest)
			return err
		})
		if err != nil {
			conn.Close()
			return nil, b.dialFailed(req.Dest, err)
		}
	}

	opts := r.opts
	if opts.TFO.Pending() {
		if haveTFO {
			opts.TFO.Decline(0) // nothing to put in the SYN
		} else {
			opts.TFO.Unsupport()
		}
	}
	if opts.MPTCP.Wanted() {
		if !opts.MPTCP.Value {
			opts.MPTCP.Apply(false)
		} else if mp, err := conn.MultipathTCP(); err == nil && mp {
			opts.MPTCP.Apply(true)
		} else {
			opts.MPTCP.Decline(false)
		}
	}
	if opts.HappyEyeballs.Pending() && req.Dest.IsName() {
		opts.HappyEyeballs.Apply(race)
	}
	opts.UnsupportPending()

	local := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	remote := conn.RemoteAddr().(*net.TCPAddr).AddrPort()
	st := &gateway.Stream{
		Conn:    conn,
		Bound:   b.advertised(local),
		Peer:    gateway.AddrFromAddrPort(netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())),
		Options: opts,
	}
	if b.log.Enabled(ctx, slog.LevelDebug) {
		b.log.Debug("stream dialled", "dest", req.Dest.String(), "peer", st.Peer.String(),
			"local", local.String(), "user", req.Principal.User)
	}
	return st, nil
}

// resolve looks dest up and returns its allowed addresses in Happy Eyeballs
// order.
func (b *Backend) resolve(ctx context.Context, dest gateway.Addr, policy gateway.Policy) ([]netip.AddrPort, error) {
	ips, err := b.resolver.LookupNetIP(ctx, "ip", dest.Name)
	if err != nil {
		return nil, err
	}
	var (
		allowed   []netip.AddrPort
		firstDeny error
		seen      = make(map[netip.AddrPort]bool, len(ips))
	)
	for _, ip := range ips {
		ip = ip.Unmap().WithZone("")
		if usable(ip) != nil {
			continue
		}
		ap := netip.AddrPortFrom(ip, dest.Port)
		if seen[ap] {
			continue
		}
		seen[ap] = true
		if err := policy.Allow(ap); err != nil {
			b.log.Debug("resolved address denied", "dest", dest.String(), "addr", ap.String(), "err", err)
			if firstDeny == nil {
				firstDeny = err
			}
			continue
		}
		allowed = append(allowed, ap)
	}
	if len(allowed) == 0 {
		if firstDeny != nil {
			return nil, denied(firstDeny)
		}
		return nil, &net.DNSError{Err: "no usable address", Name: dest.Name, IsNotFound: true}
	}
	return interleave(allowed), nil
}

// interleave orders addresses as RFC 8305 section 4 asks: the family of the
// first (most preferred) address first, then alternating families, each
// family keeping its own order.
func interleave(addrs []netip.AddrPort) []netip.AddrPort {
	if len(addrs) < 2 {
		return addrs
	}
	first6 := addrs[0].Addr().Is6()
	var primary, secondary []netip.AddrPort
	for _, a := range addrs {
		if a.Addr().Is6() == first6 {
			primary = append(primary, a)
		} else {
			secondary = append(secondary, a)
		}
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for i := 0; i < len(primary) || i < len(secondary); i++ {
		if i < len(primary) {
			out = append(out, primary[i])
		}
		if i < len(secondary) {
			out = append(out, secondary[i])
		}
	}
	return out
}

// sequential tries the addresses one after another in the calling goroutine.
func (b *Backend) sequential(ctx context.Context, addrs []netip.AddrPort, p *dialPlan) attemptResult {
	var failed error
	for _, a := range addrs {
		r := b.attempt(ctx, a, p)
		if r.err == nil {
			return r
		}
		failed = betterErr(failed, r.err)
		if ctx.Err() != nil {
			break
		}
	}
	return attemptResult{err: failed}
}

// race runs RFC 8305 connection attempts: one at a time, the next started
// when the previous one fails or after the Connection Attempt Delay, until one
// connection is established. It returns only when every attempt it started
// has finished, closing connections that lost the race.
func (b *Backend) race(ctx context.Context, addrs []netip.AddrPort, p *dialPlan) attemptResult {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan attemptResult, len(addrs))
	next, inflight := 0, 0
	start := func() {
		dst := addrs[next]
		next++
		inflight++
		go func() { results <- b.attempt(ctx, dst, p) }()
	}
	timer := time.NewTimer(b.heDelay)
	defer timer.Stop()

	start()
	var (
		won    attemptResult
		winner bool
		failed error
	)
	for inflight > 0 {
		select {
		case r := <-results:
			inflight--
			switch {
			case r.err != nil:
				failed = betterErr(failed, r.err)
				if !winner && next < len(addrs) && ctx.Err() == nil {
					start()
					timer.Reset(b.heDelay)
				}
			case winner:
				r.conn.Close()
			default:
				won, winner = r, true
				cancel()
			}
		case <-timer.C:
			if !winner && next < len(addrs) && ctx.Err() == nil {
				start()
				timer.Reset(b.heDelay)
			}
		}
	}
	if winner {
		return won
	}
	return attemptResult{err: failed}
}

// attempt makes one connection to dst, and with TCP Fast Open writes the SYN
// data and waits for the handshake, so a success is a real connection.
func (b *Backend) attempt(ctx context.Context, dst netip.AddrPort, p *dialPlan) attemptResult {
	r := attemptResult{opts: p.opts}
	v6 := dst.Addr().Is6()
	network := "tcp4"
	if v6 {
		network = "tcp6"
	}
	tfo := false
	d := net.Dialer{
		KeepAliveConfig: gateway.KeepAlive,
		ControlContext: func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if err := recheck(dst, address, p.policy); err != nil {
				return err
			}
			// Go may make a second socket (MPTCP falling back to TCP):
			// start each socket's record afresh.
			r.opts, tfo = p.opts, false
			if err := c.Control(func(fd uintptr) {
				applyIPOptions(fd, v6, &r.opts)
				if p.synData != nil {
					tfo = setFastOpenConnect(fd)
				}
				if b.localFor(dst.Addr()).IsValid() {
					setBindNoPort(fd)
				}
			}); err != nil {
				return err
			}
			if b.control != nil {
				return b.control(ctx, network, address, c)
			}
			return nil
		},
	}
	if local := b.localFor(dst.Addr()); local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	if p.opts.MPTCP.Wanted() {
		d.SetMultipathTCP(p.opts.MPTCP.Value)
	}
	c, err := d.DialContext(ctx, network, dst.String())
	if err != nil {
		r.err = err
		return r
	}
	r.conn = c.(*net.TCPConn)
	if p.synData == nil {
		return r
	}
	if !tfo {
		r.opts.TFO.Decline(0)
		return r
	}
	var synData bool
	err = withContext(ctx, r.conn.SetWriteDeadline, func() error {
		if _, err := r.conn.Write(p.synData); err != nil {
			return err
		}
		var err error
		synData, err = waitEstablished(r.conn)
		return err
	})
	if err != nil {
		r.conn.Close()
		return attemptResult{err: err}
	}
	r.synSent = true
	r.opts.TFO.Apply(p.opts.TFO.Value)
	b.log.Debug("tcp fast open", "peer", dst.String(), "syn_data_acked", synData)
	return r
}

// recheck verifies, immediately before connect(2), that address is exactly
// the checked destination want and that the policy still allows it.
func recheck(want netip.AddrPort, address string, policy gateway.Policy) error {
	got, err := netip.ParseAddrPort(address)
	if err != nil {
		return denied(fmt.Errorf("unparsable address %q", address))
	}
	got = netip.AddrPortFrom(got.Addr().Unmap(), got.Port())
	if got != want {
		return denied(fmt.Errorf("connect to unchecked address %s (checked %s)", got, want))
	}
	if err := policy.Allow(got); err != nil {
		return denied(err)
	}
	return nil
}

// errUnusable reports a destination address that cannot name a remote TCP
// peer; it counts as host unreachable.
var errUnusable = errors.New("unusable destination address")

// usable rejects addresses that cannot name a remote TCP peer: connecting to
// an unspecified address reaches the gateway host itself.
func usable(ip netip.Addr) error {
	switch {
	case !ip.IsValid():
		return fmt.Errorf("%w: none given", errUnusable)
	case ip.IsUnspecified(), ip.IsMulticast():
		return fmt.Errorf("%w: %s", errUnusable, ip)
	}
	return nil
}

// policyError is a refusal by the request's Policy.
type policyError struct{ err error }

func (e *policyError) Error() string { return "denied by policy: " + e.err.Error() }
func (e *policyError) Unwrap() error { return e.err }

// denied marks a policy refusal.
func denied(err error) error { return &policyError{err: err} }

// reasonFor returns the neutral reason of a dial or accept failure.
func reasonFor(err error) gateway.Reason {
	var pe *policyError
	switch {
	case errors.As(err, &pe):
		return gateway.ReasonNotAllowed
	case errors.Is(err, errUnusable):
		return gateway.ReasonHostUnreachable
	}
	return gateway.ReasonOf(err)
}

// betterErr picks the error to report among failed attempts: the first one,
// unless it only says that a family is unreachable from here while a later
// attempt says more about the destination.
func betterErr(old, err error) error {
	if old == nil || (familyNoise(old) && !familyNoise(err)) {
		return err
	}
	return old
}

func familyNoise(err error) bool {
	switch reasonFor(err) {
	case gateway.ReasonNetUnreachable, gateway.ReasonFamilyMismatch:
		return true
	}
	return false
}

// dialFailed wraps err as the *gateway.Error Dial returns, keeping a
// *net.OpError in the chain.
func (b *Backend) dialFailed(dest gateway.Addr, err error) error {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		var addr net.Addr = destAddr(dest.String())
		if !dest.IsName() {
			addr = net.TCPAddrFromAddrPort(dest.AddrPort())
		}
		err = &net.OpError{Op: "dial", Net: "tcp", Addr: addr, Err: err}
	}
	reason := reasonFor(err)
	b.log.Debug("stream dial failed", "dest", dest.String(), "reason", reason.String(), "err", err)
	return gateway.NewError(reason, "direct: dial", err)
}

// destAddr is a destination name as a net.Addr, for error messages.
type destAddr string

func (a destAddr) Network() string { return "tcp" }
func (a destAddr) String() string  { return string(a) }

// withContext runs fn, a blocking call on a connection or listener, so that
// it returns when ctx is done: ctx's deadline becomes the I/O deadline and a
// cancellation moves it into the past. The deadline is cleared afterwards.
func withContext(ctx context.Context, setDeadline func(time.Time) error, fn func() error) error {
	if d, ok := ctx.Deadline(); ok {
		_ = setDeadline(d)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = setDeadline(aLongTimeAgo)
		close(fired)
	})
	err := fn()
	if !stop() {
		<-fired
	}
	_ = setDeadline(time.Time{})
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, os.ErrDeadlineExceeded) {
		var oe *net.OpError
		if errors.As(err, &oe) {
			oe.Err = context.Canceled
		} else {
			err = fmt.Errorf("%w: %w", context.Canceled, err)
		}
	}
	return err
}
