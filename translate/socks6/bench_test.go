package socks6

import (
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func benchParse(b *testing.B, msg []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, _, err := ParseUDPMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseDatagramIPv4(b *testing.B) {
	benchParse(b, hx(b, "06030018010203040506070801000035c6336407deadbeef"))
}

func BenchmarkParseDatagramIPv6(b *testing.B) {
	benchParse(b, hx(b, "0603002401020304050607080400003520010db8000000000000000000000053deadbeef"))
}

func BenchmarkParseDatagramName(b *testing.B) {
	benchParse(b, hx(b, "0603001e0102030405060708030000350b6578616d706c652e636f6dbeef"))
}

func BenchmarkParseError(b *testing.B) {
	benchParse(b, hx(b, "0604001c010203040506070801000035c633640701020000cb007109"))
}

func benchAppend(b *testing.B, a gateway.Addr) {
	payload := make([]byte, 1200)
	buf := make([]byte, 0, MaxUDPMessageLen)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := AppendDatagram(buf[:0], testAssoc, a, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDatagramIPv4(b *testing.B) { benchAppend(b, ipAddr("198.51.100.7", 53)) }
func BenchmarkAppendDatagramIPv6(b *testing.B) { benchAppend(b, ipAddr("2001:db8::53", 53)) }

func BenchmarkPutDatagramHeader(b *testing.B) {
	hdr := make([]byte, MaxDatagramHeaderLen)
	a := ipAddr("198.51.100.7", 53)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PutDatagramHeader(hdr, testAssoc, a, 1200); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadUDPMessage(b *testing.B) {
	msg, _ := AppendDatagram(nil, testAssoc, ipAddr("198.51.100.7", 53), make([]byte, 1200))
	r := &cycleReader{msg: msg}
	buf := make([]byte, MaxUDPMessageLen)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ReadUDPMessage(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	msg := hx(b, "0601001401bb0001c00002010006000c0102030405060708000d000800000010")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseRequest(msg, Draft11); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadRequest(b *testing.B) {
	msg := hx(b, "0601001801bb0001c000020100010008c101100000010008840103e80001000884020200")
	r := &cycleReader{msg: msg}
	buf := make([]byte, MaxRequestLen)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadRequest(r, buf, Draft11); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendOpReply(b *testing.B) {
	rep := OpReply{Bind: ipAddr("198.51.100.1", 40000), Options: Options{Stack: []StackOption{
		{Leg: LegRemote, Kind: StackUDPError, Avail: AvailYes},
		{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}},
	}}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AppendOpReply(buf[:0], &rep, Draft11); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenWindowSpend(b *testing.B) {
	w, _ := NewTokenWindow(0, 1024, 0, 0)
	b.ReportAllocs()
	t := uint32(0)
	for b.Loop() {
		if !w.Spend(t) {
			b.Fatal("rejected")
		}
		t++
	}
}
