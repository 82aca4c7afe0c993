package direct

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

// BenchmarkUDPSend compares the cost of sending alone: through an
// association and from a plain socket, to a socket that never reads (the
// kernel drops what does not fit its buffer).
func BenchmarkUDPSend(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	dst := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	payload := make([]byte, 64)
	b.Run("direct", func(b *testing.B) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		meta gateway.DatagramMeta
	}{{"association", gateway.DatagramMeta{}}, {"association-ttl-tos", gateway.DatagramMeta{TTL: 9, TOS: 0x20, HasTOS: true}}} {
		b.Run(tc.name, func(b *testing.B) {
			be, err := New("bench", Config{}, Options{Own: gateway.NewOwnAddrs()})
			if err != nil {
				b.Fatal(err)
			}
			a, err := be.Associate(context.Background(), &gateway.AssocRequest{Family: 4, Policy: loopback})
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			to := gateway.AddrFromAddrPort(dst)
			b.ReportAllocs()
			for b.Loop() {
				if err := a.WriteTo(payload, to, tc.meta); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUDPRelay compares datagrams relayed through an association to a
// local UDP echo server with the same traffic sent from a plain socket:
// "pingpong" waits for each echo, "burst" sends 16 datagrams and then reads
// the 16 echoes. An op is one datagram out and its echo back.
func BenchmarkUDPRelay(b *testing.B) {
	echo := newUDPEcho(b, "udp4", "127.0.0.1:0")
	dst := echo.addr()
	type side struct {
		write func([]byte) error
		read  func([]byte) error
	}
	direct := func(b *testing.B) side {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return side{
			write: func(p []byte) error { _, err := c.WriteToUDPAddrPort(p, dst); return err },
			read:  func(p []byte) error { _, _, err := c.ReadFromUDPAddrPort(p); return err },
		}
	}
	assoc := func(b *testing.B) side {
		be, err := New("bench", Config{}, Options{Own: gateway.NewOwnAddrs()})
		if err != nil {
			b.Fatal(err)
		}
		a, err := be.Associate(context.Background(), &gateway.AssocRequest{Family: 4, Policy: loopback})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { a.Close() })
		to := echo.gw()
		return side{
			write: func(p []byte) error { return a.WriteTo(p, to, gateway.DatagramMeta{}) },
			read: func(p []byte) error {
				pkt, err := a.ReadFrom(p)
				if err == nil && pkt.Kind != gateway.PacketData {
					err = fmt.Errorf("unexpected ICMP %+v", pkt.ICMP)
				}
				return err
			},
		}
	}
	for _, size := range []int{64, 1200} {
		for _, mode := range []string{"pingpong", "burst"} {
			for _, kind := range []struct {
				name string
				open func(*testing.B) side
			}{{"direct", direct}, {"association", assoc}} {
				b.Run(fmt.Sprintf("%s/%s/%d", mode, kind.name, size), func(b *testing.B) {
					s := kind.open(b)
					payload, buf := make([]byte, size), make([]byte, 2048)
					burst := 1
					if mode == "burst" {
						burst = 16
					}
					b.SetBytes(int64(size))
					b.ReportAllocs()
					n := 0
					for b.Loop() {
						if err := s.write(payload); err != nil {
							b.Fatal(err)
						}
						n++
						if n%burst != 0 {
							continue
						}
						for range burst {
							if err := s.read(buf); err != nil {
								b.Fatal(err)
							}
						}
					}
					for range n % burst {
						if err := s.read(buf); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "datagrams/s")
				})
			}
		}
	}
}
