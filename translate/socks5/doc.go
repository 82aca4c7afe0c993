// Package socks5 is the wire format of SOCKS 5: the method negotiation and
// the request/reply exchange of RFC 1928, the username/password
// sub-negotiation of RFC 1929 and the UDP request header, plus the mapping
// between SOCKS 5 reply codes (REP) and sixgate's neutral gateway.Reason.
//
// It is the one SOCKS 5 codec of sixgate: the SOCKS 5 frontend (server) and
// the SOCKS 5 upstream backend (client) both use it, so each message has one
// encoder and one decoder. The package is pure: it never opens a socket,
// starts no goroutine and logs nothing. Readers (ReadGreeting, ReadRequest,
// ReadReply, ...) take an io.Reader and read exactly the bytes of one
// message, never beyond, so the raw connection can be passed and the bytes a
// client sends right after its request stay unread. Encoders append to a
// caller buffer (Append methods), so a caller controls every allocation.
//
// Addresses are gateway.Addr values. A domain name on the wire must be 1 to
// 255 bytes of ASCII (IDNs travel as A-labels) and goes through
// gateway.NameAddr: it is lower-cased, loses one trailing dot and, when it is
// an IP literal, becomes that IP; names holding NUL, blanks, control bytes,
// bytes above 0x7F or empty labels are refused. IPv4-mapped IPv6 addresses are unmapped in
// both directions. Decoding therefore normalizes, and encode(decode(x)) == x
// holds for the canonical form of each message.
//
// Every decoding error is a *FieldError naming the message and the RFC field
// that was bad, wrapping one of the sentinels (ErrVersion, ErrShort,
// ErrLength, ErrCommand, ErrAddrType, gateway.ErrBadName) or the reader's own
// error, so a server can choose its reply with RequestFailure. Nothing here
// panics on input.
package socks5
