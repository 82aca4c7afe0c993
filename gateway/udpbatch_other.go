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
