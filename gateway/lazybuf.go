package gateway

import "sync"

// BufPool is a pool of datagram buffers with room for a header in front,
// lent one at a time to a reader through a Lender (see ReadLazy).
type BufPool struct {
	head int
	pool sync.Pool
}

// NewBufPool makes buffers of head+size bytes.
func NewBufPool(head, size int) *BufPool {
	p := &BufPool{head: head}
	p.pool.New = func() any { b := make([]byte, head+size); return &b }
	return p
}

// Lender lends one reader the pool's buffers: Get and Put are the get and
// put of ReadLazy. Not for concurrent use.
type Lender struct {
	p   *BufPool
	cur *[]byte
}

// Lender returns a lender of p's buffers.
func (p *BufPool) Lender() *Lender { return &Lender{p: p} }

// Get takes a buffer and returns the part after the header room.
func (l *Lender) Get() []byte {
	l.Put(nil)
	l.cur = l.p.pool.Get().(*[]byte)
	return (*l.cur)[l.p.head:]
}

// Put gives the buffer back, if one is lent.
func (l *Lender) Put([]byte) {
	if l.cur != nil {
		l.p.pool.Put(l.cur)
		l.cur = nil
	}
}

// Buf is the whole buffer lent now (header room included), or nil.
func (l *Lender) Buf() []byte {
	if l.cur == nil {
		return nil
	}
	return *l.cur
}

// ReadBatch is how many buffers a batch lender lends at once: the most
// datagrams a reader reads, and ServePackets hands over, between flushes.
const ReadBatch = 8

// BatchLender lends a reader batches of a pool's buffers (ServeUDP,
// PacketServer). Not for concurrent use.
type BatchLender struct {
	p    *BufPool
	cur  []*[]byte
	data [][]byte
}

// BatchLender returns a lender of batches of p's buffers.
func (p *BufPool) BatchLender() *BatchLender {
	return &BatchLender{p: p, cur: make([]*[]byte, 0, ReadBatch), data: make([][]byte, 0, ReadBatch)}
}

// Get takes a batch: the parts of the buffers after the head room.
func (l *BatchLender) Get() [][]byte {
	l.Put()
	for i := 0; i < ReadBatch; i++ {
		b := l.p.pool.Get().(*[]byte)
		l.cur = append(l.cur, b)
		l.data = append(l.data, (*b)[l.p.head:])
	}
	return l.data
}

// Put gives the batch back.
func (l *BatchLender) Put() {
	for i, b := range l.cur {
		l.p.pool.Put(b)
		l.cur[i], l.data[i] = nil, nil
	}
	l.cur, l.data = l.cur[:0], l.data[:0]
}

// Buf is the whole buffer i of the batch lent now (head room included), or
// nil.
func (l *BatchLender) Buf(i int) []byte {
	if i < 0 || i >= len(l.cur) {
		return nil
	}
	return *l.cur[i]
}
