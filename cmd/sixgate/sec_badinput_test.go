package main

// Bad-input suite (issue 12, part 1): raw bytes a hostile or broken client
// sends to the SOCKS 6 and SOCKS 5 frontends, each with the exact reply the
// gateway must send (or nothing) and how it must end the connection. After
// every case a valid client is served through the same frontend; after the
// batch the gateway is back at its baseline (process: no active session,
// no extra file descriptor; in-process: no extra goroutine).
//
// Expected bytes cite the digest (/work/shared/spec/socks6.md, "§n") or RFC
// 1928/1929. Patterns are hex; "??" is a byte the gateway chooses (a bound
// port).

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Reply patterns.
const (
	// §3.3 TV4: Authentication Reply, success, no options.
	secS6AuthOK = "06000000"
	// §3.4: Operation Reply, success, bound to 127.0.0.1 (the gateway's end
	// of its connection to the echo server), any port, no options.
	secS6OpOK = "06000000 ???? 00 01 7f000001"
	// §4.3 kind 3 / §6.2 rule 3: Type 1 with Selection 0xFF (no acceptable
	// method); the client closes.
	secS6SelNone = "06010008 0003 0008 ff000000"
	// §9 TV6: Type 1 with Selection 2, in-band username/password follows.
	secS6SelUserPass = "06010008 0003 0008 02000000"
	// §9 TV5, failure form: Type 1 carrying the RFC 1929 reply 01 01.
	secS6UserPassFail = "06010008 0004 0008 02 0101 00"
	// §9 TV5: Type 0 carrying the RFC 1929 reply 01 00.
	secS6UserPassOK = "06000008 0004 0008 02 0100 00"
	// §9 TV22: Type 1 + Session Invalid.
	secS6SessionInvalid = "06010004 0009 0004"
	// RFC 1928 §6: success, BND = 127.0.0.1, any port.
	secS5OK = "05000001 7f000001 ????"
)

// secS6Op is an Operation Reply with code and no bind address (§3.4, TV8).
func secS6Op(code byte) string { return fmt.Sprintf("06%02x0000 0000 00 01 00000000", code) }

// secS5Rep is a SOCKS 5 failure reply (RFC 1928 §6): BND 0.0.0.0:0.
func secS5Rep(code byte) string { return fmt.Sprintf("05%02x0001 00000000 0000", code) }

func secSend(b []byte) secStep                { return secStep{send: b} }
func secExpect(b []byte, want string) secStep { return secStep{send: b, want: want} }

// secBadInputCases builds the table against a target (the echo server's
// address goes into the requests).
func secBadInputCases(st *secTarget) []secCase {
	ep := st.echo.Port()
	echo4 := secIp4(st.echo)
	connectEcho := secS6Req(0x01, -1, ep, 0x01, echo4, nil) // §9 TV1 shape
	tlsHello := append([]byte{0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03}, make([]byte, 32)...)
	http := []byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
	socks4 := []byte{0x04, 0x01, byte(ep >> 8), byte(ep), 0x7f, 0, 0, 1, 0x00}
	name255 := secLongName(255)
	ttl := secOpt(1, -1, 0x81, 0x03, 0x40, 0x00) // §9 TV18, 8 bytes
	creds := secAuthData01("alice", secPassword) // 20 bytes
	// creds hidden by an option whose Length (12) swallows its header.
	overlap := append(secOpt(1, 12, 0x81, 0x03, 0x40, 0x00), creds...)
	big := secOpt(0xfc00, -1, make([]byte, 16384-4)...)
	nul := func(s string) []byte { return []byte(s) }

	s6 := []secCase{
		// §3.2: a first byte other than 6 gets the Version Mismatch reply 06
		// (TV19) and the proxy closes.
		{name: "version mismatch: SOCKS 4 request", spec: "§3.2 TV19", fe: "s6", steps: []secStep{secExpect(socks4, "06")}},
		{name: "version mismatch: HTTP request", spec: "§3.2 TV19", fe: "s6", steps: []secStep{secExpect(http, "06")}},
		{name: "version mismatch: TLS ClientHello", spec: "§3.2 TV19", fe: "s6", steps: []secStep{secExpect(tlsHello, "06")}},
		{name: "version mismatch: SOCKS 5 greeting on a SOCKS 6-only port", spec: "§3.2 TV19", fe: "s6", steps: []secStep{secExpect([]byte{5, 1, 0}, "06")}},
		{name: "version mismatch: NUL byte", spec: "§3.2 TV19", fe: "s6", steps: []secStep{secExpect([]byte{0}, "06")}},
		// Truncated Requests: the proxy waits for the rest until the
		// handshake deadline, then closes without a word.
		{name: "truncated: version byte only", spec: "§3.1", fe: "s6", steps: []secStep{secSend([]byte{6})}, end: secEndDeadline},
		{name: "truncated: 7 of 8 header bytes", spec: "§3.1", fe: "s6", steps: []secStep{secSend(connectEcho[:7])}, end: secEndDeadline},
		{name: "truncated: IPv4 address 2 of 4 bytes", spec: "§3.1", fe: "s6", steps: []secStep{secSend(connectEcho[:10])}, end: secEndDeadline},
		{name: "truncated: IPv6 address 8 of 16 bytes", spec: "§3.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, 443, 0x04, make([]byte, 8), nil))}, end: secEndDeadline},
		{name: "truncated: domain name 7 of 11 bytes", spec: "§2.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, 80, 0x03, []byte("\x0bexample"), nil))}, end: secEndDeadline},
		// Options Length that lies (§2.2, §4.1): larger than sent waits for
		// the deadline; not a multiple of 4 or above 16 KiB is rejected at
		// once, before anything more is read.
		{name: "options length 16 with 8 bytes sent", spec: "§3.1, §4.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 16, ep, 0x01, echo4, ttl))}, end: secEndDeadline},
		{name: "options length not a multiple of 4 (6)", spec: "§4.1 recommended: reject", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 6, ep, 0x01, echo4, nil))}},
		{name: "options length above 16 KiB (16388)", spec: "§2.2 limit", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 16388, ep, 0x01, echo4, nil))}},
		{name: "options length 0xffff", spec: "§2.2 limit", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0xffff, ep, 0x01, echo4, nil))}},
		{name: "options length exactly 16 KiB (one experimental option)", spec: "§2.2 limit, §4.1 unknown kinds ignored", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, big), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		// Malformed options inside a well-delimited region (§4.1
		// recommended handling): option parsing stops, the message stands.
		{name: "option running past the end (Length 12 in 8 bytes)", spec: "§4.1", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(0xfc00, 12, 1, 2, 3, 4)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		{name: "option Length 2 (below 4)", spec: "§4.1", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(0xfc00, 2, 1, 2, 3, 4)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		{name: "option Length 0 (must not loop)", spec: "§4.1", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(0xfc00, 0, 1, 2, 3, 4)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		{name: "option Length 6 (not a multiple of 4)", spec: "§4.1", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(0xfc00, 6, 1, 2, 3, 4)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		// Domain names (§2.1).
		{name: "zero-length domain name", spec: "§2.1 reject L = 0", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, 80, 0x03, []byte{0, 0, 0, 0}, nil))}},
		{name: "255-byte domain name (does not resolve)", spec: "§2.1, §2.2 1..255; TV8", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, 0, 80, 0x03, secS6Name(name255), nil), secS6AuthOK+secS6Op(0x04))}},
		{name: "NUL inside a style-A name", spec: "§2.1 (a real name never holds NUL)", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, 80, 0x03, secS6Name("evil\x00x.com"), nil))}},
		{name: "NUL inside a name that fills its field", spec: "§2.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, 80, 0x03, append([]byte{11}, nul("a\x00b.example")...), nil))}},
		{name: "style C name (length counts itself)", spec: "§2.1, TV25 C", fe: "s6",
			steps: []secStep{secSend(secHexBytes("060100000050000308612e696f000000"))}},
		{name: "name padding not NUL", spec: "§2.1", fe: "s6",
			steps: []secStep{secSend(secHexBytes("060100000050000304612e696f000041"))}},
		{name: "name of NULs only", spec: "§2.1 empty after stripping NULs", fe: "s6",
			steps: []secStep{secSend(secHexBytes("0601000000500003 03000000"))}},
		{name: "style B name is accepted (NXDOMAIN)", spec: "§2.1 parse tolerantly, TV25 B; TV8", fe: "s6",
			steps: []secStep{secExpect(secHexBytes("060100000050000307612e696f000000"), secS6AuthOK+secS6Op(0x04))}},
		{name: "name 127.1 never reaches loopback", spec: "§2.1; not an IP literal", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, ep, 0x03, secS6Name("127.1"), nil))}},
		// Commands and address types (§3.1, §3.4).
		{name: "unknown command 0x04", spec: "§3.4 code 0x07", fe: "s6",
			steps: []secStep{secExpect(secS6Req(0x04, -1, ep, 0x01, echo4, nil), secS6AuthOK+secS6Op(0x07))}},
		{name: "unknown command 0xff", spec: "§3.4 code 0x07", fe: "s6",
			steps: []secStep{secExpect(secS6Req(0xff, -1, ep, 0x01, echo4, nil), secS6AuthOK+secS6Op(0x07))}},
		{name: "unknown ATYP 0x02 (cannot be delimited)", spec: "§2.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, ep, 0x02, echo4, nil))}},
		{name: "unknown ATYP 0x00", spec: "§2.1", fe: "s6",
			steps: []secStep{secSend(secS6Req(1, 0, ep, 0x00, echo4, nil))}},
		{name: "CONNECT to port 0", spec: "§3.1 (port 0 names no service)", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, 0, 0, 0x01, []byte{127, 0, 0, 2}, nil), secS6AuthOK+secS6Op(0x02))}},
		// Initial data (§3.5).
		{name: "Initial Data Length larger than what follows", spec: "§3.5: the proxy reads IDL bytes as part of the handshake", fe: "s6",
			steps: []secStep{secSend(append(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(100)), make([]byte, 10)...))}, end: secEndDeadline},
		{name: "Initial Data Length above 2^14 ignores the Advertisement", spec: "§2.2 limit, §4.1", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(16385)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		{name: "initial data reaches the server first", spec: "§3.5, TV2", fe: "s6",
			steps: []secStep{secExpect(append(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(5)), "hello"...), secS6AuthOK+secS6OpOK+secHexOf([]byte("hello")))}, end: secEndRelay},
		// Sessions and tokens (§7).
		{name: "unknown Session ID", spec: "§7.1, TV22", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(6, -1, 1, 2, 3, 4, 5, 6, 7, 8)), secS6SessionInvalid)}},
		{name: "empty Session ID option is ignored", spec: "§4.3 (s >= 4)", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(6, -1)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
		{name: "Idempotence Expenditure outside a session is ignored", spec: "§7.2", fe: "s6",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(13, -1, 0, 0, 0, 16)), secS6AuthOK+secS6OpOK)}, end: secEndRelay},
	}

	s6auth := []secCase{
		{name: "no authentication material", spec: "§6.2 rule 3", fe: "s6auth",
			steps: []secStep{secExpect(connectEcho, secS6SelNone)}},
		{name: "only an unknown method advertised (0x80)", spec: "§6.2 rule 3", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 0x80)), secS6SelNone)}},
		{name: "0-RTT wrong password", spec: "§6.3, TV5 failure form", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAuthData01("alice", "wrong")), secS6UserPassFail)}},
		{name: "0-RTT ULEN 0", spec: "§6.3, TV5 failure form", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAuthData01("", "x")), secS6UserPassFail)}},
		{name: "credentials smuggled inside an experimental option", spec: "§4.1: options do not nest", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, secOpt(0xfc00, -1, creds...)), secS6SelNone)}},
		{name: "overlapping options: Length 12 swallows the credentials' header", spec: "§4.1", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, -1, ep, 0x01, echo4, overlap), secS6SelNone)}},
		{name: "credentials running past Options Length", spec: "§4.1", fe: "s6auth",
			steps: []secStep{secExpect(secS6Req(1, 16, ep, 0x01, echo4, creds), secS6SelNone)}},
		{name: "in-band ULEN 0", spec: "§6.3 in-band, TV6, TV5", fe: "s6auth", steps: []secStep{
			secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass),
			secExpect(secRfc1929("", "x"), "0101"+secS6UserPassFail)}},
		{name: "in-band: wrong then right password on one connection", spec: "§3.3 at most 2 Authentication Replies", fe: "s6auth", steps: []secStep{
			secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass),
			secExpect(secRfc1929("alice", "wrong"), "0101"+secS6UserPassFail),
			{send: secRfc1929("alice", secPassword), mayFail: true}}},
		{name: "in-band: a second Request instead of RFC 1929", spec: "§6.3", fe: "s6auth", steps: []secStep{
			secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass),
			secSend(connectEcho)}},
		{name: "in-band: RFC 1929 truncated", spec: "§6.3", fe: "s6auth", end: secEndDeadline, steps: []secStep{
			secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass),
			secSend([]byte{1, 5, 'a', 'l'})}},
		{name: "in-band: right password (control)", spec: "§6.3, TV5", fe: "s6auth", end: secEndRelay, steps: []secStep{
			secExpect(secS6Req(1, -1, ep, 0x01, echo4, secAdvert(0, 2)), secS6SelUserPass),
			secExpect(secRfc1929("alice", secPassword), "0100"+secS6UserPassOK+secS6OpOK)}},
	}

	mix := []secCase{
		{name: "shared port: SOCKS 4 request", spec: "§3.2 TV19", fe: "mix", steps: []secStep{secExpect(socks4, "06")}},
		{name: "shared port: HTTP request", spec: "§3.2 TV19", fe: "mix", steps: []secStep{secExpect(http, "06")}},
		{name: "shared port: silent client", spec: "handshake_timeout", fe: "mix", end: secEndDeadline},
		{name: "shared port: first byte just before the deadline", spec: "handshake_timeout bounds the whole handshake", fe: "mix", end: secEndDeadline,
			steps: []secStep{{send: []byte{6}, delay: st.handshake * 7 / 10}}},
		{name: "shared port: SOCKS 5 greeting goes to SOCKS 5", spec: "RFC 1928 §3, §6", fe: "mix", end: secEndRelay, steps: []secStep{
			secExpect([]byte{5, 1, 0}, "0500"),
			secExpect(secS5Req(1, 1, echo4, ep), secS5OK)}},
	}

	noauth := []byte{5, 1, 0}
	s5 := []secCase{
		{name: "greeting NMETHODS 0", spec: "RFC 1928 §3: METHODS is 1 to 255 bytes", fe: "s5", steps: []secStep{secSend([]byte{5, 0})}},
		{name: "greeting truncated (3 methods announced, 1 sent)", spec: "RFC 1928 §3", fe: "s5", steps: []secStep{secSend([]byte{5, 3, 0})}, end: secEndDeadline},
		{name: "greeting: version byte only", spec: "RFC 1928 §3", fe: "s5", steps: []secStep{secSend([]byte{5})}, end: secEndDeadline},
		{name: "SOCKS 4 request", spec: "RFC 1928 §3 VER", fe: "s5", steps: []secStep{secSend(socks4)}},
		{name: "HTTP request", spec: "RFC 1928 §3 VER", fe: "s5", steps: []secStep{secSend(http)}},
		{name: "SOCKS 6 request", spec: "RFC 1928 §3 VER", fe: "s5", steps: []secStep{secSend(connectEcho)}},
		{name: "only GSSAPI offered", spec: "RFC 1928 §3: X'FF'", fe: "s5", steps: []secStep{secExpect([]byte{5, 1, 1}, "05ff")}},
		{name: "255 methods", spec: "RFC 1928 §3", fe: "s5", end: secEndRelay, steps: []secStep{
			secExpect(append([]byte{5, 255}, secSeq(0, 255)...), "0500"),
			secExpect(secS5Req(1, 1, echo4, ep), secS5OK)}},
		{name: "request with version 4", spec: "RFC 1928 §4 VER", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secSend(append([]byte{4}, secS5Req(1, 1, echo4, ep)[1:]...))}},
		{name: "unknown command 0x04", spec: "RFC 1928 §6 X'07'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(4, 1, echo4, ep), secS5Rep(0x07))}},
		{name: "command 0x00", spec: "RFC 1928 §6 X'07'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(0, 1, echo4, ep), secS5Rep(0x07))}},
		{name: "unknown ATYP 0x02", spec: "RFC 1928 §6 X'08'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 2, echo4, ep), secS5Rep(0x08))}},
		{name: "ATYP 0xff", spec: "RFC 1928 §6 X'08'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 0xff, echo4, ep), secS5Rep(0x08))}},
		{name: "request truncated in the address", spec: "RFC 1928 §4", fe: "s5", end: secEndDeadline, steps: []secStep{
			secExpect(noauth, "0500"), secSend([]byte{5, 1, 0, 1, 0x7f, 0})}},
		{name: "domain name truncated", spec: "RFC 1928 §5", fe: "s5", end: secEndDeadline, steps: []secStep{
			secExpect(noauth, "0500"), secSend([]byte{5, 1, 0, 3, 20, 'a', 'b', 'c', 'd', 'e'})}},
		{name: "domain length 0", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, []byte{0}, 80), secS5Rep(0x04))}},
		{name: "255-byte domain name (does not resolve)", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name(name255), 80), secS5Rep(0x04))}},
		{name: "NUL in the domain name", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name("evil.test\x00.example.com"), 80), secS5Rep(0x04))}},
		{name: "non-ASCII domain name", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name("caf\xc3\xa9.example"), 80), secS5Rep(0x04))}},
		{name: "name 127.1 never reaches loopback", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name("127.1"), ep), secS5Rep(0x04))}},
		{name: "name 0x7f.1 never reaches loopback", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name("0x7f.1"), ep), secS5Rep(0x04))}},
		{name: "name 2130706433 never reaches loopback", spec: "RFC 1928 §5; X'04'", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 3, secS5Name("2130706433"), ep), secS5Rep(0x04))}},
		{name: "CONNECT to port 0", spec: "RFC 1928 §6 X'02' (port 0 names no service)", fe: "s5", steps: []secStep{
			secExpect(noauth, "0500"), secExpect(secS5Req(1, 1, []byte{127, 0, 0, 2}, 0), secS5Rep(0x02))}},
		{name: "greeting and request pipelined (control)", spec: "RFC 1928 §3, §6", fe: "s5", end: secEndRelay, steps: []secStep{
			secExpect(append(append([]byte{}, noauth...), secS5Req(1, 1, echo4, ep)...), "0500"+secS5OK)}},
	}

	userpass := []byte{5, 1, 2}
	s5auth := []secCase{
		{name: "no authentication offered where required", spec: "RFC 1928 §3: X'FF'", fe: "s5auth", steps: []secStep{secExpect(noauth, "05ff")}},
		{name: "RFC 1929 ULEN 0", spec: "RFC 1929 §2: UNAME 1 to 255", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secSend([]byte{1, 0, 1, 'a'})}},
		{name: "RFC 1929 PLEN 0", spec: "RFC 1929 §2: PASSWD 1 to 255", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secSend(secRfc1929("alice", ""))}},
		{name: "RFC 1929 version 5", spec: "RFC 1929 §2: VER X'01'", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secSend([]byte{5, 1, 0})}},
		{name: "RFC 1929 wrong password", spec: "RFC 1929 §2: STATUS != X'00', close", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secExpect(secRfc1929("alice", "wrong"), "0101")}},
		{name: "RFC 1929 wrong then right password on one connection", spec: "RFC 1929 §2: the server MUST close", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secExpect(secRfc1929("alice", "wrong"), "0101"),
			{send: secRfc1929("alice", secPassword), mayFail: true}}},
		{name: "second greeting instead of RFC 1929", spec: "RFC 1929 §2: VER X'01'", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secSend(userpass)}},
		{name: "RFC 1929 truncated", spec: "RFC 1929 §2", fe: "s5auth", end: secEndDeadline, steps: []secStep{
			secExpect(userpass, "0502"), secSend([]byte{1, 5, 'a', 'l'})}},
		{name: "RFC 1929 255-byte username and password", spec: "RFC 1929 §2", fe: "s5auth", steps: []secStep{
			secExpect(userpass, "0502"), secExpect(secRfc1929(strings.Repeat("u", 255), strings.Repeat("p", 255)), "0101")}},
	}

	var all []secCase
	for _, group := range [][]secCase{s6, s6auth, mix, s5, s5auth} {
		all = append(all, group...)
	}
	return all
}

// secSeq returns the bytes lo..hi-1.
func secSeq(lo, hi int) []byte {
	b := make([]byte, 0, hi-lo)
	for i := lo; i < hi; i++ {
		b = append(b, byte(i))
	}
	return b
}

// secHexBytes decodes a hex literal (spaces allowed) from a table.
func secHexBytes(s string) []byte {
	want, _ := secHexPattern(secNopTB{}, s)
	return want
}

// secNopTB lets hexPattern run outside a test for constant literals.
type secNopTB struct{ testing.TB }

func (secNopTB) Helper()                   {}
func (secNopTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// secBadInputLimits is the limits block of the bad-input suite: a short
// handshake deadline, and an authentication budget the wrong-password cases
// cannot exhaust.
const secBadInputLimits = `  handshake_timeout    = "1s"
  auth_failures_per_ip = 100000`

// secRunBadInput plays every case in parallel against st, a valid client after
// each, then checks the target is back at its baseline.
func secRunBadInput(t *testing.T, st *secTarget) {
	for _, fe := range []string{"s6", "s6auth", "s5", "s5auth", "mix"} {
		if err := st.validConnect(fe, ""); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	base := st.snapshot()
	start := time.Now()
	cases := secBadInputCases(st)
	st.runAll(t, cases)
	t.Logf("%d cases in %v", len(cases), time.Since(start).Round(time.Millisecond))
	st.settled(t, base, 5*time.Second)
}

// TestSecBadInput runs the bad-input table against a sixgate process and
// checks its descriptors and sixgate_sessions_active afterwards.
func TestSecBadInput(t *testing.T) {
	secRunBadInput(t, startSecProcess(t, secBadInputLimits, time.Second))
}

// TestSecBadInputInProcess runs the same table against an in-process
// gateway.Server and checks that no goroutine is left behind.
func TestSecBadInputInProcess(t *testing.T) {
	secRunBadInput(t, startSecInProcess(t, secBadInputLimits, time.Second))
}
