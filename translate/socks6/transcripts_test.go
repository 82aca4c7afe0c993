package socks6

import (
	"bytes"
	"testing"
)

// TestTranscripts checks that the replay table is made of well-formed
// messages: every request parses (or is the documented exception), every
// expected reply is a sequence of Authentication Reply, Operation Reply and
// UDP messages, and masks are consistent.
func TestTranscripts(t *testing.T) {
	ts := Transcripts()
	if len(ts) < 10 {
		t.Fatalf("only %d transcripts", len(ts))
	}
	for _, tr := range ts {
		t.Run(tr.Name, func(t *testing.T) {
			if len(tr.Exchanges) == 0 || tr.Setup == "" || tr.Vectors == "" {
				t.Fatal("incomplete transcript")
			}
			for i, ex := range tr.Exchanges {
				if ex.Send == nil {
					t.Fatalf("exchange %d: bad literal", i)
				}
				if ex.Mask != nil && len(ex.Mask) != len(ex.Expect) {
					t.Fatalf("exchange %d: mask length %d, expect %d", i, len(ex.Mask), len(ex.Expect))
				}
				if err := ex.Match(ex.Expect); err != nil {
					t.Errorf("exchange %d does not match itself: %v", i, err)
				}
				checkSend(t, tr.Name, i, ex.Send)
				checkReplies(t, ex.Expect, tr.Dialect)
			}
		})
	}
}

func checkSend(t *testing.T, name string, i int, b []byte) {
	t.Helper()
	switch {
	case b[0] == UserPassVersion:
		if _, n, err := ParseUserPassRequest(b); err != nil || n != len(b) {
			t.Errorf("RFC 1929 request: n=%d err=%v", n, err)
		}
	case name == "version mismatch", name == "domain name style C is rejected":
		if _, _, err := ParseRequest(b, Draft11); err == nil {
			t.Errorf("request %x must be rejected", b)
		}
	default:
		r, n, err := ParseRequest(b, Draft11)
		if err != nil || n+r.InitialDataLen() != len(b) {
			t.Errorf("request %d: n=%d idl=%d len=%d err=%v", i, n, r.InitialDataLen(), len(b), err)
		}
	}
}

// checkReplies parses b as the proxy's messages in their usual order.
func checkReplies(t *testing.T, b []byte, d Dialect) {
	t.Helper()
	if bytes.Equal(b, []byte{Version}) || len(b) == 0 {
		return
	}
	if b[0] == UserPassVersion {
		b = b[2:]
	}
	rep, n, err := ParseAuthReply(b, d)
	if err != nil {
		t.Fatalf("authentication reply %x: %v", b, err)
	}
	b = b[n:]
	if rep.Type != AuthSuccess || len(b) == 0 {
		if len(b) != 0 && !rep.Continues() {
			t.Errorf("bytes after a final failure: %x", b)
		}
		return
	}
	if _, n, err = ParseOpReply(b, d); err != nil {
		t.Fatalf("operation reply %x: %v", b, err)
	}
	b = b[n:]
	for len(b) > 0 {
		if _, n, err = ParseUDPMessage(b); err != nil {
			t.Fatalf("udp message %x: %v", b, err)
		}
		b = b[n:]
	}
}

func TestExchangeMatch(t *testing.T) {
	tr := Transcripts()
	var udp Exchange
	for _, x := range tr {
		if x.Vectors == "TV9, TV4, TV10, TV11" {
			udp = x.Exchanges[0]
		}
	}
	got := append([]byte(nil), udp.Expect...)
	got[8], got[9] = 0x9c, 0x40 // port 40000: even
	copy(got[12:16], []byte{198, 51, 100, 1})
	copy(got[len(got)-8:], testAssoc[:])
	if err := udp.Match(got); err != nil {
		t.Errorf("even port: %v", err)
	}
	got[9] = 0x41 // odd
	if err := udp.Match(got); err == nil {
		t.Error("odd port must not match")
	}
	if err := udp.Match(got[:10]); err == nil {
		t.Error("short reply must not match")
	}
}
