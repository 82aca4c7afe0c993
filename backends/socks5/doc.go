// Package socks5 is sixgate's SOCKS 5 client (RFC 1928, with RFC 1929
// username/password authentication) and the `backend "socks5"` that relays
// associations through an upstream SOCKS 5 server: streams with CONNECT,
// listening sockets with BIND, and datagram associations with UDP
// ASSOCIATE.
//
// The server is reached with a TCP connection of its own, or through the
// backend named by `via` (gateway.Env.Via): the control connection is then a
// stream of that backend, and the datagrams of a UDP association travel
// inside an association of that backend, so chains of SOCKS 5 hops nest.
//
// Every SOCKS 5 message goes through the codec in translate/socks5; this
// package never encodes or decodes one by hand. It checks every IP address
// it asks the server to reach, and every BIND peer the server reports,
// against the request's Policy before anything is sent; it never applies
// policy to the server's own address, which the operator configured. It
// never imports a frontend or another backend.
package socks5
