//go:build linux

package direct

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sixgate/sixgate/gateway"
)

func TestAssociateStackOptions(t *testing.T) {
	type sockWant struct{ level, opt, val int }
	tests := []struct {
		name   string
		req    gateway.AssocRequest
		want   gateway.StackOptions // outcomes and values
		sock   []sockWant
		family int
	}{
		{
			name: "ipv4",
			req: gateway.AssocRequest{Family: 4, Options: gateway.StackOptions{
				TOS: gateway.Want[uint8](0x28), TTL: gateway.Want[uint8](42), DF: gateway.Want(true),
				UDPError: gateway.Want(true), TFO: gateway.Want[uint16](0), MPTCP: gateway.Want(true),
			}},
			want: gateway.StackOptions{
				TOS: applied[uint8](0x28), TTL: applied[uint8](42), DF: applied(true), UDPError: applied(true),
				TFO: gateway.Opt[uint16]{Outcome: gateway.Unsupported}, MPTCP: gateway.Opt[bool]{Outcome: gateway.Unsupported, Value: true},
			},
			sock: []sockWant{
				{unix.IPPROTO_IP, unix.IP_TOS, 0x28}, {unix.IPPROTO_IP, unix.IP_TTL, 42},
				{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO}, {unix.IPPROTO_IP, unix.IP_RECVERR, 1},
			},
		},
		{
			name: "ipv6",
			req: gateway.AssocRequest{Family: 6, Options: gateway.StackOptions{
				TOS: gateway.Want[uint8](0xb8), TTL: gateway.Want[uint8](7), DF: gateway.Want(true),
				UDPError: gateway.Want(false), HappyEyeballs: gateway.Want(true),
			}},
			want: gateway.StackOptions{
				TOS: applied[uint8](0xb8), TTL: applied[uint8](7), DF: applied(true), UDPError: applied(false),
				HappyEyeballs: gateway.Opt[bool]{Outcome: gateway.Unsupported, Value: true},
			},
			sock: []sockWant{
				{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xb8}, {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 7},
				{unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1}, {unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1},
				{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1},
			},
		},
		{
			name: "dual-stack",
			req: gateway.AssocRequest{Options: gateway.StackOptions{
				TOS: gateway.Want[uint8](0x10), TTL: gateway.Want[uint8](9), DF: gateway.Want(true),
			}},
			want: gateway.StackOptions{TOS: applied[uint8](0x10), TTL: applied[uint8](9), DF: applied(true)},
			sock: []sockWant{
				{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0},
				{unix.IPPROTO_IP, unix.IP_TOS, 0x10}, {unix.IPPROTO_IP, unix.IP_TTL, 9},
				{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO}, {unix.IPPROTO_IP, unix.IP_RECVERR, 1},
				{unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x10}, {unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 9},
				{unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1}, {unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1},
			},
		},
		{
			name: "ipv4 df off ttl zero",
			req: gateway.AssocRequest{Family: 4, Options: gateway.StackOptions{
				TTL: gateway.Want[uint8](0), DF: gateway.Want(false),
			}},
			want: gateway.StackOptions{TTL: gateway.Opt[uint8]{Outcome: gateway.Declined, Value: 64}, DF: applied(false)},
			sock: []sockWant{{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DONT}, {unix.IPPROTO_IP, unix.IP_TTL, 64}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{})
			req := tt.req
			a := associate(t, b, &req)
			if got := a.Options(); got != tt.want {
				t.Errorf("Options = %+v\nwant      %+v", got, tt.want)
			}
			for _, w := range tt.sock {
				if v := sockInt(t, a.pc, w.level, w.opt); v != w.val {
					t.Errorf("getsockopt(%d, %d) = %d, want %d", w.level, w.opt, v, w.val)
				}
			}
		})
	}
}

// metaReceiver is a UDP socket that reports the TTL and TOS of what it
// receives.
type metaReceiver struct {
	pc *net.UDPConn
	v6 bool
}

func newMetaReceiver(t *testing.T, network, addr string) *metaReceiver {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &metaReceiver{pc: c.(*net.UDPConn), v6: network == "udp6"}
	t.Cleanup(func() { r.pc.Close() })
	rc, _ := r.pc.SyscallConn()
	rc.Control(func(fd uintptr) {
		if r.v6 {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1)
		} else {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
		}
	})
	return r
}

func (r *metaReceiver) gw() gateway.Addr {
	ap := r.pc.LocalAddr().(*net.UDPAddr).AddrPort()
	return gateway.AddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
}

// recv reads one datagram and returns its payload, source, TTL and TOS.
func (r *metaReceiver) recv(t *testing.T) (string, netip.AddrPort, int, int) {
	t.Helper()
	buf, oob := make([]byte, 2048), make([]byte, 256)
	r.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, from, err := r.pc.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	ttl, tos := -1, -1
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TTL,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT:
			ttl = int(m.Data[0])
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS,
			m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_TCLASS:
			tos = int(m.Data[0])
		}
	}
	return string(buf[:n]), from, ttl, tos
}

// TestAssociateDatagramMeta checks that per-datagram TTL and TOS travel as
// control messages (the receiver sees them), that the association's own TTL
// holds for the other datagrams, and that received datagrams report theirs.
func TestAssociateDatagramMeta(t *testing.T) {
	r4 := newMetaReceiver(t, "udp4", "127.0.0.1:0")
	r6 := newMetaReceiver(t, "udp6", "[::1]:0")
	for _, tc := range []struct {
		name   string
		family int
		recv   []*metaReceiver
	}{
		{name: "ipv4", family: 4, recv: []*metaReceiver{r4}},
		{name: "ipv6", family: 6, recv: []*metaReceiver{r6}},
		{name: "dual-stack", recv: []*metaReceiver{r4, r6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackend(t, Config{}, Options{})
			a := associate(t, b, &gateway.AssocRequest{Family: tc.family, Policy: loopback,
				Options: gateway.StackOptions{TTL: gateway.Want[uint8](42)}})
			ch := startReader(t, a)
			for _, r := range tc.recv {
				steps := []struct {
					meta     gateway.DatagramMeta
					ttl, tos int
				}{
					{gateway.DatagramMeta{}, 42, 0},
					{gateway.DatagramMeta{TTL: 17, TOS: 0x20, HasTOS: true}, 17, 0x20},
					{gateway.DatagramMeta{}, 42, 0},
					{gateway.DatagramMeta{TTL: 1}, 1, 0},
				}
				for i, s := range steps {
					if err := a.WriteTo([]byte("meta"), r.gw(), s.meta); err != nil {
						t.Fatalf("step %d: WriteTo: %v", i, err)
					}
					_, from, ttl, tos := r.recv(t)
					if ttl != s.ttl || tos != s.tos {
						t.Errorf("%v step %d: received TTL %d TOS %#x, want %d %#x", r.gw(), i, ttl, tos, s.ttl, s.tos)
					}
					if i == 0 {
						// Answer with a TTL and TOS of our own.
						rc, _ := r.pc.SyscallConn()
						rc.Control(func(fd uintptr) {
							if r.v6 {
								unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 33)
								unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0x48)
							} else {
								unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, 33)
								unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, 0x48)
							}
						})
						if _, err := r.pc.WriteToUDPAddrPort([]byte("back"), from); err != nil {
							t.Fatal(err)
						}
						p := next(t, ch, gateway.PacketData)
						if p.Meta.TTL != 33 || !p.Meta.HasTOS || p.Meta.TOS != 0x48 {
							t.Errorf("received Meta %+v, want TTL 33 TOS 0x48", p.Meta)
						}
					}
				}
			}
		})
	}
}

// TestAssociateDatagramDF checks that DF asked per datagram switches the
// socket's IPv4 path MTU discovery mode only when needed and back, and that
// IPv6 needs no switch (IPV6_DONTFRAG travels as a control message).
func TestAssociateDatagramDF(t *testing.T) {
	sink4 := newUDPSink(t, "udp4", "127.0.0.1:0")
	sink6 := newUDPSink(t, "udp6", "[::1]:0")
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Policy: loopback})
	mode := func() int { return sockInt(t, a.pc, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER) }
	base := mode()
	if base == unix.IP_PMTUDISC_DO {
		t.Fatalf("default mode is already DO")
	}
	send := func(dst gateway.Addr, df bool) {
		t.Helper()
		if err := a.WriteTo([]byte("df"), dst, gateway.DatagramMeta{DF: df}); err != nil {
			t.Fatal(err)
		}
	}
	send(sink4.gw(), true)
	if m := mode(); m != unix.IP_PMTUDISC_DO {
		t.Errorf("after a DF datagram mode %d, want DO", m)
	}
	send(sink6.gw(), false) // IPv6 leaves the IPv4 mode alone
	if m := mode(); m != unix.IP_PMTUDISC_DO {
		t.Errorf("after an IPv6 datagram mode %d, want DO", m)
	}
	send(sink4.gw(), false)
	if m := mode(); m != base {
		t.Errorf("after a plain datagram mode %d, want %d", m, base)
	}
	send(sink6.gw(), true)
	if v := sockInt(t, a.pc, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG); v != 0 {
		t.Errorf("IPV6_DONTFRAG switched on the socket (%d) for one datagram", v)
	}
	for range 4 {
		select {
		case <-sink4.got:
		case <-sink6.got:
		case <-time.After(5 * time.Second):
			t.Fatal("a datagram was lost")
		}
	}
}

// TestAssociateReadDirect takes the path ReadFrom takes when Go's
// poller refuses to wait: reading directly still works.
func TestAssociateReadDirect(t *testing.T) {
	echo := newUDPEcho(t, "udp4", "127.0.0.1:0")
	b := newBackend(t, Config{}, Options{})
	a := associate(t, b, &gateway.AssocRequest{Family: 4, Policy: loopback})
	if err := a.WriteTo([]byte("direct"), echo.gw(), gateway.DatagramMeta{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	a.io.rbuf = make([]byte, 100)
	got := false
	if err := a.rc.Control(func(fd uintptr) { got = a.io.readFn(fd) }); err != nil {
		t.Fatal(err)
	}
	if !got || a.io.rpkt.Kind != gateway.PacketData || string(a.io.rbuf[:a.io.rpkt.N]) != "direct" {
		t.Fatalf("direct read: %v %+v", got, a.io.rpkt)
	}
	got = true
	a.rc.Control(func(fd uintptr) { got = a.io.readFn(fd) })
	if got {
		t.Fatalf("direct read of an empty socket returned %+v", a.io.rpkt)
	}
}

func TestCmsg(t *testing.T) {
	var buf [64]uint64
	b := unsafeBytes(buf[:])
	n := putCmsgInt(b, unix.IPPROTO_IP, unix.IP_TTL, 17)
	n += putCmsgInt(b[n:], unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xb8)
	msgs, err := unix.ParseSocketControlMessage(b[:n])
	if err != nil || len(msgs) != 2 {
		t.Fatalf("parse: %v, %d messages", err, len(msgs))
	}
	var got []int32
	for l, ty, data, rest := nextCmsg(b[:n]); data != nil; l, ty, data, rest = nextCmsg(rest) {
		got = append(got, l, ty, int32(data[0]))
	}
	want := []int32{unix.IPPROTO_IP, unix.IP_TTL, 17, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xb8}
	if len(got) != len(want) {
		t.Fatalf("nextCmsg gave %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("nextCmsg gave %v, want %v", got, want)
		}
	}
	// Truncated or garbage input ends the walk.
	for _, bad := range [][]byte{b[:3], b[:n-5]} {
		count := 0
		for _, _, data, rest := nextCmsg(bad); data != nil; _, _, data, rest = nextCmsg(rest) {
			count++
		}
		if count > 1 {
			t.Errorf("walked %d messages of %d truncated bytes", count, len(bad))
		}
	}
}

func TestOffender(t *testing.T) {
	sa4 := make([]byte, 16)
	putFamily(sa4, unix.AF_INET)
	copy(sa4[4:], []byte{10, 1, 2, 3})
	if got := offender(sa4); got != netip.MustParseAddr("10.1.2.3") {
		t.Errorf("offender v4 = %v", got)
	}
	sa6 := make([]byte, 28)
	putFamily(sa6, unix.AF_INET6)
	ip := netip.MustParseAddr("::ffff:10.9.8.7").As16()
	copy(sa6[8:], ip[:])
	if got := offender(sa6); got != netip.MustParseAddr("10.9.8.7") {
		t.Errorf("offender mapped = %v", got)
	}
	if got := offender(make([]byte, 16)); got.IsValid() {
		t.Errorf("offender AF_UNSPEC = %v", got)
	}
}

func unsafeBytes(w []uint64) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&w[0])), len(w)*8) }

func putFamily(b []byte, f int) { binary.NativeEndian.PutUint16(b, uint16(f)) }

// TestAssociatePortUnreachableLoopback sends to closed loopback ports, whose
// ICMP port unreachable the kernel generates at once, interleaved with
// datagrams to an echo server: every error is reported, even when a send
// consumed the socket error it left pending, and no echo is lost.
func TestAssociatePortUnreachableLoopback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		family    int
		host      string
		v6        bool
		typ, code uint8
	}{
		{name: "ipv4", family: 4, host: "127.0.0.1", typ: 3, code: 3},
		{name: "ipv6", family: 6, host: "::1", v6: true, typ: 1, code: 4},
		{name: "dual-stack ipv4", host: "127.0.0.1", typ: 3, code: 3},
	} {
		for _, r := range portUnreachableReaders {
			t.Run(tc.name+"/"+r.name, func(t *testing.T) {
				network := "udp4"
				if tc.v6 {
					network = "udp6"
				}
				echo := newUDPEcho(t, network, net.JoinHostPort(tc.host, "0"))
				closed := newUDPSink(t, network, net.JoinHostPort(tc.host, "0"))
				dead := closed.gw()
				closed.pc.Close()
				b := newBackend(t, Config{}, Options{})
				a := associate(t, b, &gateway.AssocRequest{Family: tc.family, Policy: loopback})
				ch := r.start(t, a)
				// A send may still fail when pending errors keep coming
				// (the contract allows it: the datagram is dropped, the
				// association goes on), so only the sent ones count; but
				// most must go out.
				const rounds = 20
				sentDead, sentEcho := 0, 0
				for i := range rounds {
					if err := a.WriteTo([]byte{byte(i)}, dead, gateway.DatagramMeta{}); err != nil {
						t.Logf("WriteTo closed port: %v", err)
					} else {
						sentDead++
					}
					if err := a.WriteTo([]byte{byte(i)}, echo.gw(), gateway.DatagramMeta{}); err != nil {
						t.Logf("WriteTo echo: %v", err)
					} else {
						sentEcho++
					}
				}
				if sentDead < rounds*3/4 || sentEcho < rounds*3/4 {
					t.Fatalf("only %d and %d of %d datagrams sent", sentDead, sentEcho, rounds)
				}
				icmps, echoes := 0, 0
				timeout := time.After(5 * time.Second)
				for icmps < sentDead || echoes < sentEcho {
					select {
					case p := <-ch:
						switch p.Kind {
						case gateway.PacketICMP:
							icmps++
							want := gateway.ICMPError{V6: tc.v6, Type: tc.typ, Code: tc.code,
								Dest: dead.AddrPort(), Reporter: dead.IP}
							if p.ICMP != want {
								t.Fatalf("ICMP %+v, want %+v", p.ICMP, want)
							}
						default:
							echoes++
						}
					case <-timeout:
						t.Fatalf("%d ICMP errors of %d and %d echoes of %d", icmps, sentDead, echoes, sentEcho)
					}
				}
			})
		}
	}
}

// portUnreachableReaders are the two ways to read an association: one
// ReadFrom at a time, and ServePackets' batches (where ICMP errors arrive
// mixed with datagrams inside the read callback).
var portUnreachableReaders = []struct {
	name  string
	start func(testing.TB, *association) <-chan pkt
}{
	{"ReadFrom", func(t testing.TB, a *association) <-chan pkt { return startReader(t, a) }},
	{"ServePackets", func(t testing.TB, a *association) <-chan pkt {
		var out, gets atomic.Int64
		return serveBatches(t, a, &out, &gets)
	}},
}
