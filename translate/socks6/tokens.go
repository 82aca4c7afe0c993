package socks6

import (
	"errors"
	"math/bits"
)

// Token ordering is modular (§7.2): x < y iff 0 < (y − x) mod 2^32 < 2^31.

// TokenLess reports whether token x is before token y in modular order.
func TokenLess(x, y uint32) bool { return x != y && y-x < 1<<31 }

// tokenLessEq reports x ≤ y in modular order.
func tokenLessEq(x, y uint32) bool { return y-x < 1<<31 }

// MaxTokenWindow is the largest window a TokenWindow keeps: its spent bitset
// costs Size/8 bytes, so the protocol's 2^31 − 1 is not accepted.
const MaxTokenWindow = 1 << 20

// ErrWindowSize reports a token window size or watermark out of range.
var ErrWindowSize = errors.New("socks6: token window size out of range")

// TokenWindow is a session's idempotence window on the proxy: the tokens
// [Base, Base+Size) minus those already spent. It is not safe for concurrent
// use; the session that owns it serializes access.
//
// After a token t is spent the window shifts forward one token at a time
// (Size stays fixed) while any of these holds:
//   - t ≥ Base + high: spending far ahead forfeits the oldest tokens;
//   - t ≥ Base + low and the token at Base is spent;
//   - the window has moved past t and the token at Base is spent.
//
// The first two are libsocks6util's token bank; the third drops a spent
// prefix left behind by out-of-order spending at once instead of on a later
// Spend. Only the first ever skips an unspent token.
type TokenWindow struct {
	base      uint32
	size      uint32
	low, high uint32
	head      uint32   // bit index of base in spent
	spent     []uint64 // ring bitset of size bits
}

// NewTokenWindow returns a window [base, base+size) with the given
// watermarks. high = 0 selects the default size/2 (at least 1); low defaults
// to 0 (shift as soon as the lowest token is spent). It fails unless 1 ≤ size
// ≤ MaxTokenWindow and low ≤ high ≤ size.
func NewTokenWindow(base, size, low, high uint32) (*TokenWindow, error) {
	if size < 1 || size > MaxTokenWindow {
		return nil, ErrWindowSize
	}
	if high == 0 {
		high = max(size/2, 1)
	}
	if low > high || high > size {
		return nil, ErrWindowSize
	}
	return &TokenWindow{
		base: base, size: size, low: low, high: high,
		spent: make([]uint64, (size+63)/64),
	}, nil
}

// Base returns the lowest token of the window.
func (w *TokenWindow) Base() uint32 { return w.base }

// Size returns the window's size.
func (w *TokenWindow) Size() uint32 { return w.size }

// Window returns the window as the Idempotence Window option advertises it.
func (w *TokenWindow) Window() Window { return Window{Base: w.base, Size: w.size} }

func (w *TokenWindow) bit(t uint32) (int, uint64) {
	i := (uint64(w.head) + uint64(t-w.base)) % uint64(w.size)
	return int(i / 64), 1 << (i % 64)
}

// Spend spends token t: it reports whether t was eligible (inside the window
// and not spent yet) and, if so, marks it spent before the caller carries out
// the Request, then shifts the window.
func (w *TokenWindow) Spend(t uint32) bool {
	if t-w.base >= w.size { // outside [base, base+size), modular
		return false
	}
	i, m := w.bit(t)
	if w.spent[i]&m != 0 {
		return false
	}
	w.spent[i] |= m
	for {
		bi, bm := w.bit(w.base)
		baseSpent := w.spent[bi]&bm != 0
		if !tokenLessEq(w.base+w.high, t) &&
			!(baseSpent && (tokenLessEq(w.base+w.low, t) || TokenLess(t, w.base))) {
			return true
		}
		w.spent[bi] &^= bm
		w.base++
		w.head++
		if w.head == w.size {
			w.head = 0
		}
	}
}

// Spent returns how many tokens inside the window are spent.
func (w *TokenWindow) Spent() int {
	n := 0
	for _, x := range w.spent {
		n += bits.OnesCount64(x)
	}
	return n
}

// Wallet is a client's view of its session's window: it adopts window
// advertisements and hands out tokens lowest first. It is not safe for
// concurrent use.
type Wallet struct {
	win     Window
	current uint32
	valid   bool
}

// Update adopts an advertised window unless its base is lower (modular) than
// the one already known — replies can arrive out of order — and moves the
// next token up to the new base. It reports whether the window was adopted.
func (w *Wallet) Update(win Window) bool {
	if win.Size == 0 || (w.valid && TokenLess(win.Base, w.win.Base)) {
		return false
	}
	if !w.valid || TokenLess(w.current, win.Base) {
		w.current = win.Base
	}
	w.win, w.valid = win, true
	return true
}

// Next returns the next token to spend, or false when the window is
// exhausted (or none is known).
func (w *Wallet) Next() (uint32, bool) {
	if !w.valid || !TokenLess(w.current, w.win.Base+w.win.Size) {
		return 0, false
	}
	t := w.current
	w.current++
	return t, true
}

// Remaining returns how many tokens Next can still hand out.
func (w *Wallet) Remaining() uint32 {
	if !w.valid || !TokenLess(w.current, w.win.Base+w.win.Size) {
		return 0
	}
	return w.win.Base + w.win.Size - w.current
}
