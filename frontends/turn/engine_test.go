package turn

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/sixgate/sixgate/gateway"
	tt "github.com/sixgate/sixgate/translate/turn"
	"golang.org/x/sys/unix"
)

var udpTransport = tt.RequestedTransport{Protocol: tt.ProtoUDP}

// raw is an attribute written as given.
type raw struct {
	t stun.AttrType
	v []byte
}

func (r raw) AddTo(m *stun.Message) error { m.Add(r.t, r.v); return nil }

// TestErrorCodes checks every error code the engine sends, in the order of
// turn.md §3.6 and §4.3.
func TestErrorCodes(t *testing.T) {
	ts := startServer(t, "", `limits {
  max_allocations_per_user = 2
}`, &fakeBackend{noDF: true, noV6: true})
	peer := apOf(echoPeer(t))

	t.Run("400 unknown method request", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		m := c.build(stun.NewType(stun.MethodSend, stun.ClassRequest), false)
		c.expectCode(c.roundTrip(m.Raw, m.TransactionID), stun.CodeBadRequest)
	})
	t.Run("400 credentials incomplete", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		m := c.build(tt.TypeAllocateRequest, false, udpTransport, stun.NewUsername("alice"), stun.MessageIntegrity([]byte("k")))
		c.expectCode(c.roundTrip(m.Raw, m.TransactionID), stun.CodeBadRequest)
	})
	t.Run("400 no requested-transport", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeAllocateRequest), stun.CodeBadRequest)
	})
	t.Run("401 challenge", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		m := c.build(tt.TypeAllocateRequest, false, udpTransport)
		resp := c.roundTrip(m.Raw, m.TransactionID)
		c.expectCode(resp, stun.CodeUnauthorized)
		var r stun.Realm
		var n stun.Nonce
		if r.GetFrom(resp) != nil || n.GetFrom(resp) != nil || string(r) != "sixgate" {
			t.Fatal("401 without realm and nonce")
		}
		if resp.Contains(stun.AttrMessageIntegrity) {
			t.Fatal("401 signed")
		}
	})
	for _, tc := range []struct{ name, user, pass, realm string }{
		{"401 bad password", "alice", "wrong", "sixgate"},
		{"401 unknown user", "mallory", "s3cret", "sixgate"},
		{"401 wrong realm", "alice", "s3cret", "other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, "udp", ts.udp, tc.user, tc.pass)
			c.realm = tc.realm
			c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeUnauthorized)
		})
	}
	t.Run("438 foreign nonce", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.nonce = "4a9f2c61e0b3d857"
		m := c.build(tt.TypeAllocateRequest, true, udpTransport)
		resp := c.roundTrip(m.Raw, m.TransactionID)
		c.expectCode(resp, stun.CodeStaleNonce)
		// A nonce issued to another 5-tuple is stale here too.
		c2 := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.learn(resp)
		c2.nonce = c.nonce
		m = c2.build(tt.TypeAllocateRequest, true, udpTransport)
		c2.expectCode(c2.roundTrip(m.Raw, m.TransactionID), stun.CodeStaleNonce)
	})
	t.Run("420 unknown comprehension-required", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		resp := c.do(tt.TypeAllocateRequest, udpTransport, raw{0x0031, []byte{1, 2, 3, 4}})
		c.expectCode(resp, stun.CodeUnknownAttribute)
		var u tt.UnknownAttributes
		if err := u.GetFrom(resp); err != nil || len(u) != 1 || u[0] != 0x0031 {
			t.Fatalf("unknown attributes %v %v", u, err)
		}
	})
	t.Run("420 dont-fragment unsupported", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		resp := c.do(tt.TypeAllocateRequest, udpTransport, tt.DontFragment{})
		c.expectCode(resp, stun.CodeUnknownAttribute)
		var u tt.UnknownAttributes
		if err := u.GetFrom(resp); err != nil || len(u) != 1 || u[0] != stun.AttrDontFragment {
			t.Fatalf("unknown attributes %v %v", u, err)
		}
	})
	t.Run("437 second allocate and no allocation", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeRefreshRequest), stun.CodeAllocMismatch)
		c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer}), stun.CodeAllocMismatch)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: peer}), stun.CodeAllocMismatch)
		c.allocate()
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeAllocMismatch)
		c.expectCode(c.do(tt.TypeRefreshRequest, tt.Lifetime(0)), 0)
	})
	t.Run("440 family", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport, tt.RequestedAddressFamily(tt.FamilyIPv6)), stun.CodeAddrFamilyNotSupported)
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport, raw{stun.AttrRequestedAddressFamily, []byte{3, 0, 0, 0}}), stun.CodeAddrFamilyNotSupported)
	})
	t.Run("441 another user", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.allocate()
		defer c.do(tt.TypeRefreshRequest, tt.Lifetime(0))
		bob := *c
		bob.user, bob.pass, bob.key = "bob", "hunter2", nil
		bob.expectCode(bob.do(tt.TypeRefreshRequest, tt.Lifetime(0)), stun.CodeWrongCredentials)
		bob.expectCode(bob.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer}), stun.CodeWrongCredentials)
		c.expectCode(c.do(tt.TypeRefreshRequest), 0)
	})
	t.Run("442 transport", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		// RFC 6062 §5.1: a TCP allocation asked for over UDP is 400 (see
		// TestTCPDisabled for 442).
		c.expectCode(c.do(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: tt.ProtoTCP}), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeAllocateRequest, tt.RequestedTransport{Protocol: 1}), stun.CodeUnsupportedTransProto)
	})
	t.Run("443 and 403 peers", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.allocate()
		defer c.do(tt.TypeRefreshRequest, tt.Lifetime(0))
		v6 := netip.MustParseAddrPort("[2001:db8::1]:5000")
		mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.MustParseAddr("127.0.0.1").As16()), 5000)
		for _, p := range []netip.AddrPort{v6, mapped} {
			c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: p}), stun.CodePeerAddrFamilyMismatch)
			c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: p}), stun.CodePeerAddrFamilyMismatch)
		}
		// 443 comes before 403 when both apply.
		c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer}, tt.PeerAddress{Addr: v6}), stun.CodePeerAddrFamilyMismatch)
		for _, p := range []string{"0.0.0.0:5000", "0.0.0.0:0", "169.254.169.254:80", "10.1.2.3:53", "224.0.0.1:5000", "255.255.255.255:9"} {
			c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort(p)}), stun.CodeForbidden)
		}
		// The gateway's own listener is never a peer.
		c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: ts.udp}), stun.CodeForbidden)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: ts.udp}), stun.CodeForbidden)
		// All or nothing: a forbidden peer installs none.
		c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: peer}, tt.PeerAddress{Addr: netip.MustParseAddrPort("0.0.0.0:1")}), stun.CodeForbidden)
		c.send(peer, []byte("x"), false)
		c.noResponse(200 * time.Millisecond)
	})
	t.Run("400 channel rules", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
		c.allocate()
		defer c.do(tt.TypeRefreshRequest, tt.Lifetime(0))
		other := netip.AddrPortFrom(peer.Addr(), peer.Port()+1)
		c.expectCode(c.do(tt.TypeCreatePermissionRequest), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x3FFF), tt.PeerAddress{Addr: peer}), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x5000), tt.PeerAddress{Addr: peer}), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.PeerAddress{Addr: peer}), stun.CodeBadRequest)
		c.bind(0x4000, peer)
		c.bind(0x4000, peer) // a rebind refreshes
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4000), tt.PeerAddress{Addr: other}), stun.CodeBadRequest)
		c.expectCode(c.do(tt.TypeChannelBindRequest, tt.ChannelNumber(0x4001), tt.PeerAddress{Addr: peer}), stun.CodeBadRequest)
	})
	t.Run("486 quota and 508 capacity", func(t *testing.T) {
		var cs []*client
		for range 2 {
			c := dialClient(t, "udp", ts.udp, "bob", "hunter2")
			c.allocate()
			cs = append(cs, c)
		}
		c := dialClient(t, "udp", ts.udp, "bob", "hunter2")
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeAllocQuotaReached)
		for _, c := range cs {
			c.expectCode(c.do(tt.TypeRefreshRequest, tt.Lifetime(0)), 0)
		}
		c.allocate()
		c.expectCode(c.do(tt.TypeRefreshRequest, tt.Lifetime(0)), 0)
		// An unknown RESERVATION-TOKEN is 508.
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport, tt.ReservationToken{1, 2, 3, 4, 5, 6, 7, 8}), stun.CodeInsufficientCapacity)
	})
	t.Run("binding", func(t *testing.T) {
		c := dialClient(t, "udp", ts.udp, "", "")
		m := c.build(stun.BindingRequest, false)
		resp := c.roundTrip(m.Raw, m.TransactionID)
		var ma tt.MappedAddress
		if err := ma.GetFrom(resp); err != nil || ma.Addr != apOf(c.conn) {
			t.Fatalf("binding: %v %v", ma.Addr, err)
		}
		var sw stun.Software
		if sw.GetFrom(resp) != nil || string(sw) != "sixgate" {
			t.Fatalf("software %q", sw)
		}
	})
}

// TestCapacity508 checks the gateway-wide association limit.
func TestCapacity508(t *testing.T) {
	ts := startServer(t, "", `limits {
  max_associations = 1
}`, nil)
	a := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	a.allocate()
	b := dialClient(t, "udp", ts.udp, "bob", "hunter2")
	b.expectCode(b.do(tt.TypeAllocateRequest, udpTransport), stun.CodeInsufficientCapacity)
}

// TestRetransmission replays the Allocate byte for byte, also after its
// nonce went stale, and a Refresh(0) after the deletion.
func TestRetransmission(t *testing.T) {
	ts := startServer(t, `nonce_lifetime = "300ms"`, "", nil)
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.fingerprint = true
	first := c.build(tt.TypeAllocateRequest, false, udpTransport)
	c.learn(c.roundTrip(first.Raw, first.TransactionID))
	req := c.build(tt.TypeAllocateRequest, true, udpTransport)
	r1 := c.roundTrip(req.Raw, req.TransactionID)
	c.expectCode(r1, 0)
	r2 := c.roundTrip(req.Raw, req.TransactionID)
	if !bytes.Equal(r1.Raw, r2.Raw) {
		t.Fatal("retransmission answered differently")
	}
	time.Sleep(400 * time.Millisecond) // the nonce is stale now
	r3 := c.roundTrip(req.Raw, req.TransactionID)
	if !bytes.Equal(r1.Raw, r3.Raw) {
		t.Fatalf("retransmission after the nonce expired: code %d", code(r3))
	}
	// A new transaction on the allocated 5-tuple is 438 (stale), then 437.
	c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeAllocMismatch)
	del := c.build(tt.TypeRefreshRequest, true, tt.Lifetime(0))
	d1 := c.roundTrip(del.Raw, del.TransactionID)
	c.expectCode(d1, 0)
	d2 := c.roundTrip(del.Raw, del.TransactionID)
	if !bytes.Equal(d1.Raw, d2.Raw) {
		t.Fatalf("retransmitted Refresh(0): code %d", code(d2))
	}
	c.expectCode(c.do(tt.TypeRefreshRequest), stun.CodeAllocMismatch)
}

// TestTCPFrames sends a STUN request right after a ChannelData frame in one
// TCP segment (coturn 4.6.1 loses it).
func TestTCPFrames(t *testing.T) {
	ts := startServer(t, "", "", nil)
	peer := echoPeer(t)
	c := dialClient(t, "tcp", ts.tcp, "alice", "s3cret")
	c.allocate()
	c.bind(0x4000, apOf(peer))
	cd, _ := tt.AppendChannelData(nil, 0x4000, []byte("abc"), true)
	bind := c.build(stun.BindingRequest, false)
	seg := append(cd, bind.Raw...)
	resp := c.roundTrip(seg, bind.TransactionID)
	if resp.Type != stun.BindingSuccess {
		t.Fatalf("binding after channeldata: %s", resp.Type)
	}
	_, ch, data, _ := c.readData(3 * time.Second)
	if ch != 0x4000 || string(data) != "abc" {
		t.Fatalf("channel %#x %q", ch, data)
	}
}

// TestPermissionLapse lets a permission expire: the peer's datagrams are
// dropped and counted, until it is refreshed.
func TestPermissionLapse(t *testing.T) {
	ts := startServer(t, `permission_lifetime = "300ms"`, "", nil)
	peer, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	relay := c.allocate().Relayed[0]
	c.permit(apOf(peer))
	peer.WriteToUDPAddrPort([]byte("early"), relay)
	if _, _, data, _ := c.readData(2 * time.Second); string(data) != "early" {
		t.Fatalf("got %q", data)
	}
	time.Sleep(500 * time.Millisecond)
	before := ts.dropped("no_permission")
	peer.WriteToUDPAddrPort([]byte("late"), relay)
	c.noResponse(300 * time.Millisecond)
	if ts.dropped("no_permission") != before+1 {
		t.Fatalf("drop not counted: %v -> %v", before, ts.dropped("no_permission"))
	}
	// A Send to the lapsed peer is dropped too.
	c.send(apOf(peer), []byte("x"), false)
	peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := peer.ReadFromUDPAddrPort(make([]byte, 10)); err == nil {
		t.Fatal("send through a lapsed permission")
	}
	c.permit(apOf(peer))
	peer.WriteToUDPAddrPort([]byte("again"), relay)
	if _, _, data, _ := c.readData(2 * time.Second); string(data) != "again" {
		t.Fatalf("got %q", data)
	}
}

// TestAllocationExpiry lets an allocation's lifetime run out.
func TestAllocationExpiry(t *testing.T) {
	ts := startServer(t, `default_lifetime = "300ms"
  max_lifetime = "300ms"`, "", nil)
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	r := c.allocate(tt.Lifetime(3600))
	if r.Lifetime != 1 {
		t.Fatalf("lifetime %d", r.Lifetime)
	}
	time.Sleep(600 * time.Millisecond)
	c.expectCode(c.do(tt.TypeRefreshRequest), stun.CodeAllocMismatch)
	c.allocate()
}

// TestDontFragment accepts DONT-FRAGMENT and sets DF per Send.
func TestDontFragment(t *testing.T) {
	be := &fakeBackend{}
	ts := startServer(t, "", "", be)
	peer := apOf(echoPeer(t))
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.allocate(tt.DontFragment{})
	c.permit(peer)
	c.send(peer, []byte("df"), true)
	c.readData(2 * time.Second)
	if m, ok := be.lastMeta(); !ok || !m.DF {
		t.Fatalf("send meta %+v", m)
	}
	c.bind(0x4000, peer)
	c.sendChannel(0x4000, []byte("cd"))
	c.readData(2 * time.Second)
	if m, _ := be.lastMeta(); !m.DF {
		t.Fatalf("channel meta %+v: the allocation asked for DF", m)
	}
}

// TestTTLCopied copies the client packet's TTL minus one and its TOS to the
// relayed datagram (RFC 8656 §14).
func TestTTLCopied(t *testing.T) {
	be := &fakeBackend{}
	ts := startServer(t, "", "", be)
	peer := apOf(echoPeer(t))
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.allocate()
	c.permit(peer)
	rc, _ := c.conn.(*net.UDPConn).SyscallConn()
	rc.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 7)
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, 0xb8)
	})
	c.send(peer, []byte("ttl"), false)
	c.readData(2 * time.Second)
	m, _ := be.lastMeta()
	if m.TTL != 6 || !m.HasTOS || m.TOS != 0xb8 {
		t.Fatalf("meta %+v", m)
	}
	rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 1) })
	c.send(peer, []byte("ttl"), false)
	c.noResponse(200 * time.Millisecond)
	if ts.dropped("ttl_expired") != 1 {
		t.Fatal("ttl 1 not dropped")
	}
}

// TestEvenPortReservation: EVEN-PORT R=1 gives an even port and a token that
// a second Allocate (another 5-tuple) takes for port+1, once.
func TestEvenPortReservation(t *testing.T) {
	ts := startServer(t, "", "", nil)
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	r := c.allocate(tt.EvenPort{Reserve: true})
	if r.Relayed[0].Port()%2 != 0 || r.ReservationToken == nil {
		t.Fatalf("relay %v token %v", r.Relayed, r.ReservationToken)
	}
	c2 := dialClient(t, "udp", ts.udp, "bob", "hunter2")
	r2 := c2.allocate(*r.ReservationToken)
	if r2.Relayed[0].Port() != r.Relayed[0].Port()+1 {
		t.Fatalf("token gave %v after %v", r2.Relayed[0], r.Relayed[0])
	}
	c3 := dialClient(t, "udp", ts.udp, "bob", "hunter2")
	c3.expectCode(c3.do(tt.TypeAllocateRequest, udpTransport, *r.ReservationToken), stun.CodeInsufficientCapacity)
	c3.expectCode(c3.do(tt.TypeAllocateRequest, udpTransport, *r.ReservationToken, tt.EvenPort{}), stun.CodeBadRequest)
	r4 := c3.allocate(tt.EvenPort{})
	if r4.Relayed[0].Port()%2 != 0 || r4.ReservationToken != nil {
		t.Fatalf("even port R=0: %v %v", r4.Relayed, r4.ReservationToken)
	}
}

// TestFamilies: an IPv6 relay, and a dual-stack allocation (full and
// partial).
func TestFamilies(t *testing.T) {
	ts := startServer(t, "", "", nil)
	peer6, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("[::1]:0")))
	if err != nil {
		t.Skip("no ::1:", err)
	}
	defer peer6.Close()
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	r := c.allocate(tt.RequestedAddressFamily(tt.FamilyIPv6))
	if !r.Relayed[0].Addr().Is6() {
		t.Fatalf("relay %v", r.Relayed)
	}
	c.expectCode(c.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: netip.MustParseAddrPort("127.0.0.1:9")}), stun.CodePeerAddrFamilyMismatch)
	c.permit(apOf(peer6))
	c.send(apOf(peer6), []byte("v6"), false)
	buf := make([]byte, 10)
	peer6.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := peer6.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "v6" || from.Port() != r.Relayed[0].Port() {
		t.Fatalf("peer got %q from %v: %v", buf[:n], from, err)
	}
	c.expectCode(c.do(tt.TypeRefreshRequest, tt.RequestedAddressFamily(tt.FamilyIPv4)), stun.CodePeerAddrFamilyMismatch)

	d := dialClient(t, "udp", ts.udp, "bob", "hunter2")
	rd := d.allocate(tt.AdditionalAddressFamily(tt.FamilyIPv6))
	if len(rd.Relayed) != 2 || !rd.Relayed[0].Addr().Is4() || !rd.Relayed[1].Addr().Is6() || rd.AddressError != nil {
		t.Fatalf("dual: %v %v", rd.Relayed, rd.AddressError)
	}
	// Deleting the IPv6 relay keeps the IPv4 one.
	d.expectCode(d.do(tt.TypeRefreshRequest, tt.RequestedAddressFamily(tt.FamilyIPv6), tt.Lifetime(0)), 0)
	d.expectCode(d.do(tt.TypeCreatePermissionRequest, tt.PeerAddress{Addr: apOf(peer6)}), stun.CodePeerAddrFamilyMismatch)
	d.expectCode(d.do(tt.TypeRefreshRequest), 0)

	ts2 := startServer(t, "", "", &fakeBackend{noV6: true})
	p := dialClient(t, "udp", ts2.udp, "alice", "s3cret")
	rp := p.allocate(tt.AdditionalAddressFamily(tt.FamilyIPv6))
	if len(rp.Relayed) != 1 || rp.AddressError == nil || rp.AddressError.Family != tt.FamilyIPv6 || rp.AddressError.Code != stun.CodeAddrFamilyNotSupported {
		t.Fatalf("partial dual: %v %+v", rp.Relayed, rp.AddressError)
	}
}

// TestREST authenticates TURN REST credentials in both username forms, with
// either secret, and refuses expired ones.
func TestREST(t *testing.T) {
	ts := startServer(t, "", "", nil)
	exp := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name, user, secret string
		want               stun.ErrorCode
	}{
		{"expiry:user", tt.RESTUsername(exp, "carol"), "rest-new", 0},
		{"bare timestamp", tt.RESTUsername(exp, ""), "rest-old", 0},
		{"user:expiry", "carol:" + strconv.FormatInt(exp.Unix(), 10), "rest-new", 0},
		{"expired", tt.RESTUsername(time.Now().Add(-time.Minute), "carol"), "rest-new", stun.CodeUnauthorized},
		{"unknown secret", tt.RESTUsername(exp, "carol"), "nope", stun.CodeUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, "udp", ts.udp, tc.user, tt.RESTPassword(tc.secret, tc.user))
			resp := c.do(tt.TypeAllocateRequest, udpTransport)
			c.expectCode(resp, tc.want)
			if tc.want == 0 {
				c.expectCode(c.do(tt.TypeRefreshRequest, tt.Lifetime(0)), 0)
			}
		})
	}
}

// TestAuthRateLimit refuses a client IP after too many failures, without
// checking its credentials.
func TestAuthRateLimit(t *testing.T) {
	ts := startServer(t, "", `limits {
  auth_failures_per_ip = 2
}`, nil)
	for range 2 {
		c := dialClient(t, "udp", ts.udp, "alice", "bad")
		c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeUnauthorized)
	}
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeUnauthorized)
	if v := testutil.ToFloat64(ts.metrics.Auth.WithLabelValues("t", "rate_limited")); v < 1 {
		t.Fatalf("rate_limited %v", v)
	}
}

// TestICMP relays an ICMP error about a permitted peer as a Data indication
// with the ICMP attribute, and drops one about a peer without permission.
func TestICMP(t *testing.T) {
	be := &fakeBackend{}
	ts := startServer(t, "", "", be)
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.allocate()
	peer := netip.MustParseAddrPort("127.0.0.9:53")
	c.permit(peer)
	be.injectICMP(gateway.ICMPError{Type: 3, Code: 3, Dest: netip.MustParseAddrPort("127.0.0.10:53")})
	be.injectICMP(gateway.ICMPError{Type: 5, Code: 0, Dest: peer}) // redirect: not relayed
	be.injectICMP(gateway.ICMPError{Type: 11, Code: 0, Dest: peer})
	from, _, _, ind := c.readData(2 * time.Second)
	if !ind.HasICMP || ind.ICMP.Type != 11 || ind.ICMP.Code != 0 || from != peer {
		t.Fatalf("icmp indication %+v from %v", ind, from)
	}
	c.noResponse(200 * time.Millisecond)
	for r, want := range map[string]float64{"reported": 1, "no_permission": 1, "not_relayed": 1} {
		if v := testutil.ToFloat64(ts.metrics.ICMPErrors.WithLabelValues("t", r)); v != want {
			t.Errorf("icmp %s = %v, want %v", r, v, want)
		}
	}
}

// TestReloadKeepsAllocations reloads the gateway: the new frontend instance
// takes the UDP socket over and the allocation keeps relaying.
func TestReloadKeepsAllocations(t *testing.T) {
	ts := startServer(t, "", "", nil)
	peer := apOf(echoPeer(t))
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.allocate()
	c.bind(0x4000, peer)
	ts.reload(ts.hcl)
	time.Sleep(5 * handoffGrace)
	c.sendChannel(0x4000, []byte("after reload"))
	_, _, data, _ := c.readData(2 * time.Second)
	mustEqual(t, data, []byte("after reload"))
	c.expectCode(c.do(tt.TypeRefreshRequest), 0)
	c.expectCode(c.do(tt.TypeAllocateRequest, udpTransport), stun.CodeAllocMismatch)
}

// TestUnboundChannel drops ChannelData on an unbound channel.
func TestUnboundChannel(t *testing.T) {
	ts := startServer(t, "", "", nil)
	c := dialClient(t, "udp", ts.udp, "alice", "s3cret")
	c.allocate()
	c.sendChannel(0x4123, []byte("x"))
	time.Sleep(100 * time.Millisecond)
	if ts.dropped("no_channel") != 1 {
		t.Fatal("unbound channel not counted")
	}
}
