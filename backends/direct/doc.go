// Package direct is the backend that reaches destinations with the gateway
// host's own sockets: a TCP connection per stream (CONNECT), a listening
// socket per BIND, and an unconnected UDP socket per datagram association
// (SOCKS UDP ASSOCIATE, TURN allocation).
//
// direct resolves names itself, checks every resolved address against the
// request's Policy before any packet leaves, races the allowed addresses with
// Happy Eyeballs (RFC 8305) and applies the proxy–remote leg stack options
// (TOS, TTL, DF, TFO, MPTCP, listen backlog) as socket options through
// syscall.RawConn.Control. It never connects to an address the Policy has not
// allowed: the address is checked again immediately before connect(2), so a
// name that resolves differently between check and dial cannot slip through.
// A UDP association checks every datagram's concrete destination (caching the
// verdict briefly), never sends to the gateway's own sockets, reads ICMP
// errors from the socket error queue (IP_RECVERR, no raw sockets) and holds
// Port Parity / EVEN-PORT reservations as bound sockets.
//
// direct knows no proxy protocol and never imports a frontend or package
// translate; it speaks only the neutral model of package gateway.
package direct
