package gateway

import (
	"bufio"
	"io"
	"net"
	"sync"
)

// handshakeReadAhead bounds one read of a handshake: the requests of every
// frontend, with their addresses, options and small initial data, fit.
const handshakeReadAhead = 512

var readAheads = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, handshakeReadAhead) }}

// ReadAhead serves a frontend's handshake reads. On a plain TCP connection
// the codec's small reads (version, header, address, options, credentials)
// come from reads of up to 512 bytes into a pooled buffer, one system call
// for what a client sent together; on anything else (TLS, a connection
// whose first bytes the listener peeked, which is buffered already) they go
// to the connection itself.
type ReadAhead struct {
	c  net.Conn
	br *bufio.Reader
}

// NewReadAhead starts reading c's handshake.
func NewReadAhead(c net.Conn) ReadAhead {
	ra := ReadAhead{c: c}
	if _, plain := c.(*net.TCPConn); plain {
		ra.br = readAheads.Get().(*bufio.Reader)
		ra.br.Reset(c)
	}
	return ra
}

// Reader is what the handshake reads from.
func (ra ReadAhead) Reader() io.Reader {
	if ra.br == nil {
		return ra.c
	}
	return ra.br
}

// Done ends the handshake and returns the connection to use from then on.
// With keep, bytes the client sent after the handshake stay in front of it
// (withBuffered; the buffer stays with the connection); otherwise, or with
// nothing read ahead, it is the connection itself and the buffer goes back
// to the pool.
func (ra ReadAhead) Done(keep bool) net.Conn {
	if ra.br == nil {
		return ra.c
	}
	if keep && ra.br.Buffered() > 0 {
		return withBuffered(ra.c, ra.br)
	}
	ra.br.Reset(nil)
	readAheads.Put(ra.br)
	return ra.c
}
