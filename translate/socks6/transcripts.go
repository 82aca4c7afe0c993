package socks6

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Exchange is one step of a Transcript: what the client sends, and what the
// proxy must answer.
type Exchange struct {
	// Send are the bytes the client writes.
	Send []byte
	// Expect are the bytes the proxy must write in answer (possibly several
	// messages back to back); empty when it must answer nothing.
	Expect []byte
	// Mask has Expect's length and marks with 1 bits what must match
	// exactly; 0 bits are variable (a bound address or port, a session ID,
	// a window base, an Association ID). nil means every bit is fixed.
	Mask []byte
}

// Match reports whether got matches the expected reply bit for bit under the
// mask, and if not, where it first differs.
func (e *Exchange) Match(got []byte) error {
	if len(got) != len(e.Expect) {
		return fmt.Errorf("socks6: transcript: got %d bytes, want %d: got %x want %x", len(got), len(e.Expect), got, e.Expect)
	}
	for i := range got {
		m := byte(0xff)
		if e.Mask != nil {
			m = e.Mask[i]
		}
		if got[i]&m != e.Expect[i]&m {
			return fmt.Errorf("socks6: transcript: byte %d is %02x, want %02x under mask %02x: got %x want %x", i, got[i], e.Expect[i], m, got, e.Expect)
		}
	}
	return nil
}

// Transcript is a client–proxy conversation built from the digest's §9
// vectors, for replaying against a running SOCKS 6 frontend byte for byte.
type Transcript struct {
	Name string
	// Vectors names the §9 vectors the bytes come from.
	Vectors string
	Dialect Dialect
	// Setup says how the proxy under test must be configured and what its
	// backend must do for the transcript to hold.
	Setup     string
	Exchanges []Exchange
	// Closes reports that after the last exchange the proxy sends nothing
	// more and closes the connection.
	Closes bool
}

// pattern turns a hex pattern into bytes and a mask: "??" is a variable byte,
// spaces are ignored.
func pattern(s string) (expect, mask []byte, err error) {
	s = strings.ReplaceAll(s, " ", "")
	if len(s)%2 != 0 {
		return nil, nil, fmt.Errorf("odd pattern %q", s)
	}
	expect = make([]byte, len(s)/2)
	mask = make([]byte, len(s)/2)
	variable := false
	for i := range expect {
		pair := s[2*i : 2*i+2]
		if pair == "??" {
			variable = true
			continue
		}
		if _, err := hex.Decode(expect[i:i+1], []byte(pair)); err != nil {
			return nil, nil, err
		}
		mask[i] = 0xff
	}
	if !variable {
		mask = nil
	}
	return expect, mask, nil
}

// step builds an Exchange from a hex request and a reply pattern; errors in
// the literals below are caught by the package's tests (an Exchange with a
// nil Send).
func step(send, reply string) Exchange {
	s, err := hex.DecodeString(strings.ReplaceAll(send, " ", ""))
	if err != nil {
		return Exchange{}
	}
	e, m, err := pattern(reply)
	if err != nil {
		return Exchange{}
	}
	return Exchange{Send: s, Expect: e, Mask: m}
}

// Reply patterns shared by the transcripts.
const (
	authOK      = "06000000"
	opOKv4      = "06000000 ???? 00 01 ????????" // success, any IPv4 bind address and port
	opZero      = "00000000000100000000"         // port 0, ATYP 1, 0.0.0.0
	sessionDead = "0601000400090004"
)

// Transcripts returns the replay table for the SOCKS 6 frontend: requests
// taken from §9 and the exact replies a -11 proxy following this codec's
// choices sends. Each call returns fresh slices.
func Transcripts() []Transcript {
	udp := step("06030010000000010000000000010008850102000001000885020101",
		authOK+" 0600 0010 ???? 00 01 ???????? 0001000885010200 0001000885020101"+" 0601000c ????????????????")
	if len(udp.Mask) > 9 {
		udp.Mask[9] = 0x01 // the bound port (bytes 8–9) must be even: its low bit is 0
	}
	return []Transcript{
		{
			Name: "connect ipv4 without options", Vectors: "TV1, TV4",
			Setup:     "no authentication required; the backend connects to 192.0.2.1:443 from an IPv4 address",
			Exchanges: []Exchange{step("0601000001bb0001c0000201", authOK+opOKv4)},
		},
		{
			Name: "connect host unreachable", Vectors: "TV1, TV4, TV8",
			Setup:     "no authentication required; the backend fails with gateway.ReasonHostUnreachable",
			Exchanges: []Exchange{step("0601000001bb0001c0000201", authOK+"060400000000000100000000")},
			Closes:    true,
		},
		{
			Name: "version mismatch", Vectors: "TV19",
			Setup:     "the SOCKS 6 frontend is handed the connection directly (a SOCKS 5 greeting)",
			Exchanges: []Exchange{step("050100", "06")},
			Closes:    true,
		},
		{
			Name: "unknown command", Vectors: "TV1 with command 0x04, TV4",
			Setup:     "no authentication required",
			Exchanges: []Exchange{step("0604000001bb0001c0000201", authOK+"0607"+opZero)},
			Closes:    true,
		},
		{
			Name: "noop", Vectors: "TV20 without options, TV4",
			Setup:     "no authentication required",
			Exchanges: []Exchange{step("060000000000000100000000", authOK+"0600"+opZero)},
		},
		{
			Name: "noop opening a session with a window", Vectors: "TV20, TV21",
			Setup: "no authentication required; sessions enabled with 8-byte IDs; a window of 16 tokens " +
				"granted as asked (variable: session ID, window base)",
			Exchanges: []Exchange{step("0600000c000000010000000000050004000b000800000010",
				"06000018 0006000c ???????????????? 000c000c ???????? 00000010"+"0600"+opZero)},
		},
		{
			Name: "connect with an unknown session", Vectors: "TV22",
			Setup:     "no session 0102030405060708 exists",
			Exchanges: []Exchange{step("0601001401bb0001c00002010006000c0102030405060708000d000800000010", sessionDead)},
			Closes:    true,
		},
		{
			Name: "teardown of an unknown session", Vectors: "TV22 teardown",
			Setup:     "no session 0102030405060708 exists",
			Exchanges: []Exchange{step("0600001000000001000000000006000c0102030405060708000a0004", sessionDead)},
			Closes:    true,
		},
		{
			Name: "0-rtt username/password", Vectors: "TV3, TV5",
			Setup: "authentication required; user \"user\" with password \"pass\"; the backend connects to " +
				"example.org:80 from an IPv4 address",
			Exchanges: []Exchange{step("06010010005000030b6578616d706c652e6f726700040010020104757365720470617373",
				"060000080004000802010000"+opOKv4)},
		},
		{
			Name: "0-rtt username/password, wrong password", Vectors: "TV3 with password \"pasx\", TV5 failure form",
			Setup:     "authentication required; user \"user\" with password \"pass\"",
			Exchanges: []Exchange{step("06010010005000030b6578616d706c652e6f726700040010020104757365720470617378", "060100080004000802010100")},
			Closes:    true,
		},
		{
			Name: "in-band username/password with initial data", Vectors: "TV2, TV6, TV4",
			Setup: "authentication required; user \"user\" with password \"pass\"; the backend connects to " +
				"example.com:80 from an IPv4 address and receives \"hello\" first; the raw RFC 1929 reply " +
				"precedes the final Authentication Reply, which carries it again as Authentication Data (README, §10 item 13)",
			Exchanges: []Exchange{
				step("06010008005000030b6578616d706c652e636f6d0002000800050200"+"68656c6c6f", "060100080003000802000000"),
				step("0104757365720470617373", "0100"+"060000080004000802010000"+opOKv4),
			},
		},
		{
			Name: "udp associate with udp error and port parity", Vectors: "TV9, TV4, TV10, TV11",
			Setup: "no authentication required; the backend binds an even IPv4 port, reserves the next one " +
				"and reports ICMP errors (variable: bind address, port except its parity, Association ID)",
			Exchanges: []Exchange{udp},
		},
		{
			Name: "domain name style A", Vectors: "TV25 A",
			Setup:     "no authentication required; the backend connects to a.io:80 from an IPv4 address",
			Exchanges: []Exchange{step("060100000050000304612e696f000000", authOK+opOKv4)},
		},
		{
			Name: "domain name style B", Vectors: "TV25 B",
			Setup:     "no authentication required; the backend connects to a.io:80 from an IPv4 address",
			Exchanges: []Exchange{step("060100000050000307612e696f000000", authOK+opOKv4)},
		},
		{
			Name: "domain name style C is rejected", Vectors: "TV25 C",
			Setup:     "any; the Request is malformed (ErrDomainStyle), so the proxy closes without a reply",
			Exchanges: []Exchange{step("060100000050000308612e696f000000", "")},
			Closes:    true,
		},
	}
}
