package gateway

import "testing"

// countingWriter is a BatchWriter that counts what it is handed and how
// often it is flushed.
type countingWriter struct{ writes, flushes int }

func (w *countingWriter) WriteToLater([]byte, Addr, DatagramMeta) error { w.writes++; return nil }
func (w *countingWriter) Flush()                                        { w.flushes++ }

// HeldWrites flushes each writer a batch wrote to once, and after a Flush
// only the writers written to since.
func TestHeldWrites(t *testing.T) {
	var h HeldWrites
	a, b := &countingWriter{}, &countingWriter{}
	for _, w := range []*countingWriter{a, b, a, a} {
		if err := h.WriteToLater(w, []byte("x"), Addr{}, DatagramMeta{}); err != nil {
			t.Fatal(err)
		}
	}
	h.Flush()
	if a.writes != 3 || b.writes != 1 || a.flushes != 1 || b.flushes != 1 {
		t.Fatalf("a %+v, b %+v", *a, *b)
	}
	h.Flush() // nothing written since
	h.WriteToLater(b, nil, Addr{}, DatagramMeta{})
	h.Flush()
	if a.flushes != 1 || b.flushes != 2 {
		t.Fatalf("after a second batch: a %+v, b %+v", *a, *b)
	}
}
