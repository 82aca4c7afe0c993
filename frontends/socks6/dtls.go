package socks6

import (
	"context"
	"errors"
	"net"
)

// serveDTLS serves the DTLS relay endpoint.
func (f *Frontend) serveDTLS(ctx context.Context, pc *net.UDPConn) error {
	<-ctx.Done()
	return errors.New("socks6: dtls not served yet")
}
