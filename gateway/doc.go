// Package gateway is sixgate's protocol-neutral core: the association model
// (streams and datagram associations), the Backend and Frontend contracts, the
// router and destination policy, users, listeners, limits, metrics and the
// server lifecycle.
//
// gateway never imports a frontend, a backend or a protocol codec: it knows no
// wire format. Frontends turn client sessions into the requests defined here,
// backends serve them, and package translate maps protocol words to the neutral
// failure reasons, stack options and ICMP errors of this package.
package gateway
