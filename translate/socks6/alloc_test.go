package socks6

import (
	"bytes"
	"io"
	"runtime"
	"testing"
)

// allocated returns the bytes f allocates per call, on average.
func allocated(f func()) uint64 {
	f()
	const runs = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < runs; i++ {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// decoders runs every decoder of the package on b; stream readers get no
// buffer of their own, so they allocate what they need.
func decoders(b []byte) map[string]func() {
	rd := bytes.NewReader(b)
	return map[string]func(){
		"ParseRequest":        func() { ParseRequest(b, Draft11) },
		"ParseRequest-10":     func() { ParseRequest(b, Draft10) },
		"ParseAuthReply":      func() { ParseAuthReply(b, Draft11) },
		"ParseOpReply":        func() { ParseOpReply(b, Draft11) },
		"ParseOptions":        func() { ParseOptions(b[:len(b)&^3], Draft11) },
		"ParseStackOption":    func() { ParseStackOption(b, Draft11) },
		"ParseUDPMessage":     func() { ParseUDPMessage(b) },
		"ParseUserPass":       func() { ParseUserPassRequest(b) },
		"ParseUserPassReply":  func() { ParseUserPassReply(b) },
		"ReadRequest":         func() { rd.Reset(b); ReadRequest(rd, nil, Draft11) },
		"ReadAuthReply":       func() { rd.Reset(b); ReadAuthReply(rd, nil, Draft11) },
		"ReadOpReply":         func() { rd.Reset(b); ReadOpReply(rd, nil, Draft11) },
		"ReadUDPMessage":      func() { rd.Reset(b); ReadUDPMessage(rd, nil) },
		"ReadUserPassRequest": func() { rd.Reset(b); ReadUserPassRequest(rd) },
		"ReadInBandResult":    func() { rd.Reset(b); ReadInBandResult(rd, nil, Draft11) },
	}
}

// allocBound is what decoding n input bytes may allocate: a few times the
// bytes the message delivers (copies of options, the per-option structs,
// buffer growth) plus a constant for the result and error values. It does
// not depend on the lengths a message declares.
func allocBound(n int) uint64 { return uint64(3*n + 2048) }

// TestDecodeAllocationBounds runs every decoder over the whole seed corpus
// and checks that none allocates beyond allocBound of its input.
func TestDecodeAllocationBounds(t *testing.T) {
	var worst float64
	var worstCase string
	for target, seeds := range readCorpus(t) {
		for _, b := range seeds {
			for name, f := range decoders(b) {
				got := allocated(f)
				if got > allocBound(len(b)) {
					t.Errorf("%s on a %d-byte %s seed allocates %d bytes (bound %d): %x", name, len(b), target, got, allocBound(len(b)), b)
				}
				if r := float64(got) / float64(len(b)+1); r > worst && len(b) > 64 {
					worst, worstCase = r, name
				}
			}
		}
	}
	t.Logf("worst allocation per input byte on seeds over 64 bytes: %.2f (%s)", worst, worstCase)
}

// TestDeclaredLengthsDoNotAllocate feeds headers that announce the largest
// messages and deliver 16 bytes: nothing may allocate anywhere near what
// they announce.
func TestDeclaredLengthsDoNotAllocate(t *testing.T) {
	inputs := map[string][]byte{
		"udp 65535":           hx(t, "0603ffff010203040506070801000035"),
		"request options 16k": hx(t, "06014000005000030b6578616d706c65"),
		"auth reply 16k":      hx(t, "0600400000010008c104020000010008"),
		"op reply 16k":        hx(t, "06004000c3500004200106b800000000"),
		"userpass 255/255":    hx(t, "01ff757365720470617373757365720470"),
		"options huge length": hx(t, "fc00fffc00000000fc00fffc00000000"),
	}
	for name, b := range inputs {
		for dec, f := range decoders(b) {
			if got := allocated(f); got > 2048 {
				t.Errorf("%s: %s allocates %d bytes for a %d-byte input", name, dec, got, len(b))
			}
		}
	}
}

// cycleReader yields the same message forever.
type cycleReader struct {
	msg []byte
	off int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	n := copy(p, c.msg[c.off:])
	c.off = (c.off + n) % len(c.msg)
	return n, nil
}

var _ io.Reader = (*cycleReader)(nil)

// TestDatagramZeroAlloc proves the hot path: Datagram decode and encode into
// caller buffers allocate nothing for IP addresses.
func TestDatagramZeroAlloc(t *testing.T) {
	v4 := hx(t, "06030018010203040506070801000035c6336407deadbeef")
	v6 := hx(t, "0603002c01020304050607080400003520010db8000000000000000000000053deadbeefcafebabe00112233")
	buf := make([]byte, 0, MaxUDPMessageLen)
	hdr := make([]byte, MaxDatagramHeaderLen)
	payload := make([]byte, 1200)
	for name, msg := range map[string][]byte{"ipv4": v4, "ipv6": v6} {
		m, _, err := ParseUDPMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		stream := &cycleReader{msg: msg}
		checks := map[string]func(){
			"ParseUDPMessage": func() {
				if _, _, err := ParseUDPMessage(msg); err != nil {
					t.Fatal(err)
				}
			},
			"AppendDatagram": func() {
				if _, err := AppendDatagram(buf[:0], m.Assoc, m.Addr, payload); err != nil {
					t.Fatal(err)
				}
			},
			"PutDatagramHeader": func() {
				if _, err := PutDatagramHeader(hdr, m.Assoc, m.Addr, len(payload)); err != nil {
					t.Fatal(err)
				}
			},
			"AppendUDPMessage": func() {
				if _, err := AppendUDPMessage(buf[:0], &m); err != nil {
					t.Fatal(err)
				}
			},
			"ReadUDPMessage": func() {
				if _, err := ReadUDPMessage(stream, buf[:cap(buf)]); err != nil {
					t.Fatal(err)
				}
			},
		}
		for cname, f := range checks {
			if n := testing.AllocsPerRun(100, f); n != 0 {
				t.Errorf("%s %s: %v allocations per run", name, cname, n)
			}
		}
	}
	// A domain name costs its string, plus the error value that
	// gateway.NameAddr's IP-literal check (netip.ParseAddr) allocates.
	nm := hx(t, "0603001e0102030405060708030000350b6578616d706c652e636f6dbeef")
	if n := testing.AllocsPerRun(100, func() { ParseUDPMessage(nm) }); n > 2 {
		t.Errorf("datagram with a name: %v allocations", n)
	}
}
