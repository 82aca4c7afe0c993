// Package socks6 is the SOCKS 6 wire codec of sixgate: the messages, options
// and UDP relay messages of draft-olteanu-intarea-socks-6 revision -11 (with a
// Dialect switch for -10 peers), and the mappings between them and the neutral
// model of package gateway (reply codes and reasons, stack options, ICMP
// errors), plus the idempotence token arithmetic both ends need.
//
// The SOCKS 6 frontend (the server side) and the SOCKS 6 upstream backend (the
// client side) share this one codec.
//
// The package is pure: it never opens a socket, starts a goroutine or logs.
// Encoders append to caller buffers (Append*, Put*); decoders parse byte
// slices (Parse*) or read exactly one message from an io.Reader (Read*),
// reading no byte beyond it and allocating no more than the bytes the message
// declares and actually delivers. Decoders never panic: malformed input gives
// a *FieldError naming the message, the field and its offset, wrapping one of
// the Err* sentinels.
//
// What the codec emits is the draft as the repository's wire digest
// (shared/spec/socks6.md) specifies it; where the draft is ambiguous the
// choices are listed in this package's README.
package socks6
