package socks6

import (
	"bytes"
	"reflect"
	"testing"
)

const roundTrips = 3000

// The round-trip property: for every message x the encoders produce,
// encode(decode(x)) == x, decode consumes exactly x, and decoding again gives
// the same value.

func TestRoundTripRequest(t *testing.T) {
	g := newGen(1)
	for i := 0; i < roundTrips; i++ {
		d := g.dialect()
		m := g.request(d)
		x, err := AppendRequest(nil, &m, d)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, n, err := ParseRequest(x, d)
		if err != nil || n != len(x) {
			t.Fatalf("decode %x: n=%d err=%v", x, n, err)
		}
		y, err := AppendRequest(nil, &got, d)
		if err != nil || !bytes.Equal(x, y) {
			t.Fatalf("round trip\n x %x\n y %x (%v)", x, y, err)
		}
		again, _, _ := ParseRequest(y, d)
		if !reflect.DeepEqual(again, got) {
			t.Fatalf("unstable decode %+v / %+v", again, got)
		}
		if m.Addr != got.Addr {
			t.Fatalf("address %v became %v", m.Addr, got.Addr)
		}
	}
}

func TestRoundTripReplies(t *testing.T) {
	g := newGen(2)
	for i := 0; i < roundTrips; i++ {
		d := g.dialect()
		a := g.authReply(d)
		x, err := AppendAuthReply(nil, &a, d)
		if err != nil {
			t.Fatalf("encode %+v: %v", a, err)
		}
		gotA, n, err := ParseAuthReply(x, d)
		if err != nil || n != len(x) {
			t.Fatalf("decode %x: n=%d err=%v", x, n, err)
		}
		if y, err := AppendAuthReply(nil, &gotA, d); err != nil || !bytes.Equal(x, y) {
			t.Fatalf("auth reply round trip\n x %x\n y %x (%v)", x, y, err)
		}

		o := g.opReply(d)
		x, err = AppendOpReply(nil, &o, d)
		if err != nil {
			t.Fatalf("encode %+v: %v", o, err)
		}
		gotO, n, err := ParseOpReply(x, d)
		if err != nil || n != len(x) || gotO.Bind != o.Bind {
			t.Fatalf("decode %x: n=%d err=%v", x, n, err)
		}
		if y, err := AppendOpReply(nil, &gotO, d); err != nil || !bytes.Equal(x, y) {
			t.Fatalf("operation reply round trip\n x %x\n y %x (%v)", x, y, err)
		}
	}
}

func TestRoundTripOptions(t *testing.T) {
	g := newGen(3)
	for i := 0; i < roundTrips; i++ {
		d := g.dialect()
		o := g.options(d, g.r.IntN(2) == 0)
		x, err := AppendOptions(nil, &o, d)
		if err != nil {
			t.Fatalf("encode %+v: %v", o, err)
		}
		got, err := ParseOptions(x, d)
		if err != nil || got.Malformed != nil {
			t.Fatalf("decode %x: %v %v", x, err, got.Malformed)
		}
		if y, err := AppendOptions(nil, &got, d); err != nil || !bytes.Equal(x, y) {
			t.Fatalf("options round trip\n x %x\n y %x (%v)", x, y, err)
		}
		if !reflect.DeepEqual(got.Stack, o.Stack) && len(o.Stack) > 0 {
			t.Fatalf("stack options %+v became %+v", o.Stack, got.Stack)
		}
		// Every stack option alone.
		for _, so := range o.Stack {
			b, err := AppendStackOption(nil, so, d)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseStackOption(b, d)
			if p != so || (err != nil && !so.Raw) {
				t.Fatalf("stack option %+v became %+v (%v)", so, p, err)
			}
		}
	}
}

func TestRoundTripUDP(t *testing.T) {
	g := newGen(4)
	for i := 0; i < roundTrips; i++ {
		m := g.udp()
		x, err := AppendUDPMessage(nil, &m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, n, err := ParseUDPMessage(x)
		if err != nil || n != len(x) {
			t.Fatalf("decode %x: n=%d err=%v", x, n, err)
		}
		if y, err := AppendUDPMessage(nil, &got); err != nil || !bytes.Equal(x, y) {
			t.Fatalf("udp round trip\n x %x\n y %x (%v)", x, y, err)
		}
		if m.Type == UDPDatagram {
			if got.Addr != m.Addr || !bytes.Equal(got.Payload, m.Payload) {
				t.Fatalf("datagram %+v became %+v", m, got)
			}
			// The put-style header gives the same bytes.
			h, err := PutDatagramHeader(make([]byte, MaxDatagramHeaderLen), m.Assoc, m.Addr, len(m.Payload))
			if err != nil || h != len(x)-len(m.Payload) {
				t.Fatalf("PutDatagramHeader: %d %v", h, err)
			}
		}
	}
}

func TestRoundTripUserPass(t *testing.T) {
	g := newGen(5)
	for i := 0; i < roundTrips; i++ {
		u := UserPassRequest{Username: string(g.bytes(g.r.IntN(256))), Password: string(g.bytes(g.r.IntN(256)))}
		x, err := AppendUserPassRequest(nil, u)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseUserPassRequest(x)
		if err != nil || n != len(x) || got != u {
			t.Fatalf("%+v became %+v (%v)", u, got, err)
		}
	}
}
