package gateway

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
