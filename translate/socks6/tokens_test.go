package socks6

import (
	"math/rand/v2"
	"testing"
)

func TestTokenLess(t *testing.T) {
	tests := []struct {
		x, y uint32
		want bool
	}{
		{1, 2, true}, {2, 1, false}, {5, 5, false},
		{0xffffffff, 0, true}, {0, 0xffffffff, false},
		{0, 1<<31 - 1, true}, {0, 1 << 31, false}, {1 << 31, 0, false},
	}
	for _, tt := range tests {
		if got := TokenLess(tt.x, tt.y); got != tt.want {
			t.Errorf("TokenLess(%#x, %#x) = %v", tt.x, tt.y, got)
		}
	}
}

func TestTokenWindow(t *testing.T) {
	if _, err := NewTokenWindow(0, 0, 0, 0); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := NewTokenWindow(0, MaxTokenWindow+1, 0, 0); err == nil {
		t.Error("oversized window accepted")
	}
	if _, err := NewTokenWindow(0, 16, 9, 8); err == nil {
		t.Error("low > high accepted")
	}
	w, err := NewTokenWindow(0x1000, 16, 0, 0)
	if err != nil || w.Base() != 0x1000 || w.Size() != 16 || w.Window() != (Window{0x1000, 16}) {
		t.Fatalf("%+v %v", w, err)
	}
	steps := []struct {
		t    uint32
		ok   bool
		base uint32
	}{
		{0x0fff, false, 0x1000}, // below the window
		{0x1010, false, 0x1000}, // past the window
		{0x1000, true, 0x1001},  // lowest spent: shift
		{0x1000, false, 0x1001}, // no longer in the window
		{0x1003, true, 0x1001},  // out of order: no shift
		{0x1003, false, 0x1001}, // spent twice
		{0x1002, true, 0x1001},  // 0x1001 still unspent
		{0x1001, true, 0x1004},  // the prefix 1001..1003 goes
		{0x100c, true, 0x1005},  // ≥ base + 8 (high = size/2): forfeit up to t−7
		{0x1004, false, 0x1005}, // forfeited
		{0x1005, true, 0x1006},
	}
	for i, s := range steps {
		if ok := w.Spend(s.t); ok != s.ok || w.Base() != s.base {
			t.Fatalf("step %d: Spend(%#x) = %v, base %#x; want %v, %#x", i, s.t, ok, w.Base(), s.ok, s.base)
		}
	}
	if w.Spent() != 1 { // 0x100c
		t.Errorf("spent = %d", w.Spent())
	}
}

func TestTokenWindowWraps(t *testing.T) {
	w, _ := NewTokenWindow(0xfffffffe, 4, 0, 4)
	for _, tok := range []uint32{0xfffffffe, 0xffffffff, 0, 1} {
		if !w.Spend(tok) {
			t.Fatalf("Spend(%#x) failed", tok)
		}
	}
	if w.Base() != 2 || w.Spend(1) || !w.Spend(5) {
		t.Errorf("base %#x", w.Base())
	}
}

// TestTokenWindowModel spends random tokens and checks the window against a
// simple model: a token is accepted at most once, only inside the window,
// the base never moves backwards nor past the token just spent.
func TestTokenWindowModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		size := uint32(1 + rng.IntN(200))
		high := uint32(1 + rng.IntN(int(size)))
		low := uint32(rng.IntN(int(high) + 1))
		base := rng.Uint32()
		w, err := NewTokenWindow(base, size, low, high)
		if err != nil {
			t.Fatal(err)
		}
		accepted := map[uint32]bool{}
		for i := 0; i < 2000; i++ {
			tok := w.Base() + uint32(rng.IntN(int(size)+8)) - 4
			before := w.Base()
			inWindow := tok-before < size
			ok := w.Spend(tok)
			if ok && (accepted[tok] || !inWindow) {
				t.Fatalf("token %#x accepted twice or outside [%#x, +%d)", tok, before, size)
			}
			if !ok && inWindow && !accepted[tok] {
				t.Fatalf("eligible token %#x rejected", tok)
			}
			if ok {
				accepted[tok] = true
				if TokenLess(w.Base(), before) {
					t.Fatalf("base moved back from %#x to %#x", before, w.Base())
				}
				// Past t the window only moves over spent tokens.
				for x := tok + 1; TokenLess(x, w.Base()); x++ {
					if !accepted[x] {
						t.Fatalf("base moved from %#x to %#x after %#x, over unspent %#x", before, w.Base(), tok, x)
					}
				}
			}
		}
	}
}

func TestWallet(t *testing.T) {
	var w Wallet
	if _, ok := w.Next(); ok {
		t.Fatal("a wallet without a window hands out tokens")
	}
	if !w.Update(Window{Base: 0x90000000, Size: 3}) { // any first window is adopted
		t.Fatal("first window not adopted")
	}
	for i := uint32(0); i < 3; i++ {
		if tok, ok := w.Next(); !ok || tok != 0x90000000+i {
			t.Fatalf("token %d: %#x %v", i, tok, ok)
		}
	}
	if _, ok := w.Next(); ok || w.Remaining() != 0 {
		t.Fatal("window exhausted")
	}
	if w.Update(Window{Base: 0x8fffffff, Size: 100}) {
		t.Error("a lower base was adopted")
	}
	if !w.Update(Window{Base: 0x90000002, Size: 4}) || w.Remaining() != 3 {
		t.Errorf("shifted window: remaining %d", w.Remaining())
	}
	if !w.Update(Window{Base: 0x90000010, Size: 2}) || w.Remaining() != 2 {
		t.Errorf("jumped window: remaining %d", w.Remaining())
	}
	if tok, _ := w.Next(); tok != 0x90000010 {
		t.Errorf("current not moved to the new base: %#x", tok)
	}
	if w.Update(Window{Base: 0x90000020}) {
		t.Error("a window of size 0 was adopted")
	}
}

// TestWalletAndWindow runs a client wallet against a proxy window.
func TestWalletAndWindow(t *testing.T) {
	pw, _ := NewTokenWindow(7, 8, 0, 0)
	var cw Wallet
	cw.Update(pw.Window())
	for i := 0; i < 100; i++ {
		tok, ok := cw.Next()
		if !ok {
			t.Fatalf("wallet exhausted at %d", i)
		}
		if !pw.Spend(tok) {
			t.Fatalf("token %#x rejected", tok)
		}
		cw.Update(pw.Window())
	}
}
