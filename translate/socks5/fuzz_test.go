package socks5

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"
)

// The fuzz targets check, for any input: no panic; every error is a complete
// *FieldError; a reader consumes exactly one message (one byte less fails
// with ErrShort, one byte per Read gives the same value); and whatever
// decodes re-encodes to a canonical form that decodes to the same value and
// encodes to the same bytes again. Seeds live in testdata/fuzz/<FuzzName>
// and run in every `go test`.

func checkFieldErr(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Err == nil || fe.Msg == "" || fe.Field == "" {
		t.Fatalf("error %v (%T) is not a complete *FieldError", err, err)
	}
	_ = err.Error()
}

// fuzzReader checks the properties above for one message type and returns
// the decoded value and the number of bytes it took, or ok false.
func fuzzReader[T any](t *testing.T, data []byte, read func(io.Reader) (T, error), eq func(a, b T) bool, enc func(T) ([]byte, error)) (v T, n int, ok bool) {
	t.Helper()
	r := bytes.NewReader(data)
	v, err := read(r)
	if err != nil {
		checkFieldErr(t, err)
		return v, 0, false
	}
	n = len(data) - r.Len()
	if _, err := read(bytes.NewReader(data[:n-1])); !errors.Is(err, ErrShort) {
		t.Fatalf("% x: one byte short gives %v, want ErrShort", data[:n], err)
	}
	if v1, err := read(iotest.OneByteReader(bytes.NewReader(data))); err != nil || !eq(v1, v) {
		t.Fatalf("one byte per read: %+v, %v; want %+v", v1, err, v)
	}
	e, err := enc(v)
	if err != nil {
		t.Fatalf("re-encode %+v: %v", v, err)
	}
	v2, err := read(bytes.NewReader(e))
	if err != nil || !eq(v2, v) {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", v, v2, err)
	}
	if e2, err := enc(v2); err != nil || !bytes.Equal(e2, e) {
		t.Fatalf("canonical form not stable: % x then % x", e, e2)
	}
	return v, n, true
}

func equal[T comparable](a, b T) bool { return a == b }

func FuzzGreeting(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		g, n, ok := fuzzReader(t, data, ReadGreeting,
			func(a, b Greeting) bool { return slices.Equal(a.Methods, b.Methods) },
			func(g Greeting) ([]byte, error) { return g.Append(nil) })
		if !ok {
			return
		}
		// A greeting has no non-canonical form.
		if enc, _ := g.Append(nil); !bytes.Equal(enc, data[:n]) {
			t.Fatalf("encode(decode(% x)) = % x", data[:n], enc)
		}
		_ = g.Choose(MethodUserPass, MethodNoAuth)
	})
}

func FuzzUserPassRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		u, n, ok := fuzzReader(t, data, ReadUserPassRequest, equal[UserPassRequest],
			func(u UserPassRequest) ([]byte, error) { return u.Append(nil) })
		if !ok {
			return
		}
		if enc, _ := u.Append(nil); !bytes.Equal(enc, data[:n]) {
			t.Fatalf("encode(decode(% x)) = % x", data[:n], enc)
		}
	})
}

func FuzzRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := ReadRequest(bytes.NewReader(data))
		if code, reply := RequestFailure(err); reply && (code == RepSucceeded || err == nil) {
			t.Fatalf("RequestFailure(%v) = %v, %v", err, code, reply)
		}
		fuzzReader(t, data, ReadRequest, equal[Request],
			func(q Request) ([]byte, error) { return q.Append(nil) })
	})
}

func FuzzReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, ok := fuzzReader(t, data, ReadReply, equal[Reply],
			func(p Reply) ([]byte, error) { return p.Append(nil) })
		if ok && (p.Err() == nil) != (p.Code == RepSucceeded) {
			t.Fatalf("Err() of %v", p.Code)
		}
	})
}

func FuzzUDPHeader(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		h, payload, err := ParseUDPHeader(data)
		if err != nil {
			checkFieldErr(t, err)
			return
		}
		hlen := len(data) - len(payload)
		if len(payload) > 0 && &payload[0] != &data[hlen] {
			t.Fatal("payload is not the tail of the datagram")
		}
		if _, _, err := ParseUDPHeader(data[:hlen-1]); !errors.Is(err, ErrShort) {
			t.Fatalf("one byte short gives %v, want ErrShort", err)
		}
		enc, err := h.Append(nil)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", h, err)
		}
		if len(enc) != h.Len() || len(enc) > MaxUDPHeaderLen {
			t.Fatalf("Len() = %d, encoded %d bytes", h.Len(), len(enc))
		}
		h2, p2, err := ParseUDPHeader(append(enc, payload...))
		if err != nil || h2 != h || !bytes.Equal(p2, payload) {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", h, h2, err)
		}
		if enc2, _ := h2.Append(nil); !bytes.Equal(enc2, enc) {
			t.Fatalf("canonical form not stable: % x then % x", enc, enc2)
		}
	})
}
