//go:build !linux

package gateway

import (
	"context"
	"net"
	"net/netip"
)

// ServeUDP reads c's datagrams one at a time into the first buffer from
// get and calls fn for each (see the Linux version, which reads in batches),
// until reading fails or ctx is done.
func ServeUDP(ctx context.Context, c *net.UDPConn, get func() [][]byte, put func(), oobSize int, fn func(i int, b []byte, from netip.AddrPort, oob []byte)) error {
	var oob []byte
	if oobSize > 0 {
		oob = make([]byte, oobSize)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		bufs := get()
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(bufs[0], oob)
		if err == nil {
			fn(0, bufs[0][:n], from, oob[:oobn])
		}
		put()
		if err != nil {
			return err
		}
	}
}

// SendBatch gathers datagrams to one destination, with the same control
// messages; on this OS Send sends them one at a time.
type SendBatch struct{ sendQueue }

// NewSendBatch makes a batch of up to n datagrams.
func NewSendBatch(n int) *SendBatch { return &SendBatch{newSendQueue(n)} }

// Send sends the waiting datagrams to dst with control messages oob and
// returns how many it sent before an error.
func (s *SendBatch) Send(c *net.UDPConn, dst netip.AddrPort, oob []byte) (int, error) {
	for i, b := range s.msgs {
		if _, _, err := c.WriteMsgUDPAddrPort(b, oob, dst); err != nil {
			return i, err
		}
	}
	return len(s.msgs), nil
}
