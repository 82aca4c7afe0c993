package gateway

import "testing"

func TestLenderLendsOneBufferAtATime(t *testing.T) {
	p := NewBufPool(8, 100)
	l := p.Lender()
	if l.Buf() != nil {
		t.Fatal("a new lender holds a buffer")
	}
	b := l.Get()
	if len(b) != 100 || len(l.Buf()) != 108 || &l.Buf()[8] != &b[0] {
		t.Fatalf("Get: %d bytes after the header room, whole %d", len(b), len(l.Buf()))
	}
	b2 := l.Get() // a second Get gives the first back
	if len(b2) != 100 || l.Buf() == nil {
		t.Fatal("second Get")
	}
	l.Put(nil)
	l.Put(nil) // twice is harmless
	if l.Buf() != nil {
		t.Fatal("Put kept the buffer")
	}
	if raceEnabled {
		return // sync.Pool drops some Puts under the race detector
	}
	if n := testing.AllocsPerRun(100, func() { l.Get(); l.Put(nil) }); n > 0 {
		t.Fatalf("%.1f allocations per lend", n)
	}
}
