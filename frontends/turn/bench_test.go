package turn

import (
	"net"
	"testing"
	"time"

	tt "github.com/sixgate/sixgate/translate/turn"
)

// BenchmarkRelay measures one datagram's round trip to a UDP echo peer:
// directly, and relayed through one allocation with ChannelData and with
// Send/Data indications (fake backend: real loopback sockets).
func BenchmarkRelay(b *testing.B) {
	ts := startServer(b, "", "", nil)
	echo := echoPeer(b)
	payload := make([]byte, 200)
	b.Run("direct", func(b *testing.B) {
		c, err := net.DialUDP("udp", nil, echo.LocalAddr().(*net.UDPAddr))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 2048)
		b.SetBytes(int64(len(payload)))
		b.ResetTimer()
		for range b.N {
			c.Write(payload)
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, mode := range []string{"turn-channel", "turn-send"} {
		b.Run(mode, func(b *testing.B) {
			c := dialClient(b, "udp", ts.udp, "alice", "s3cret")
			c.allocate()
			peer := apOf(echo)
			c.bind(0x4000, peer)
			var msg []byte
			if mode == "turn-channel" {
				msg, _ = tt.AppendChannelData(nil, 0x4000, payload, false)
			} else {
				msg, _ = tt.AppendSendIndication(nil, [12]byte{1}, peer, payload, false)
			}
			buf := make([]byte, 2048)
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			for range b.N {
				c.conn.Write(msg)
				c.conn.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.conn.Read(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
