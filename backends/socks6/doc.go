// Package socks6 is sixgate's SOCKS 6 client (draft-olteanu-intarea-socks-6
// revision -11, with a switch for -10 proxies) and the `backend "socks6"`
// that relays associations through an upstream SOCKS 6 proxy.
//
// The Client is the one SOCKS 6 client of the project: the backend, the
// frontend's end-to-end tests and the load tool all use it. It speaks
// CONNECT with 0-RTT initial data and false start, BIND (one-shot and with
// a listen backlog), UDP ASSOCIATE (datagrams over UDP, DTLS or the control
// connection, falling back to the latter) and NOOP; it authenticates with 0-RTT or in-band
// username/password, opens a session on its first Request and reuses it
// with idempotence tokens, and recovers by itself when the proxy forgets
// the session or rejects a token.
//
// Every byte goes through the codec in translate/socks6; this package never
// encodes or decodes a SOCKS 6 message by hand. It never applies policy to
// the upstream proxy's own address, which the operator configured: only
// destinations and BIND peers are checked.
package socks6
