package direct

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// bindable reports whether a plain socket can bind port on addr now.
func bindable(network, host string, port uint16) bool {
	c, err := net.ListenPacket(network, net.JoinHostPort(host, itoa(port)))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func parityReq(family int, parity gateway.Parity, reserve bool, who gateway.Principal) *gateway.AssocRequest {
	return &gateway.AssocRequest{
		Family:    family,
		Options:   gateway.StackOptions{PortParity: gateway.Want(gateway.PortParity{Parity: parity, Reserve: reserve})},
		Principal: who,
		Policy:    loopback,
	}
}

var (
	session1 = gateway.Principal{Protocol: "socks6", User: "alice", Session: "0102030405060708"}
	session2 = gateway.Principal{Protocol: "socks6", User: "alice", Session: "1112131415161718"}
	turnUser = gateway.Principal{Protocol: "turn", User: "bob"}
)

func TestPortParityReserveSession(t *testing.T) {
	own := gateway.NewOwnAddrs()
	b := newBackend(t, Config{}, Options{Own: own})
	maker := associate(t, b, parityReq(4, gateway.ParityEven, true, session1))
	port := maker.bound.Port()
	if port%2 != 0 {
		t.Fatalf("port %d is odd", port)
	}
	if pp := maker.Options().PortParity; pp != applied(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}) {
		t.Errorf("PortParity = %+v", pp)
	}
	res, ok := maker.Reservation()
	if !ok {
		t.Fatal("no reservation")
	}
	relay, _ := maker.RelayAddr()
	if res.Addr != netip.AddrPortFrom(relay.IP, port+1) || res.Owner != session1.Session ||
		!res.Expires.IsZero() || res.Token == ([8]byte{}) {
		t.Errorf("reservation %+v (relay %v)", res, relay)
	}
	if bindable("udp4", "0.0.0.0", port+1) || bindable("udp4", "127.0.0.1", port+1) {
		t.Fatalf("the reserved port %d can be bound by another socket", port+1)
	}
	if !own.Contains(netip.MustParseAddrPort("127.0.0.1:" + itoa(port+1))) {
		t.Error("the reserved port is not among the gateway's own addresses")
	}

	named := func(who gateway.Principal) (gateway.Association, error) {
		return b.Associate(context.Background(), &gateway.AssocRequest{Bind: ipAddr("0.0.0.0", port+1), Principal: who, Policy: loopback})
	}
	for _, who := range []gateway.Principal{session2, {Protocol: "socks6"}, turnUser} {
		_, err := named(who)
		wantGWReason(t, err, gateway.ReasonNotAllowed)
	}
	// A token names the reservation too, but the owner still rules.
	_, err := b.Associate(context.Background(), &gateway.AssocRequest{ReservationToken: &res.Token, Principal: session2})
	wantGWReason(t, err, gateway.ReasonNotAllowed)

	taken, err := named(session1)
	if err != nil {
		t.Fatalf("the owner cannot take the reservation: %v", err)
	}
	ta := taken.(*association)
	if ta.pc != maker.made.pc || ta.bound.Port() != port+1 {
		t.Errorf("taker bound %v, not the held socket", ta.bound)
	}
	if r, _ := taken.RelayAddr(); r.Port != port+1 {
		t.Errorf("taker relay %v", r)
	}
	// The maker keeps reporting what it reserved; closing it leaves the
	// taken port alone.
	if _, ok := maker.Reservation(); !ok {
		t.Error("maker forgot its reservation")
	}
	maker.Close()
	if bindable("udp4", "0.0.0.0", port+1) {
		t.Error("closing the maker released the taken port")
	}
	echo := newUDPEcho(t, "udp4", "127.0.0.1:0")
	pingPong(t, taken, startReader(t, taken), echo.gw(), echo.addr(), []byte("taken"))
	taken.Close()
	if !bindable("udp4", "0.0.0.0", port+1) {
		t.Error("port still held after the taker closed")
	}
	if own.Contains(netip.MustParseAddrPort("127.0.0.1:" + itoa(port+1))) {
		t.Error("the taken port is still an own address after Close")
	}
}

func TestPortParityReleasedWithAssociation(t *testing.T) {
	own := gateway.NewOwnAddrs()
	b := newBackend(t, Config{}, Options{Own: own})
	for _, tc := range []struct {
		name   string
		family int
		parity gateway.Parity
	}{
		{"even ipv4", 4, gateway.ParityEven},
		{"odd ipv4", 4, gateway.ParityOdd},
		{"even ipv6", 6, gateway.ParityEven},
		{"odd dual-stack", 0, gateway.ParityOdd},
		{"none", 4, gateway.ParityNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := associate(t, b, parityReq(tc.family, tc.parity, true, session1))
			port := a.bound.Port()
			if tc.parity != gateway.ParityNone && parityOf(port) != tc.parity {
				t.Fatalf("port %d, want parity %v", port, tc.parity)
			}
			c, _ := counterpart(port)
			res, ok := a.Reservation()
			if !ok || res.Addr.Port() != c {
				t.Fatalf("reservation %+v, want port %d", res, c)
			}
			if got := a.Options().PortParity; got != applied(gateway.PortParity{Parity: parityOf(port), Reserve: true}) {
				t.Errorf("PortParity = %+v", got)
			}
			networks := map[int][]string{4: {"udp4"}, 6: {"udp6"}, 0: {"udp4", "udp6"}}[tc.family]
			host := map[string]string{"udp4": "127.0.0.1", "udp6": "::1"}
			for _, n := range networks {
				if bindable(n, host[n], c) {
					t.Errorf("%s port %d is free while reserved", n, c)
				}
			}
			a.Close()
			for _, n := range networks {
				if !bindable(n, host[n], c) {
					t.Errorf("%s port %d still held after the association ended", n, c)
				}
			}
		})
	}
}

func TestPortParityExplicitPort(t *testing.T) {
	b := newBackend(t, Config{}, Options{})
	lo := freeUDPBlock(t, 4)
	if lo%2 != 0 {
		lo++
	}
	tests := []struct {
		name string
		port uint16
		pp   gateway.PortParity
		want gateway.Opt[gateway.PortParity]
	}{
		{name: "parity ignored", port: lo, pp: gateway.PortParity{Parity: gateway.ParityOdd},
			want: gateway.Opt[gateway.PortParity]{Outcome: gateway.Declined, Value: gateway.PortParity{Parity: gateway.ParityEven}}},
		{name: "parity met", port: lo, pp: gateway.PortParity{Parity: gateway.ParityEven},
			want: applied(gateway.PortParity{Parity: gateway.ParityEven})},
		{name: "reserve the counterpart of a named port", port: lo + 1, pp: gateway.PortParity{Reserve: true},
			want: applied(gateway.PortParity{Parity: gateway.ParityOdd, Reserve: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := parityReq(4, tt.pp.Parity, tt.pp.Reserve, session1)
			req.Bind = ipAddr("0.0.0.0", tt.port)
			a := associate(t, b, req)
			if a.bound.Port() != tt.port {
				t.Fatalf("bound %v, want port %d", a.bound, tt.port)
			}
			if got := a.Options().PortParity; got != tt.want {
				t.Errorf("PortParity = %+v, want %+v", got, tt.want)
			}
			res, ok := a.Reservation()
			if ok != tt.pp.Reserve {
				t.Fatalf("reservation %+v, %v", res, ok)
			}
			if ok {
				if c, _ := counterpart(tt.port); res.Addr.Port() != c || bindable("udp4", "127.0.0.1", c) {
					t.Errorf("reservation %v: counterpart %d not held", res.Addr, c)
				}
			}
		})
	}
}

func TestPortParityTURN(t *testing.T) {
	clock := newFakeClock()
	b := newBackend(t, Config{}, Options{Clock: clock})
	t.Cleanup(func() { b.Close() })
	maker := associate(t, b, parityReq(4, gateway.ParityEven, true, turnUser))
	port := maker.bound.Port()
	res, ok := maker.Reservation()
	if !ok || port%2 != 0 || res.Addr.Port() != port+1 {
		t.Fatalf("port %d reservation %+v %v", port, res, ok)
	}
	if want := clock.Now().Add(DefaultReservationTTL); !res.Expires.Equal(want) || res.Owner != "" {
		t.Errorf("reservation expires %v owner %q, want %v and none", res.Expires, res.Owner, want)
	}
	// A TURN reservation outlives the allocation that made it.
	maker.Close()
	if bindable("udp4", "127.0.0.1", port+1) {
		t.Fatal("reservation released with the allocation")
	}
	_, err := b.Associate(context.Background(), &gateway.AssocRequest{ReservationToken: &[8]byte{1, 2, 3}, Principal: turnUser})
	wantGWReason(t, err, gateway.ReasonCapacityExhausted)
	// Only the token takes a TURN reservation.
	for _, who := range []gateway.Principal{turnUser, session1} {
		_, err = b.Associate(context.Background(), &gateway.AssocRequest{Bind: ipAddr("0.0.0.0", port+1), Principal: who})
		wantGWReason(t, err, gateway.ReasonNotAllowed)
	}

	taker := associate(t, b, &gateway.AssocRequest{Family: 4, ReservationToken: &res.Token, Principal: turnUser,
		Options: gateway.StackOptions{DF: gateway.Want(true), UDPError: gateway.Want(true)}, Policy: loopback})
	if taker.bound.Port() != port+1 {
		t.Fatalf("token gave port %d, want %d", taker.bound.Port(), port+1)
	}
	if o := taker.Options(); o.DF != applied(true) || o.UDPError != applied(true) || o.PortParity.Wanted() {
		t.Errorf("taker options %+v", o)
	}
	if _, ok := taker.Reservation(); ok {
		t.Error("the taker reports a reservation")
	}
	_, err = b.Associate(context.Background(), &gateway.AssocRequest{ReservationToken: &res.Token, Principal: turnUser})
	wantGWReason(t, err, gateway.ReasonCapacityExhausted)
	echo := newUDPEcho(t, "udp4", "127.0.0.1:0")
	pingPong(t, taker, startReader(t, taker), echo.gw(), echo.addr(), []byte("turn"))
}

func TestPortParityTURNExpiry(t *testing.T) {
	t.Run("clock", func(t *testing.T) {
		clock := newFakeClock()
		b := newBackend(t, Config{}, Options{Clock: clock, ReservationTTL: time.Hour})
		t.Cleanup(func() { b.Close() })
		maker := associate(t, b, parityReq(4, gateway.ParityEven, true, turnUser))
		res, _ := maker.Reservation()
		clock.Advance(time.Hour)
		_, err := b.Associate(context.Background(), &gateway.AssocRequest{ReservationToken: &res.Token, Principal: turnUser})
		wantGWReason(t, err, gateway.ReasonCapacityExhausted)
		if !bindable("udp4", "127.0.0.1", res.Addr.Port()) {
			t.Error("expired reservation still holds its port")
		}
		// Naming the port of an expired reservation binds it afresh.
		maker2 := associate(t, b, parityReq(4, gateway.ParityEven, true, turnUser))
		res2, _ := maker2.Reservation()
		clock.Advance(time.Hour)
		a := associate(t, b, &gateway.AssocRequest{Bind: ipAddr("0.0.0.0", res2.Addr.Port()), Principal: session1})
		if a.pc == maker2.made.pc {
			t.Error("an expired reservation was handed over")
		}
	})
	t.Run("timer", func(t *testing.T) {
		b := newBackend(t, Config{}, Options{ReservationTTL: 50 * time.Millisecond})
		t.Cleanup(func() { b.Close() })
		maker := associate(t, b, parityReq(4, gateway.ParityEven, true, turnUser))
		res, _ := maker.Reservation()
		deadline := time.Now().Add(3 * time.Second)
		for !bindable("udp4", "127.0.0.1", res.Addr.Port()) {
			if time.Now().After(deadline) {
				t.Fatal("reservation not released after its TTL")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if maker.pc == nil || maker.closed.Load() {
			t.Error("the expiry touched the association")
		}
	})
}

func TestPortParityRange(t *testing.T) {
	lo := freeUDPBlock(t, 9)
	if lo%2 != 0 {
		lo++
	}
	b := newBackend(t, Config{PortRange: portRange(lo, lo+7)}, Options{})
	for range 3 {
		a := associate(t, b, parityReq(4, gateway.ParityEven, true, session1))
		p := a.bound.Port()
		res, ok := a.Reservation()
		if p%2 != 0 || p < lo || p+1 > lo+7 || !ok || res.Addr.Port() != p+1 {
			t.Fatalf("port %d reservation %v %v in %d-%d", p, res.Addr, ok, lo, lo+7)
		}
	}
	a := associate(t, b, parityReq(4, gateway.ParityOdd, true, session1))
	if p := a.bound.Port(); p%2 != 1 || p > lo+7 {
		t.Errorf("odd port %d, want the odd port of the last free pair", p)
	}
	// The range is full: the next association fails.
	_, err := b.Associate(context.Background(), parityReq(4, gateway.ParityEven, true, session1))
	wantGWReason(t, err, gateway.ReasonCapacityExhausted)

	t.Run("parity unavailable", func(t *testing.T) {
		odd := freeUDPBlock(t, 2)
		if odd%2 == 0 {
			odd++
		}
		b := newBackend(t, Config{PortRange: itoa(odd)}, Options{})
		a := associate(t, b, parityReq(4, gateway.ParityEven, true, session1))
		if a.bound.Port() != odd {
			t.Fatalf("port %d, want %d", a.bound.Port(), odd)
		}
		want := gateway.Opt[gateway.PortParity]{Outcome: gateway.Declined, Value: gateway.PortParity{Parity: gateway.ParityOdd}}
		if got := a.Options().PortParity; got != want {
			t.Errorf("PortParity = %+v, want %+v", got, want)
		}
		if _, ok := a.Reservation(); ok {
			t.Error("reserved without the parity")
		}
	})
	t.Run("counterpart outside the range", func(t *testing.T) {
		lo := freeUDPBlock(t, 2)
		if lo%2 != 0 {
			lo++
		}
		b := newBackend(t, Config{PortRange: itoa(lo)}, Options{})
		a := associate(t, b, parityReq(4, gateway.ParityEven, true, session1))
		want := gateway.Opt[gateway.PortParity]{Outcome: gateway.Declined, Value: gateway.PortParity{Parity: gateway.ParityEven}}
		if got := a.Options().PortParity; got != want {
			t.Errorf("PortParity = %+v, want %+v", got, want)
		}
	})
}

func TestBackendCloseReleases(t *testing.T) {
	own := gateway.NewOwnAddrs()
	b := newBackend(t, Config{}, Options{Own: own})
	maker := associate(t, b, parityReq(4, gateway.ParityEven, true, turnUser))
	res, _ := maker.Reservation()
	maker.Close()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !bindable("udp4", "127.0.0.1", res.Addr.Port()) {
		t.Error("Close left the reservation bound")
	}
	if own.Contains(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), res.Addr.Port())) {
		t.Error("Close left the reservation among the own addresses")
	}
}
