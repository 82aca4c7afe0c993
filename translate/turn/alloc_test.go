package turn

import (
	"bytes"
	"io"
	"testing"
)

// loopReader replays one buffer forever without allocating.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

var _ io.Reader = (*loopReader)(nil)

func TestHotPathsDoNotAllocate(t *testing.T) {
	payload := bytes.Repeat([]byte{1}, 1200)
	frame, _ := AppendChannelData(nil, 0x4000, payload, true)
	buf := make([]byte, 0, 2048)
	var tid12 [12]byte
	framer := NewFramer(&loopReader{b: append(append([]byte(nil), frame...), vec(t, "TV1")...)}, make([]byte, 4096))
	cases := map[string]func(){
		"Demux":            func() { _ = Demux(frame) },
		"ParseChannelData": func() { _, _ = ParseChannelData(frame) },
		"AppendChannelData": func() {
			_, _ = AppendChannelData(buf[:0], 0x4000, payload, true)
		},
		"PutChannelDataHeader": func() { _, _ = PutChannelDataHeader(frame, 0x4000, len(payload), true) },
		"FrameSize":            func() { _, _, _ = FrameSize(frame) },
		"Framer.Next":          func() { _, _ = framer.Next() },
		"AppendDataIndication": func() {
			_, _ = AppendDataIndication(buf[:0], tid12, tvPeer, payload)
		},
		"AppendSendIndication": func() {
			_, _ = AppendSendIndication(buf[:0], tid12, tvPeer, payload, true)
		},
		"ParseChannelData error": func() { _, _ = ParseChannelData(frame[:3]) },
	}
	for name, f := range cases {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

func BenchmarkParseChannelData(b *testing.B) {
	frame, _ := AppendChannelData(nil, 0x4000, make([]byte, 1200), false)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		_, _ = ParseChannelData(frame)
	}
}

func BenchmarkFramerChannelData(b *testing.B) {
	frame, _ := AppendChannelData(nil, 0x4000, make([]byte, 1200), true)
	f := NewFramer(&loopReader{b: bytes.Repeat(frame, 8)}, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := f.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDataIndication(b *testing.B) {
	buf := make([]byte, 0, 2048)
	data := make([]byte, 1200)
	var id [12]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_, _ = AppendDataIndication(buf[:0], id, tvPeer, data)
	}
}
