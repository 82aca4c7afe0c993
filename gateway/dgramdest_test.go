package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// destClock is a Clock tests move by hand.
type destClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *destClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *destClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// destAnswer is what scriptResolver answers for a name.
type destAnswer struct {
	ips []string
	err error
}

// scriptResolver answers from a table the test changes; with hold set, every
// lookup waits for one receive from it (or for its context to end).
type scriptResolver struct {
	mu       sync.Mutex
	answers  map[string]destAnswer
	calls    map[string]int
	hold     chan struct{}
	canceled int // lookups whose context ended while held
}

func newScriptResolver() *scriptResolver {
	return &scriptResolver{answers: map[string]destAnswer{}, calls: map[string]int{}}
}

func (r *scriptResolver) set(name string, a destAnswer) {
	r.mu.Lock()
	r.answers[name] = a
	r.mu.Unlock()
}

func (r *scriptResolver) callsFor(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[name]
}

func (r *scriptResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.calls[host]++
	hold := r.hold
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			r.mu.Lock()
			r.canceled++
			r.mu.Unlock()
			return nil, ctx.Err()
		}
	}
	r.mu.Lock()
	a, ok := r.answers[host]
	r.mu.Unlock()
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var ips []netip.Addr
	for _, s := range a.ips {
		ips = append(ips, netip.MustParseAddr(s))
	}
	return ips, a.err
}

// destPolicy denies the listed addresses (any port) and counts what it is
// asked.
type destPolicy struct {
	mu    sync.Mutex
	deny  map[netip.Addr]bool
	asked map[netip.AddrPort]int
}

func newDestPolicy(deny ...string) *destPolicy {
	p := &destPolicy{deny: map[netip.Addr]bool{}, asked: map[netip.AddrPort]int{}}
	for _, s := range deny {
		p.deny[netip.MustParseAddr(s)] = true
	}
	return p
}

func (p *destPolicy) Allow(ap netip.AddrPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked[ap]++
	if p.deny[ap.Addr()] {
		return fmt.Errorf("%s is on the deny list", ap.Addr())
	}
	return nil
}

func (p *destPolicy) askedFor(ap string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked[netip.MustParseAddrPort(ap)]
}

// destSent is a datagram handed to DestConfig.Send.
type destSent struct {
	data string
	to   netip.AddrPort
	meta DatagramMeta
}

// destRig is a Destinations with a fake clock, resolver and Send.
type destRig struct {
	d     *Destinations
	clock *destClock
	res   *scriptResolver
	sent  chan destSent
}

// newDestRig builds the Destinations of c (Op "test: send") with the rig's
// resolver and Send, and its clock unless c has one, and closes it at
// cleanup.
func newDestRig(t testing.TB, c DestConfig) *destRig {
	t.Helper()
	r := &destRig{
		clock: &destClock{now: time.Unix(1e9, 0)},
		res:   newScriptResolver(),
		sent:  make(chan destSent, 256),
	}
	c.Op = "test: send"
	c.Resolver = r.res
	if c.Clock == nil {
		c.Clock = r.clock
	}
	c.Send = func(b []byte, to netip.AddrPort, meta DatagramMeta) error {
		r.sent <- destSent{data: string(b), to: to, meta: meta}
		return nil
	}
	r.d = NewDestinations(c)
	t.Cleanup(r.d.Close)
	return r
}

// settle waits until no lookup is in flight, and the datagrams that waited
// for them have been handed to Send.
func (r *destRig) settle(t testing.TB) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		r.d.lookups.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("lookups still in flight")
	}
}

// sentNow returns what Send got so far.
func (r *destRig) sentNow() []destSent {
	var got []destSent
	for {
		select {
		case s := <-r.sent:
			got = append(got, s)
		default:
			return got
		}
	}
}

// wantRefusal checks that err is an *Error of reason want, with the test Op,
// wrapping ErrDropped.
func wantRefusal(t testing.TB, err error, want Reason) {
	t.Helper()
	var ge *Error
	switch {
	case !errors.As(err, &ge):
		t.Fatalf("err %v is not an *Error", err)
	case ge.Reason != want:
		t.Fatalf("reason %v, want %v (%v)", ge.Reason, want, err)
	case !errors.Is(err, ErrDropped):
		t.Fatalf("%v does not wrap ErrDropped", err)
	case !strings.HasPrefix(err.Error(), "test: send: "):
		t.Fatalf("%q does not start with the Op", err)
	}
}

func TestDestinationsCheck(t *testing.T) {
	own := NewOwnAddrs()
	own.Add(netip.MustParseAddrPort("192.0.2.50:4000"))
	tests := []struct {
		name   string
		cfg    DestConfig
		ap     netip.AddrPort
		reason Reason // ReasonNone: allowed
	}{
		{name: "allowed", cfg: DestConfig{Policy: newDestPolicy()}, ap: netip.MustParseAddrPort("192.0.2.1:53")},
		{name: "no policy", ap: netip.MustParseAddrPort("192.0.2.1:53")},
		{name: "ipv6", ap: netip.MustParseAddrPort("[2001:db8::1]:53")},
		{name: "invalid", ap: netip.AddrPort{}, reason: ReasonHostUnreachable},
		{name: "unspecified ipv4", ap: netip.MustParseAddrPort("0.0.0.0:53"), reason: ReasonHostUnreachable},
		{name: "unspecified ipv6", cfg: DestConfig{Policy: newDestPolicy()}, ap: netip.MustParseAddrPort("[::]:53"),
			reason: ReasonHostUnreachable},
		{name: "port zero", ap: netip.MustParseAddrPort("192.0.2.1:0"), reason: ReasonHostUnreachable},
		{name: "family 4 to ipv6", cfg: DestConfig{Family: 4}, ap: netip.MustParseAddrPort("[2001:db8::1]:53"),
			reason: ReasonFamilyMismatch},
		{name: "family 6 to ipv4", cfg: DestConfig{Family: 6}, ap: netip.MustParseAddrPort("192.0.2.1:53"),
			reason: ReasonFamilyMismatch},
		{name: "family 4 to ipv4-mapped", cfg: DestConfig{Family: 4}, ap: netip.MustParseAddrPort("[::ffff:192.0.2.1]:53")},
		{name: "own socket", cfg: DestConfig{Own: own}, ap: netip.MustParseAddrPort("192.0.2.50:4000"),
			reason: ReasonNotAllowed},
		{name: "own socket, other port", cfg: DestConfig{Own: own}, ap: netip.MustParseAddrPort("192.0.2.50:4001")},
		{name: "denied by policy", cfg: DestConfig{Policy: newDestPolicy("192.0.2.66")},
			ap: netip.MustParseAddrPort("192.0.2.66:53"), reason: ReasonNotAllowed},
		{name: "denied by policy, mapped", cfg: DestConfig{Policy: newDestPolicy("192.0.2.66")},
			ap: netip.MustParseAddrPort("[::ffff:192.0.2.66]:53"), reason: ReasonNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDestRig(t, tt.cfg)
			for range 2 { // the second from the cache
				err := r.d.Check(tt.ap)
				if tt.reason == ReasonNone {
					if err != nil {
						t.Fatalf("Check(%v) = %v, want nil", tt.ap, err)
					}
					continue
				}
				wantRefusal(t, err, tt.reason)
			}
			// Target says the same for the IP as an Addr, unmapped.
			ap, err := r.d.Target(Addr{IP: tt.ap.Addr(), Port: tt.ap.Port()}, []byte("x"), DatagramMeta{})
			if tt.reason == ReasonNone {
				want := netip.AddrPortFrom(tt.ap.Addr().Unmap(), tt.ap.Port())
				if err != nil || ap != want {
					t.Fatalf("Target = %v, %v, want %v", ap, err, want)
				}
				return
			}
			wantRefusal(t, err, tt.reason)
		})
	}
}

func TestDestinationsVerdictTTL(t *testing.T) {
	ttl := DefaultDestLimits().VerdictTTL
	steps := []struct {
		advance time.Duration
		ap      string
		reason  Reason
		asked   int // times the policy was asked about ap so far
	}{
		{ap: "192.0.2.1:53", asked: 1},
		{ap: "192.0.2.1:53", asked: 1},
		{ap: "192.0.2.1:54", asked: 1}, // another port is another destination
		{advance: ttl - time.Nanosecond, ap: "192.0.2.1:53", asked: 1},
		{advance: time.Nanosecond, ap: "192.0.2.1:53", asked: 2}, // expired
		{ap: "192.0.2.66:53", reason: ReasonNotAllowed, asked: 1},
		{ap: "192.0.2.66:53", reason: ReasonNotAllowed, asked: 1}, // refusals are cached too
		{advance: ttl, ap: "192.0.2.66:53", reason: ReasonNotAllowed, asked: 2},
	}
	p := newDestPolicy("192.0.2.66")
	r := newDestRig(t, DestConfig{Policy: p})
	for i, s := range steps {
		r.clock.advance(s.advance)
		err := r.d.Check(netip.MustParseAddrPort(s.ap))
		if s.reason == ReasonNone && err != nil {
			t.Fatalf("step %d: Check(%s) = %v", i, s.ap, err)
		}
		if s.reason != ReasonNone {
			wantRefusal(t, err, s.reason)
		}
		if n := p.askedFor(s.ap); n != s.asked {
			t.Fatalf("step %d: policy asked %d times about %s, want %d", i, n, s.ap, s.asked)
		}
	}
}

func TestDestinationsVerdictEviction(t *testing.T) {
	ttl := DefaultDestLimits().VerdictTTL
	p := newDestPolicy()
	r := newDestRig(t, DestConfig{Policy: p, Limits: DestLimits{Verdicts: 4}})
	ap := func(i int) string { return fmt.Sprintf("192.0.2.%d:53", i) }
	check := func(i int) {
		t.Helper()
		if err := r.d.Check(netip.MustParseAddrPort(ap(i))); err != nil {
			t.Fatal(err)
		}
		if n := len(r.d.verdicts); n > 4 {
			t.Fatalf("%d verdicts cached, bound 4", n)
		}
	}
	steps := []struct {
		advance time.Duration
		check   int
		cached  []int // destinations whose verdict must still be cached after the step
	}{
		{check: 1},
		{check: 2, cached: []int{1, 2}},
		{advance: ttl, check: 3}, // 1 and 2 expired, still held
		{check: 4, cached: []int{3, 4}},
		{check: 5, cached: []int{3, 4, 5}}, // full: the expired ones go first
		{check: 6, cached: []int{3, 4, 5, 6}},
		{check: 7}, // full, nothing expired: one fresh verdict goes
	}
	for i, s := range steps {
		r.clock.advance(s.advance)
		check(s.check)
		for _, c := range s.cached {
			before := p.askedFor(ap(c))
			check(c)
			if p.askedFor(ap(c)) != before {
				t.Fatalf("step %d: verdict on %s was not cached", i, ap(c))
			}
		}
	}
	r.d.mu.Lock()
	n := len(r.d.verdicts)
	r.d.mu.Unlock()
	if n != 4 {
		t.Errorf("%d verdicts cached at the end, want 4", n)
	}
}

func TestDestinationsNameAnswers(t *testing.T) {
	tests := []struct {
		name   string
		cfg    DestConfig
		answer destAnswer
		want   string // where the queued datagram and the next one go; "" for nowhere
		reason Reason // of the next datagram when want is ""
	}{
		{name: "one address", answer: destAnswer{ips: []string{"192.0.2.1"}}, want: "192.0.2.1:53"},
		{name: "ipv4-mapped answer", answer: destAnswer{ips: []string{"::ffff:192.0.2.1"}}, want: "192.0.2.1:53"},
		{name: "first allowed", cfg: DestConfig{Policy: newDestPolicy("192.0.2.66")},
			answer: destAnswer{ips: []string{"192.0.2.66", "192.0.2.8"}}, want: "192.0.2.8:53"},
		{name: "ipv4 first", answer: destAnswer{ips: []string{"2001:db8::1", "192.0.2.1"}}, want: "192.0.2.1:53"},
		{name: "ipv6 first", cfg: DestConfig{Prefer6: true},
			answer: destAnswer{ips: []string{"192.0.2.1", "2001:db8::1"}}, want: "[2001:db8::1]:53"},
		{name: "family 6 only", cfg: DestConfig{Family: 6},
			answer: destAnswer{ips: []string{"192.0.2.1", "2001:db8::1"}}, want: "[2001:db8::1]:53"},
		{name: "own socket skipped", cfg: DestConfig{Own: ownOf("192.0.2.1:53")},
			answer: destAnswer{ips: []string{"192.0.2.1", "192.0.2.2"}}, want: "192.0.2.2:53"},
		{name: "every address denied", cfg: DestConfig{Policy: newDestPolicy("192.0.2.66", "192.0.2.67")},
			answer: destAnswer{ips: []string{"192.0.2.66", "192.0.2.67"}}, reason: ReasonNotAllowed},
		{name: "not found", answer: destAnswer{err: &net.DNSError{Err: "no such host", IsNotFound: true}},
			reason: ReasonHostUnreachable},
		{name: "timeout", answer: destAnswer{err: context.DeadlineExceeded}, reason: ReasonTimeout},
		{name: "no addresses", answer: destAnswer{}, reason: ReasonHostUnreachable},
		{name: "only unspecified", answer: destAnswer{ips: []string{"0.0.0.0", "::"}}, reason: ReasonHostUnreachable},
		{name: "no address of the family", cfg: DestConfig{Family: 4},
			answer: destAnswer{ips: []string{"2001:db8::1"}}, reason: ReasonHostUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDestRig(t, tt.cfg)
			r.res.set("x.test", tt.answer)
			dst := Addr{Name: "x.test", Port: 53}
			meta := DatagramMeta{TTL: 7, TOS: 0x20, HasTOS: true}
			ap, err := r.d.Target(dst, []byte("queued"), meta)
			if err != nil || ap.IsValid() {
				t.Fatalf("first Target = %v, %v, want queued", ap, err)
			}
			r.settle(t)
			sent := r.sentNow()
			ap, err = r.d.Target(dst, []byte("next"), DatagramMeta{})
			if tt.want == "" {
				if len(sent) != 0 {
					t.Errorf("queued datagram sent: %+v", sent)
				}
				wantRefusal(t, err, tt.reason)
				return
			}
			want := netip.MustParseAddrPort(tt.want)
			if len(sent) != 1 || sent[0] != (destSent{data: "queued", to: want, meta: meta}) {
				t.Errorf("sent %+v, want the queued datagram to %v with its meta", sent, want)
			}
			if err != nil || ap != want {
				t.Errorf("next Target = %v, %v, want %v", ap, err, want)
			}
			if n := r.res.callsFor("x.test"); n != 1 {
				t.Errorf("%d lookups, want 1", n)
			}
		})
	}
}

func ownOf(aps ...string) *OwnAddrs {
	o := &OwnAddrs{exact: map[netip.AddrPort]int{}, wildPort: map[uint16]int{}, local: map[netip.Addr]bool{}}
	for _, s := range aps {
		o.Add(netip.MustParseAddrPort(s))
	}
	return o
}

// nameStep is one datagram to "n.test" port 53 in a scripted sequence: the
// clock moves, the resolver's answer may change, Target is called and the
// lookups settle.
type nameStep struct {
	advance time.Duration
	answer  *destAnswer
	want    string // "queued", or the address Target returns
	reason  Reason // when want is ""
	calls   int    // lookups so far, once settled
	sent    int    // queued datagrams handed to Send in this step
}

func TestDestinationsNameCache(t *testing.T) {
	lim := DefaultDestLimits()
	ok1 := &destAnswer{ips: []string{"192.0.2.1"}}
	ok2 := &destAnswer{ips: []string{"192.0.2.2"}}
	fail := &destAnswer{err: &net.DNSError{Err: "server misbehaving", IsTemporary: true}}
	tests := []struct {
		name  string
		steps []nameStep
	}{
		{name: "answer cached", steps: []nameStep{
			{answer: ok1, want: "queued", calls: 1, sent: 1},
			{want: "192.0.2.1:53", calls: 1},
			{advance: lim.NameTTL - time.Second, want: "192.0.2.1:53", calls: 1},
		}},
		{name: "stale while refresh", steps: []nameStep{
			{answer: ok1, want: "queued", calls: 1, sent: 1},
			// Expired: the old answer goes out at once, a refresh starts.
			{advance: lim.NameTTL, answer: ok2, want: "192.0.2.1:53", calls: 2},
			{want: "192.0.2.2:53", calls: 2},
		}},
		{name: "failed refresh keeps the answer", steps: []nameStep{
			{answer: ok1, want: "queued", calls: 1, sent: 1},
			{advance: lim.NameTTL, answer: fail, want: "192.0.2.1:53", calls: 2},
			{want: "192.0.2.1:53", calls: 2},
			{advance: lim.NegativeTTL - time.Second, want: "192.0.2.1:53", calls: 2},
			{advance: time.Second, answer: ok2, want: "192.0.2.1:53", calls: 3},
			{want: "192.0.2.2:53", calls: 3},
		}},
		{name: "negative cache", steps: []nameStep{
			{answer: fail, want: "queued", calls: 1},
			{reason: ReasonHostUnreachable, calls: 1},
			{advance: lim.NegativeTTL - time.Second, reason: ReasonHostUnreachable, calls: 1},
			// Expired: the failure is not used, the datagram waits again.
			{advance: time.Second, answer: ok1, want: "queued", calls: 2, sent: 1},
			{want: "192.0.2.1:53", calls: 2},
		}},
		{name: "no usable address remembered", steps: []nameStep{
			{answer: &destAnswer{ips: []string{"0.0.0.0"}}, want: "queued", calls: 1},
			{reason: ReasonHostUnreachable, calls: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDestRig(t, DestConfig{Policy: newDestPolicy()})
			dst := Addr{Name: "n.test", Port: 53}
			for i, s := range tt.steps {
				r.clock.advance(s.advance)
				if s.answer != nil {
					r.res.set("n.test", *s.answer)
				}
				ap, err := r.d.Target(dst, []byte{byte(i)}, DatagramMeta{})
				switch {
				case s.want == "queued":
					if err != nil || ap.IsValid() {
						t.Fatalf("step %d: Target = %v, %v, want queued", i, ap, err)
					}
				case s.want != "":
					if err != nil || ap != netip.MustParseAddrPort(s.want) {
						t.Fatalf("step %d: Target = %v, %v, want %s", i, ap, err, s.want)
					}
				default:
					wantRefusal(t, err, s.reason)
				}
				r.settle(t)
				if n := r.res.callsFor("n.test"); n != s.calls {
					t.Fatalf("step %d: %d lookups, want %d", i, n, s.calls)
				}
				if got := r.sentNow(); len(got) != s.sent {
					t.Fatalf("step %d: %d queued datagrams sent, want %d", i, len(got), s.sent)
				}
			}
		})
	}
}

func TestDestinationsBounds(t *testing.T) {
	tests := []struct {
		name    string
		limits  DestLimits
		names   []string // one datagram each, while no lookup answers
		dropped []bool   // which of them Target refuses
	}{
		{name: "queue over all names", limits: DestLimits{Queued: 3},
			names: []string{"a.test", "a.test", "b.test", "b.test", "a.test"}, dropped: []bool{false, false, false, true, true}},
		{name: "names resolving", limits: DestLimits{Names: 2},
			names: []string{"a.test", "b.test", "c.test", "a.test"}, dropped: []bool{false, false, true, false}},
		{name: "defaults", names: repeat("a.test", 33), dropped: append(make([]bool, 32), true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newDestRig(t, DestConfig{Limits: tt.limits})
			hold := make(chan struct{})
			r.res.hold = hold
			queued := 0
			for i, n := range tt.names {
				r.res.set(n, destAnswer{ips: []string{"192.0.2.1"}})
				start := time.Now()
				ap, err := r.d.Target(Addr{Name: n, Port: 53}, []byte{byte(i)}, DatagramMeta{})
				if d := time.Since(start); d > time.Second {
					t.Fatalf("Target %d blocked for %v", i, d)
				}
				if tt.dropped[i] {
					wantRefusal(t, err, ReasonGeneral)
					continue
				}
				if err != nil || ap.IsValid() {
					t.Fatalf("Target %d = %v, %v, want queued", i, ap, err)
				}
				queued++
			}
			close(hold)
			r.settle(t)
			if got := r.sentNow(); len(got) != queued {
				t.Errorf("%d queued datagrams sent, want %d", len(got), queued)
			}
			r.d.mu.Lock()
			left := r.d.queued
			r.d.mu.Unlock()
			if left != 0 {
				t.Errorf("%d datagrams still counted as queued", left)
			}
		})
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestDestinationsNameEviction: a full name cache makes room by dropping an
// answered name (an expired one first), never one being resolved.
func TestDestinationsNameEviction(t *testing.T) {
	lim := DefaultDestLimits()
	r := newDestRig(t, DestConfig{Limits: DestLimits{Names: 2}})
	for _, n := range []string{"a.test", "b.test", "c.test"} {
		r.res.set(n, destAnswer{ips: []string{"192.0.2.1"}})
	}
	target := func(n string) (netip.AddrPort, error) {
		return r.d.Target(Addr{Name: n, Port: 53}, []byte(n), DatagramMeta{})
	}
	target("a.test")
	r.settle(t)
	r.clock.advance(lim.NameTTL - time.Second)
	target("b.test")
	r.settle(t)
	r.clock.advance(time.Second) // a.test has expired, b.test has not
	if ap, err := target("c.test"); err != nil || ap.IsValid() {
		t.Fatalf("Target c.test = %v, %v, want queued", ap, err)
	}
	r.settle(t)
	r.d.mu.Lock()
	_, hasA := r.d.names["a.test"]
	_, hasB := r.d.names["b.test"]
	n := len(r.d.names)
	r.d.mu.Unlock()
	if n != 2 || hasA || !hasB {
		t.Errorf("names: %d, a.test %v, b.test %v; want the expired a.test evicted", n, hasA, hasB)
	}
	if ap, err := target("b.test"); err != nil || ap != netip.MustParseAddrPort("192.0.2.1:53") {
		t.Errorf("Target b.test = %v, %v", ap, err)
	}
}

// TestDestinationsClose: Close cancels the lookups in flight, drops their
// datagrams, and waits; names are refused afterwards.
func TestDestinationsClose(t *testing.T) {
	r := newDestRig(t, DestConfig{})
	r.res.hold = make(chan struct{}) // never released
	r.res.set("a.test", destAnswer{ips: []string{"192.0.2.1"}})
	for range 3 {
		if _, err := r.d.Target(Addr{Name: "a.test", Port: 53}, []byte("x"), DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		r.d.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	r.res.mu.Lock()
	canceled := r.res.canceled
	r.res.mu.Unlock()
	if canceled != 1 {
		t.Errorf("%d lookups canceled, want 1", canceled)
	}
	if got := r.sentNow(); len(got) != 0 {
		t.Errorf("sent after Close: %+v", got)
	}
	_, err := r.d.Target(Addr{Name: "a.test", Port: 53}, []byte("x"), DatagramMeta{})
	if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Target after Close = %v, want net.ErrClosed", err)
	}
	r.d.Close() // again
}

// TestDestinationsAllocs: a cached verdict, and a cached name, cost no
// allocation.
func TestDestinationsAllocs(t *testing.T) {
	r := newDestRig(t, DestConfig{Policy: newDestPolicy(), Own: ownOf("192.0.2.50:1")})
	r.res.set("a.test", destAnswer{ips: []string{"192.0.2.1"}})
	ip := Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 53}
	name := Addr{Name: "a.test", Port: 53}
	payload := make([]byte, 1200)
	r.d.Target(ip, payload, DatagramMeta{})
	r.d.Target(name, payload, DatagramMeta{})
	r.settle(t)
	for _, dst := range []Addr{ip, name} {
		n := testing.AllocsPerRun(200, func() {
			if _, err := r.d.Target(dst, payload, DatagramMeta{}); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("Target(%v): %.1f allocations, want 0", dst, n)
		}
	}
}

// BenchmarkDestinationsTarget measures the per-datagram cost of a cached
// verdict, and of a cached name.
func BenchmarkDestinationsTarget(b *testing.B) {
	for _, dst := range []Addr{
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 53},
		{Name: "a.test", Port: 53},
	} {
		b.Run(dst.String(), func(b *testing.B) {
			r := newDestRig(b, DestConfig{Policy: newDestPolicy(), Own: NewOwnAddrs(), Clock: SystemClock{}})
			r.res.set("a.test", destAnswer{ips: []string{"192.0.2.1"}})
			r.d.Target(dst, nil, DatagramMeta{})
			r.settle(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.d.Target(dst, nil, DatagramMeta{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
