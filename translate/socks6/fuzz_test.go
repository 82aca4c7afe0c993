package socks6

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// Fuzz targets, one per parser. Each runs its seed corpus (testdata/fuzz/<Name>,
// every §9 vector included) in a plain `go test`. They check that decoding
// never panics, fails only with a *FieldError, and that what decodes
// re-encodes to a fixpoint: decode(encode(decode(x))) == decode(x).

var dialects = [...]Dialect{Draft11, Draft10}

// typedErr fails unless err is a *FieldError wrapping a sentinel.
func typedErr(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Msg == "" || fe.Field == "" || fe.Err == nil {
		t.Fatalf("untyped error %T: %v", err, err)
	}
}

func FuzzRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range dialects {
			r, n, err := ParseRequest(b, d)
			if err != nil {
				typedErr(t, err)
				continue
			}
			if n > len(b) || n > MaxRequestLen {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			x, err := AppendRequest(nil, &r, d)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			r2, n2, err := ParseRequest(x, d)
			r.Options.Malformed = nil
			if err != nil || n2 != len(x) || !reflect.DeepEqual(r, r2) {
				t.Fatalf("not a fixpoint (%v):\n%+v\n%+v", err, r, r2)
			}
		}
	})
}

func FuzzAuthReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range dialects {
			r, n, err := ParseAuthReply(b, d)
			if err != nil {
				typedErr(t, err)
				continue
			}
			if n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			x, err := AppendAuthReply(nil, &r, d)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			r2, n2, err := ParseAuthReply(x, d)
			r.Options.Malformed = nil
			if err != nil || n2 != len(x) || !reflect.DeepEqual(r, r2) {
				t.Fatalf("not a fixpoint (%v):\n%+v\n%+v", err, r, r2)
			}
			_ = r.Continues()
			_, _, _ = r.Options.UserPassResult()
		}
	})
}

func FuzzOpReply(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range dialects {
			r, n, err := ParseOpReply(b, d)
			if err != nil {
				typedErr(t, err)
				continue
			}
			if n > len(b) {
				t.Fatalf("consumed %d of %d", n, len(b))
			}
			x, err := AppendOpReply(nil, &r, d)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", r, err)
			}
			r2, n2, err := ParseOpReply(x, d)
			r.Options.Malformed = nil
			if err != nil || n2 != len(x) || !reflect.DeepEqual(r, r2) {
				t.Fatalf("not a fixpoint (%v):\n%+v\n%+v", err, r, r2)
			}
			var l Legs
			l.Remote.TTL.Outcome = 1
			l.ApplyReply(r.Options.Stack)
		}
	})
}

func FuzzOptions(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = WalkOptions(b, func(OptionKind, []byte) bool { return true })
		for _, d := range dialects {
			o, err := ParseOptions(b, d)
			if err != nil {
				typedErr(t, err)
				if len(b)%4 == 0 && len(b) <= MaxOptionsLen {
					t.Fatalf("valid options length rejected: %v", err)
				}
				continue
			}
			if o.Malformed != nil {
				typedErr(t, o.Malformed)
			}
			x, err := AppendOptions(nil, &o, d)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", o, err)
			}
			if len(x) > len(b) {
				t.Fatalf("re-encoded options grew from %d to %d bytes", len(b), len(x))
			}
			o2, err := ParseOptions(x, d)
			o.Malformed = nil
			if err != nil || !reflect.DeepEqual(o, o2) {
				t.Fatalf("not a fixpoint (%v):\n%+v\n%+v", err, o, o2)
			}
			// The mappings accept whatever decodes.
			for _, cmd := range []Command{CmdConnect, CmdUDPAssociate} {
				l := SplitStack(&Request{Command: cmd, Options: o}, d)
				_ = l.Echo(d)
				_ = l.RequestOptions(d)
			}
		}
	})
}

func FuzzStackOption(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range dialects {
			o, err := ParseStackOption(b, d)
			if err != nil {
				typedErr(t, err)
				if !o.Raw {
					continue
				}
			}
			x, err := AppendStackOption(nil, o, d)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", o, err)
			}
			if o2, _ := ParseStackOption(x, d); o2 != o {
				t.Fatalf("not a fixpoint: %+v %+v", o, o2)
			}
		}
	})
}

// udpFixpoint checks one decoded UDP message.
func udpFixpoint(t *testing.T, b []byte) (UDPMessage, bool) {
	m, n, err := ParseUDPMessage(b)
	if err != nil {
		typedErr(t, err)
		return m, false
	}
	if n > len(b) || n < UDPHeaderLen {
		t.Fatalf("consumed %d of %d", n, len(b))
	}
	if m.Type == UDPDatagram && len(m.Payload) > 0 && &m.Payload[len(m.Payload)-1] != &b[n-1] {
		t.Fatal("payload is not the end of the message")
	}
	x, err := AppendUDPMessage(nil, &m)
	if errors.Is(err, ErrTooLong) && m.Addr.IP.Is6() {
		return m, true // an IPv6 literal sent as a short name grows back
	}
	if err != nil {
		t.Fatalf("re-encode %+v: %v", m, err)
	}
	m2, n2, err := ParseUDPMessage(x)
	if err != nil || n2 != len(x) || !reflect.DeepEqual(m, m2) {
		t.Fatalf("not a fixpoint (%v):\n%+v\n%+v", err, m, m2)
	}
	return m, true
}

func FuzzUDPMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { udpFixpoint(t, b) })
}

// forceType makes b a message of type typ, so that the fuzzer explores that
// message's layout.
func forceType(b []byte, typ UDPType) []byte {
	b = append([]byte(nil), b...)
	if len(b) > 1 {
		b[0], b[1] = Version, byte(typ)
	}
	return b
}

func FuzzDatagram(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		b = forceType(b, UDPDatagram)
		m, ok := udpFixpoint(t, b)
		if !ok {
			return
		}
		_ = m.IsReceiveFirst()
		// The put-style header agrees with the append-style encoding.
		buf := make([]byte, MaxDatagramHeaderLen)
		h, err := PutDatagramHeader(buf, m.Assoc, m.Addr, len(m.Payload))
		if err == nil {
			x, _ := AppendDatagram(nil, m.Assoc, m.Addr, m.Payload)
			if !bytes.Equal(buf[:h], x[:h]) {
				t.Fatalf("PutDatagramHeader %x, AppendDatagram %x", buf[:h], x[:h])
			}
		}
	})
}

func FuzzErrorMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		b = forceType(b, UDPError)
		m, ok := udpFixpoint(t, b)
		if !ok {
			return
		}
		e, ok := ICMPFor(&m)
		if !ok {
			return
		}
		back, ok := ErrorMessageFor(m.Assoc, e)
		v4TooBig := m.Code == ErrorCodeDatagramTooBig && !e.V6
		if ok == v4TooBig || (ok && (back.Code != m.Code || back.Addr.IP != m.Addr.IP.Unmap() || back.Addr.Port != m.Addr.Port)) {
			t.Fatalf("ICMP round trip: %+v -> %+v -> %+v %v", m, e, back, ok)
		}
	})
}

func FuzzAssocInit(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := udpFixpoint(t, forceType(b, UDPInit)); ok {
			if x := AppendAssocInit(nil, m.Assoc); len(x) != UDPHeaderLen {
				t.Fatalf("%x", x)
			}
		}
	})
}

func FuzzAssocConfirm(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := udpFixpoint(t, forceType(b, UDPConfirm)); ok {
			if x := AppendAssocConfirm(nil, m.Assoc); len(x) != UDPHeaderLen {
				t.Fatalf("%x", x)
			}
		}
	})
}

func FuzzUserPass(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		u, n, err := ParseUserPassRequest(b)
		u2, err2 := ReadUserPassRequest(iotest.OneByteReader(bytes.NewReader(b)))
		if (err == nil) != (err2 == nil) || u != u2 {
			t.Fatalf("slice %+v %v, stream %+v %v", u, err, u2, err2)
		}
		if err != nil {
			typedErr(t, err)
		} else if x, err := AppendUserPassRequest(nil, u); err != nil || !bytes.Equal(x, b[:n]) {
			t.Fatalf("re-encoded %x, want %x (%v)", x, b[:n], err)
		}
		r, n, err := ParseUserPassReply(b)
		if err != nil {
			typedErr(t, err)
		} else if x := AppendUserPassReply(nil, r); !bytes.Equal(x, b[:n]) {
			t.Fatalf("re-encoded %x, want %x", x, b[:n])
		}
	})
}

func FuzzReadRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range dialects {
			want, n, werr := ParseRequest(b, d)
			for _, small := range []bool{false, true} {
				rd := bytes.NewReader(b)
				var buf []byte
				if !small {
					buf = make([]byte, MaxRequestLen)
				}
				got, err := ReadRequest(iotest.OneByteReader(rd), buf, d)
				read := len(b) - rd.Len()
				if (err == nil) != (werr == nil) {
					t.Fatalf("stream %v, slice %v", err, werr)
				}
				if err == nil && (!reflect.DeepEqual(got, want) || read != n) {
					t.Fatalf("stream read %d bytes %+v, slice %d %+v", read, got, n, want)
				}
				if err != nil && err != io.EOF {
					typedErr(t, err)
				}
				if errors.Is(err, ErrVersion) && read != 1 {
					t.Fatalf("version mismatch after %d bytes", read)
				}
			}
		}
	})
}

func FuzzReadReplies(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Draft11
		rd := bytes.NewReader(b)
		r := iotest.HalfReader(rd)
		wantA, n, werr := ParseAuthReply(b, d)
		gotA, err := ReadAuthReply(r, nil, d)
		if (err == nil) != (werr == nil) || (err == nil && (!reflect.DeepEqual(gotA, wantA) || len(b)-rd.Len() != n)) {
			t.Fatalf("auth reply: stream %+v %v, slice %+v %v", gotA, err, wantA, werr)
		}
		if err != nil {
			return
		}
		rest := b[n:]
		wantO, n, werr := ParseOpReply(rest, d)
		gotO, err := ReadOpReply(r, nil, d)
		if (err == nil) != (werr == nil) || (err == nil && (!reflect.DeepEqual(gotO, wantO) || len(rest)-rd.Len() != n)) {
			t.Fatalf("operation reply: stream %+v %v, slice %+v %v", gotO, err, wantO, werr)
		}
	})
}

func FuzzReadUDP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		rd := bytes.NewReader(b)
		r := iotest.OneByteReader(rd)
		rest := b
		for {
			want, n, werr := ParseUDPMessage(rest)
			got, err := ReadUDPMessage(r, nil)
			if err == io.EOF && len(rest) == 0 {
				return
			}
			if (err == nil) != (werr == nil) {
				t.Fatalf("stream %v, slice %v", err, werr)
			}
			if err != nil {
				typedErr(t, err)
				return
			}
			if !reflect.DeepEqual(got, want) || len(rest)-rd.Len() != n {
				t.Fatalf("stream %+v, slice %+v", got, want)
			}
			rest = rest[n:]
		}
	})
}
