package turn

import (
	"net"
	"sync"
	"time"
)

// streamQueueLen bounds the messages waiting to be written to a TCP or TLS
// client; relayed datagrams beyond it are dropped and counted.
const streamQueueLen = 512

// streamWriteTimeout bounds one write to a stream client.
const streamWriteTimeout = 10 * time.Second

var streamBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// detachMarker, queued, makes the write loop stop after writing what was
// queued before it, leaving the connection open (an RFC 6062 data
// connection turns into raw bytes after its ConnectionBind success).
var detachMarker = new([]byte)

// streamConn is a TCP or TLS client connection's write side: a bounded queue
// drained by one goroutine, so relay goroutines never block on a slow client.
type streamConn struct {
	c         net.Conn
	done      chan struct{}
	closeOnce sync.Once
	flushOnce sync.Once
	// The queue and its write loop start with the first message, so a
	// connection that never gets an answer costs neither.
	startOnce sync.Once
	q         chan *[]byte
	wg        sync.WaitGroup
}

func newStreamConn(c net.Conn) *streamConn {
	return &streamConn{c: c, done: make(chan struct{})}
}

// queue returns the write queue, starting the write loop on first use.
func (s *streamConn) queue() chan *[]byte {
	s.startOnce.Do(func() {
		s.q = make(chan *[]byte, streamQueueLen)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.writeLoop()
		}()
	})
	return s.q
}

// wait waits for the write loop, if it started, to end.
func (s *streamConn) wait() { s.wg.Wait() }

func (s *streamConn) stream() bool { return true }

// send queues a copy of b. Control messages wait for room (until the
// connection ends); data messages are dropped when the queue is full.
func (s *streamConn) send(b []byte, control bool) bool {
	q := s.queue()
	p := streamBufs.Get().(*[]byte)
	*p = append((*p)[:0], b...)
	if control {
		select {
		case q <- p:
			return true
		case <-s.done:
			return false
		}
	}
	select {
	case q <- p:
		return true
	case <-s.done:
	default:
	}
	streamBufs.Put(p)
	return false
}

// closeAfterFlush closes the connection once everything queued before it is
// written.
func (s *streamConn) closeAfterFlush() {
	s.flushOnce.Do(func() {
		select {
		case s.queue() <- nil:
		case <-s.done:
		}
	})
}

// detach makes the write loop return once everything queued before it is
// written, without closing the connection. The caller waits for the loop to
// end before it writes to the connection itself.
func (s *streamConn) detach() {
	select {
	case s.queue() <- detachMarker:
	case <-s.done:
	}
}

// close closes the connection at once.
func (s *streamConn) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.c.Close()
	})
}

// writeLoop writes queued messages, several per system call when they pile
// up, until the connection closes.
func (s *streamConn) writeLoop() {
	var bufs net.Buffers
	var held []*[]byte
	release := func() {
		for _, p := range held {
			if cap(*p) <= 64<<10 {
				streamBufs.Put(p)
			}
		}
		held = held[:0]
		bufs = bufs[:0]
	}
	for {
		var p *[]byte
		select {
		case p = <-s.q:
		case <-s.done:
			return
		}
		last, detach := p == nil, p == detachMarker
		if !last && !detach {
			held = append(held, p)
			bufs = append(bufs, *p)
		more:
			for len(held) < 64 {
				select {
				case p = <-s.q:
					if p == nil {
						last = true
						break more
					}
					if p == detachMarker {
						detach = true
						break more
					}
					held = append(held, p)
					bufs = append(bufs, *p)
				default:
					break more
				}
			}
			s.c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			b := bufs
			_, err := b.WriteTo(s.c)
			release()
			if err != nil {
				s.close()
				return
			}
		}
		if last {
			s.close()
			return
		}
		if detach {
			s.c.SetWriteDeadline(time.Time{})
			return
		}
	}
}
