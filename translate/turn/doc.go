// Package turn is sixgate's TURN (RFC 8656, RFC 6062) wire layer on top of
// github.com/pion/stun: typed setters and getters for every TURN attribute
// pion/stun lacks or gets wrong, the TURN message types, ChannelData framing
// for datagram and stream transports, the first-byte demultiplexer, a bounded
// stream framer, long-term and TURN REST credential checks, request parsers
// that apply the RFC's malformed-request rules, response and indication
// builders shared by the server engine and its tests, and the mappings between
// TURN words (error codes, DONT-FRAGMENT, EVEN-PORT, RESERVATION-TOKEN,
// REQUESTED-ADDRESS-FAMILY, the ICMP attribute) and sixgate's neutral model in
// package gateway.
//
// The package is pure: it never opens a socket, starts a goroutine, logs,
// reads the clock (times are passed in) or panics on network input. Every
// parser is bounded and fuzzed. The ChannelData paths (ParseChannelData,
// AppendChannelData, PutChannelDataHeader, Framer.Next) and the Data and Send
// indication encoders (AppendDataIndication, AppendSendIndication) do not
// allocate: they work in caller buffers.
//
// Errors are lowercase, prefixed "turn: ", and wrap sentinel errors for
// errors.Is. Errors from the request parsers carry the ERROR-CODE the engine
// must answer with (see CodeError and CodeOf).
package turn
