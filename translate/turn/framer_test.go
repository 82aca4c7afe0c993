package turn

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/pion/stun"
)

func TestParseChannelData(t *testing.T) {
	tests := []struct {
		hex  string
		err  error
		data string
	}{
		{"40000005" + "68656c6c6f", nil, "hello"},
		{"40000005" + "68656c6c6f000000" + "ffff", nil, "hello"}, // trailing ignored
		{"4fff0000", nil, ""},
		{"40000006" + "68656c6c6f", ErrTruncated, ""},
		{"400000", ErrTruncated, ""},
		{"3fff0000", ErrChannelRange, ""},
		{"50000000", ErrChannelRange, ""},
	}
	for _, tc := range tests {
		b := mustHex(t, tc.hex)
		cd, err := ParseChannelData(b)
		if !errors.Is(err, tc.err) || (err == nil && string(cd.Data) != tc.data) {
			t.Errorf("%s: %+v %v", tc.hex, cd, err)
		}
	}
	if _, err := AppendChannelData(nil, 0x3FFF, nil, false); !errors.Is(err, ErrChannelRange) {
		t.Errorf("append 0x3fff: %v", err)
	}
	if _, err := AppendChannelData(nil, 0x4000, make([]byte, 0x10000), true); !errors.Is(err, ErrTooLarge) {
		t.Errorf("append 64 KiB: %v", err)
	}
	big, err := AppendChannelData(nil, 0x4000, make([]byte, 0xFFFF), true)
	if err != nil || len(big) != MaxChannelDataSize || ChannelDataSize(0xFFFF, true) != MaxChannelDataSize {
		t.Errorf("largest frame %d %v", len(big), err)
	}
	if _, size, _ := FrameSize(big); size != MaxChannelDataSize {
		t.Errorf("frame size %d: Length 0xFFFF must not wrap", size)
	}
	buf := make([]byte, 8)
	if _, err := PutChannelDataHeader(buf, 0x4000, 5, true); !errors.Is(err, ErrTruncated) {
		t.Errorf("short buffer: %v", err)
	}
	if Demux(nil) != KindOther || Demux([]byte{0x55}) != KindReservedChannel || Demux([]byte{0x80}) != KindOther {
		t.Error("demux")
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'a' && c <= 'f':
				v |= byte(c - 'a' + 10)
			}
		}
		b[i] = v
	}
	return b
}

// stream is the coturn T5 case and more: ChannelData, then a STUN request in
// the same segment, then two ChannelData frames, then a large STUN message.
func stream(t testing.TB) ([]byte, []Frame) {
	var b []byte
	var want []Frame
	add := func(f Frame, wire []byte) {
		b = append(b, wire...)
		want = append(want, f)
	}
	tv10 := vec(t, "TV10")
	add(Frame{Kind: KindChannelData, Raw: tv10[:9], Channel: 0x4000, Data: tv10[4:9]}, tv10)
	tv1 := vec(t, "TV1")
	add(Frame{Kind: KindSTUN, Raw: tv1}, tv1)
	empty, _ := AppendChannelData(nil, 0x4FFF, nil, true)
	add(Frame{Kind: KindChannelData, Raw: empty, Channel: 0x4FFF, Data: empty[4:]}, empty)
	abc, _ := AppendChannelData(nil, 0x4001, []byte("abc"), true)
	add(Frame{Kind: KindChannelData, Raw: abc[:7], Channel: 0x4001, Data: abc[4:7]}, abc)
	ind, _ := NewDataIndication(tid("60"), tvPeer, bytes.Repeat([]byte{7}, 3000))
	add(Frame{Kind: KindSTUN, Raw: ind.Raw}, ind.Raw)
	return b, want
}

func sameFrame(a, b Frame) bool {
	return a.Kind == b.Kind && a.Channel == b.Channel && bytes.Equal(a.Raw, b.Raw) && bytes.Equal(a.Data, b.Data)
}

func TestFramer(t *testing.T) {
	b, want := stream(t)
	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return bytes.NewReader(b) },
		"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) },
		"half":     func() io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"data+eof": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	for name, r := range readers {
		for _, size := range []int{0, 3100, 4096} {
			f := NewFramer(r(), make([]byte, size))
			for i, w := range want {
				got, err := f.Next()
				if err != nil || !sameFrame(got, w) {
					t.Fatalf("%s/%d: frame %d: %+v %v", name, size, i, got.Kind, err)
				}
			}
			if _, err := f.Next(); err != io.EOF {
				t.Errorf("%s/%d: end: %v", name, size, err)
			}
		}
	}
	// A frame larger than the buffer is a permanent error.
	f := NewFramer(bytes.NewReader(b), make([]byte, 1024))
	for i := 0; i < 4; i++ {
		if _, err := f.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Next(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too large: %v", err)
	}
	if _, err := f.Next(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("not sticky: %v", err)
	}
	// Cut inside a frame.
	f = NewFramer(bytes.NewReader(b[:15]), nil)
	if _, err := f.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("cut: %v", err)
	}
	// Unknown first bytes, bad cookie, bad length.
	for _, bad := range [][]byte{{0x55, 0, 0, 0}, {0x80}, patch(vec(t, "TV1"), 4, 0), patch(vec(t, "TV1"), 2, 0, 7)} {
		f = NewFramer(bytes.NewReader(bad), nil)
		if _, err := f.Next(); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("%x: %v", bad, err)
		}
	}
	f = NewFramer(iotest.ErrReader(io.ErrClosedPipe), nil)
	if _, err := f.Next(); err != io.ErrClosedPipe {
		t.Errorf("read error: %v", err)
	}
}

// TestFramerBuffered: after an RFC 6062 ConnectionBind the stream carries
// raw bytes; those read ahead are handed back.
func TestFramerBuffered(t *testing.T) {
	b := append(vec(t, "TV25"), "raw-from-client"...)
	f := NewFramer(bytes.NewReader(b), nil)
	fr, err := f.Next()
	if err != nil || fr.Kind != KindSTUN {
		t.Fatal(err)
	}
	m := new(stun.Message)
	if err := Decode(fr.Raw, m); err != nil || m.Type != TypeConnectionBindRequest {
		t.Fatal(err)
	}
	if got := f.Buffered(); string(got) != "raw-from-client" {
		t.Errorf("buffered %q", got)
	}
}

func TestScanFrames(t *testing.T) {
	b, want := stream(t)
	sc := bufio.NewScanner(iotest.HalfReader(bytes.NewReader(b)))
	sc.Buffer(make([]byte, 64), MaxFrameSize)
	sc.Split(ScanFrames)
	i := 0
	for sc.Scan() {
		kind, size, err := FrameSize(sc.Bytes())
		if err != nil || kind != want[i].Kind || size != len(sc.Bytes()) {
			t.Errorf("token %d: %v %d %v", i, kind, size, err)
		}
		i++
	}
	if sc.Err() != nil || i != len(want) {
		t.Errorf("scanned %d, err %v", i, sc.Err())
	}
	sc = bufio.NewScanner(bytes.NewReader(b[:10]))
	sc.Split(ScanFrames)
	for sc.Scan() {
	}
	if sc.Err() != io.ErrUnexpectedEOF {
		t.Errorf("cut: %v", sc.Err())
	}
}
