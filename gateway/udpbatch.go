package gateway

import "sync"

// sendQueue is the datagrams a SendBatch holds until it sends them.
type sendQueue struct{ msgs [][]byte }

func newSendQueue(n int) sendQueue { return sendQueue{msgs: make([][]byte, 0, n)} }

// Add adds b (kept until Send) and reports whether the batch is now full.
func (s *sendQueue) Add(b []byte) (full bool) {
	s.msgs = append(s.msgs, b)
	return len(s.msgs) == cap(s.msgs)
}

// Len is how many datagrams wait.
func (s *sendQueue) Len() int { return len(s.msgs) }

// Msg is waiting datagram i.
func (s *sendQueue) Msg(i int) []byte { return s.msgs[i] }

// Reset forgets the waiting datagrams.
func (s *sendQueue) Reset() {
	clear(s.msgs)
	s.msgs = s.msgs[:0]
}

// PackedBatch is a SendBatch whose datagrams are built one after another in
// a buffer of its own, for senders that put a header in front of each
// payload: the caller's buffer is copied, not kept. Get one with
// GetPackedBatch; Release gives it back. Not for concurrent use.
type PackedBatch struct {
	*SendBatch
	arena []byte
}

// What one PackedBatch holds at most: datagrams, and bytes of them.
const (
	PackedDatagrams = 16
	PackedBytes     = 32 << 10
)

var packedBatches = sync.Pool{New: func() any {
	return &PackedBatch{SendBatch: NewSendBatch(PackedDatagrams), arena: make([]byte, 0, PackedBytes)}
}}

// GetPackedBatch takes an empty batch from a pool.
func GetPackedBatch() *PackedBatch { return packedBatches.Get().(*PackedBatch) }

// Alloc returns the next n bytes of the batch's buffer, to build a datagram
// in and then Add; nil when fewer than n bytes are left.
func (p *PackedBatch) Alloc(n int) []byte {
	start := len(p.arena)
	if cap(p.arena)-start < n {
		return nil
	}
	p.arena = p.arena[:start+n]
	return p.arena[start : start+n : start+n]
}

// Release forgets the datagrams and gives p back to the pool.
func (p *PackedBatch) Release() {
	p.Reset()
	p.arena = p.arena[:0]
	packedBatches.Put(p)
}
