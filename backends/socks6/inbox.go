package socks6

import (
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sixgate/sixgate/gateway"
)

// inMsg is one received datagram or ICMP error waiting in an inbox. Its
// buffer is reused through inPool, so a steady flow allocates nothing.
type inMsg struct {
	kind gateway.PacketKind
	from gateway.Addr
	icmp gateway.ICMPError
	buf  []byte
}

var inPool = sync.Pool{New: func() any { return &inMsg{buf: make([]byte, 0, 2048)} }}

func getInMsg() *inMsg { return inPool.Get().(*inMsg) }

func putInMsg(m *inMsg) {
	m.buf = m.buf[:0]
	m.from, m.icmp = gateway.Addr{}, gateway.ICMPError{}
	inPool.Put(m)
}

// inboxLen bounds the messages waiting in an inbox; more are dropped, as a
// full socket buffer would drop them.
const inboxLen = 256

// inbox hands messages from a reading goroutine to one reader, with a read
// deadline. It serves datagrams that arrive on the control connection and
// the datagrams of a `via` association.
type inbox struct {
	ch   chan *inMsg
	done <-chan struct{}
	// dl is the read deadline in Unix nanoseconds; 0 = none.
	dl   atomic.Int64
	kick chan struct{}
	// timer is reused by get, which one goroutine calls at a time.
	timer *time.Timer
}

func newInbox(done <-chan struct{}) *inbox {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &inbox{ch: make(chan *inMsg, inboxLen), done: done, kick: make(chan struct{}, 1), timer: t}
}

// put queues m without blocking; it reports false (and recycles m) when
// the inbox is full.
func (q *inbox) put(m *inMsg) bool {
	select {
	case q.ch <- m:
		return true
	default:
		putInMsg(m)
		return false
	}
}

// get waits for the next message. It returns net.ErrClosed once done is
// closed and os.ErrDeadlineExceeded when the read deadline passes.
func (q *inbox) get() (*inMsg, error) {
	for {
		select {
		case m := <-q.ch:
			return m, nil
		case <-q.done:
			return nil, net.ErrClosed
		default:
		}
		var tc <-chan time.Time
		if dl := q.dl.Load(); dl != 0 {
			d := time.Until(time.Unix(0, dl))
			if d <= 0 {
				return nil, os.ErrDeadlineExceeded
			}
			q.timer.Reset(d)
			tc = q.timer.C
		}
		select {
		case m := <-q.ch:
			q.timer.Stop()
			return m, nil
		case <-q.done:
			q.timer.Stop()
			return nil, net.ErrClosed
		case <-tc:
		case <-q.kick:
			q.timer.Stop()
		}
	}
}

// setDeadline sets the read deadline; a zero t means none. A get waiting
// now re-reads it.
func (q *inbox) setDeadline(t time.Time) {
	var v int64
	if !t.IsZero() {
		v = t.UnixNano()
	}
	q.dl.Store(v)
	select {
	case q.kick <- struct{}{}:
	default:
	}
}
