package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"
)

// Principal says who a request is for. It travels with every request so that
// backends can label, limit and own resources per user.
type Principal struct {
	// User is the authenticated user name; empty for anonymous clients.
	User string
	// Frontend is the name of the frontend block the client came through.
	Frontend string
	// Protocol is the frontend's protocol ("socks6", "socks5", "turn").
	Protocol string
	// Client is the client's address as the frontend saw it.
	Client netip.AddrPort
	// Session is the SOCKS 6 session ID (hex) the request belongs to, if any;
	// it owns Port Parity reservations.
	Session string
}

// Policy decides whether a concrete address may be reached. Backends call it
// on the address they actually connect or send to (after name resolution), so
// a name that resolves differently between check and dial cannot slip through.
type Policy interface {
	Allow(dst netip.AddrPort) error
}

// AllowAll is the Policy for trusted, operator-configured addresses such as an
// upstream proxy's server address reached through a `via` hop.
type AllowAll struct{}

// Allow always succeeds.
func (AllowAll) Allow(netip.AddrPort) error { return nil }

// PolicyOrAll returns p, or AllowAll when p is nil.
func PolicyOrAll(p Policy) Policy {
	if p == nil {
		return AllowAll{}
	}
	return p
}

// Resolver looks up host names. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// StreamRequest asks a backend for a byte stream to Dest (CONNECT).
type StreamRequest struct {
	Dest Addr
	// Options are the proxy–remote leg stack options; the backend records
	// the outcome of each in the returned Stream.
	Options StackOptions
	// InitialData are the first bytes for the destination. The backend sends
	// them before Dial returns (in the SYN with TFO, or inside an upstream
	// SOCKS 6 Request as 0-RTT data), so the caller must not send them again.
	InitialData []byte
	// Source, when valid, is the local address to connect from (a TURN TCP
	// allocation dials peers from its relayed address). Port 0 = any port.
	Source    netip.AddrPort
	Principal Principal
	// Policy checks every address the backend connects to; nil allows all.
	Policy Policy
}

// Stream is an established byte stream.
type Stream struct {
	Conn net.Conn
	// Bound is the local endpoint of the outgoing connection as the remote
	// side sees it (for an upstream proxy, the upstream's bound address).
	Bound Addr
	// Peer is the remote end: the destination, or for BIND the peer that
	// connected.
	Peer Addr
	// Options are the stack options with their outcomes.
	Options StackOptions
}

// BindRequest asks a backend to listen for peers (BIND).
type BindRequest struct {
	// Bind is the wanted listening address; a zero or unspecified address or
	// port 0 means "any".
	Bind      Addr
	Options   StackOptions
	Principal Principal
	// Policy checks each accepted peer's address; nil allows all.
	Policy Policy
}

// Binding is a listening socket opened by Listen.
type Binding interface {
	// Addr is the remote-facing listening address.
	Addr() Addr
	// Options are the applied stack options (Listen Backlog, MPTCP).
	Options() StackOptions
	// Accept waits for the next peer; Stream.Peer is its address.
	Accept(ctx context.Context) (*Stream, error)
	// Close stops listening; queued peers are closed.
	Close() error
}

// AssocRequest asks a backend for a datagram association (SOCKS UDP
// ASSOCIATE, a TURN allocation). A dual-stack TURN allocation is two
// associations, one per family.
//
// Backends treat every stack option as a wish: one they cannot honour is
// declined or marked unsupported in Association.Options, never a reason to
// fail (the TURN frontend always asks for UDPError). Only a port parity or a
// reservation that cannot be had fails the request.
type AssocRequest struct {
	// Bind is the wanted remote-facing address; zero or unspecified address
	// and port 0 mean "any". A non-zero port names the port exactly (and may
	// take a reservation made for it).
	Bind Addr
	// Family is 4 or 6 to ask for a relay address of that family (TURN
	// REQUESTED-ADDRESS-FAMILY); 0 lets Bind decide, IPv4 by default.
	Family int
	// Options are the proxy–remote leg stack options.
	Options StackOptions
	// ReservationToken takes a reservation made by an earlier association
	// (TURN RESERVATION-TOKEN); nil for none.
	ReservationToken *[8]byte
	Principal        Principal
	// Policy checks every destination the association sends to.
	Policy Policy
}

// PacketKind says what a received Packet holds.
type PacketKind uint8

// Packet kinds.
const (
	PacketData PacketKind = iota
	PacketICMP
)

// Packet is what Association.ReadFrom returns: a datagram from a remote host
// (its payload in the caller's buffer) or an ICMP error.
type Packet struct {
	Kind PacketKind
	// N is the payload length in the caller's buffer.
	N int
	// From is the remote source of a datagram.
	From Addr
	// Meta is what the received IP header held, where known.
	Meta DatagramMeta
	// ICMP is the error when Kind is PacketICMP.
	ICMP ICMPError
}

// Association is a UDP association on the remote-facing side.
//
// ReadFrom and WriteTo may be called concurrently with each other; each is
// called from one goroutine at a time. ReadFrom returns net.ErrClosed after
// Close. WriteTo never blocks for long: a datagram that cannot be sent now is
// dropped and an error returned, and the association keeps working (transient
// send errors and ICMP never tear it down).
type Association interface {
	// RelayAddr is the remote-facing address remote hosts send to. exact is
	// false where the backend cannot know it (behind a SOCKS 5 upstream); addr
	// is then the best address it has — a SOCKS 5 upstream's relay address,
	// which is lossy (TURN reports it as the relayed address) — or zero.
	RelayAddr() (addr Addr, exact bool)
	// Options are the applied stack options.
	Options() StackOptions
	// Reservation is the counterpart reserved by Port Parity, if any.
	Reservation() (Reservation, bool)
	// WriteTo sends one datagram to dst (an IP or a name the backend resolves).
	WriteTo(b []byte, dst Addr, meta DatagramMeta) error
	// ReadFrom reads the next datagram or ICMP error.
	ReadFrom(b []byte) (Packet, error)
	// Close ends the association and releases its port and reservation.
	Close() error
}

// PacketServer is an Association that reads in batches and hands each
// datagram or ICMP error to a callback inside the read, so that a reader
// that emptied the socket's queue waits without one more read.
// ServePackets returns when a read fails (net.ErrClosed once closed). get
// lends a batch of buffers while the socket is readable and put takes the
// batch back before the reader waits; i is the index of a datagram's buffer
// in the batch, -1 for an ICMP error. fn must not wait for long and must
// not close the association.
type PacketServer interface {
	ServePackets(get func() [][]byte, put func(), fn func(i int, pkt Packet)) error
}

// IdlePacketServer is a PacketServer whose reader can stop once the socket
// has been idle, so that it can wait in the park set without a goroutine
// (PacketLoop). ServePacketsIdle is ServePackets that also returns
// ErrReaderIdle when nothing arrived for about idle (between idle and twice
// that); ReadConn is the socket the reads wait on.
type IdlePacketServer interface {
	PacketServer
	ServePacketsIdle(get func() [][]byte, put func(), fn func(i int, pkt Packet), idle time.Duration) error
	ReadConn() syscall.RawConn
}

// ErrReaderIdle is ServePacketsIdle's result when the socket was idle.
var ErrReaderIdle = errors.New("reader idle")

// servePacketBatches runs a batch reader with buffers lent from p.
func servePacketBatches(p *BufPool, fn func(buf []byte, pkt Packet), flush func(),
	serve func(get func() [][]byte, put func(), fn func(i int, pkt Packet)) error) error {
	l := p.BatchLender()
	put := l.Put
	if flush != nil {
		put = func() { flush(); l.Put() }
	}
	return serve(l.Get, put, func(i int, pkt Packet) { fn(l.Buf(i), pkt) })
}

// BatchWriter is an Association that can hold datagrams to send several
// with one system call: WriteToLater is WriteTo that may keep b (which the
// caller leaves unchanged) until Flush, and Flush sends what waits. A held
// datagram that the kernel then refuses is dropped without an error (policy
// and name errors are still returned by WriteToLater).
type BatchWriter interface {
	WriteToLater(b []byte, dst Addr, meta DatagramMeta) error
	Flush()
}

// HeldWrites is the BatchWriters that a read batch handed datagrams to,
// to flush when the batch ends. Not for concurrent use.
type HeldWrites struct{ bws []BatchWriter }

// WriteToLater is bw.WriteToLater, and remembers bw for Flush.
func (h *HeldWrites) WriteToLater(bw BatchWriter, b []byte, dst Addr, meta DatagramMeta) error {
	if !slices.Contains(h.bws, bw) {
		h.bws = append(h.bws, bw)
	}
	return bw.WriteToLater(b, dst, meta)
}

// Flush flushes each BatchWriter written to since the last Flush, once.
func (h *HeldWrites) Flush() {
	for _, bw := range h.bws {
		bw.Flush()
	}
	clear(h.bws)
	h.bws = h.bws[:0]
}

// BatchWriterOf returns a as a BatchWriter, or nil when it is not one.
func BatchWriterOf(a Association) BatchWriter {
	bw, _ := backendOf(a).(BatchWriter)
	return bw
}

// backendOf is the backend's own association under the Runtime's wrapper
// (which only counts), so that its optional interfaces are visible.
func backendOf(a Association) Association {
	if t, ok := a.(*trackedAssoc); ok {
		return t.Association
	}
	return a
}

// ServePackets calls fn for every datagram and ICMP error a reads, until a
// read fails, with buffers from p: buf is the whole buffer a datagram was
// read into (p's head room, then the datagram), nil for an ICMP error. It
// reads in batches where a is a PacketServer, else one ReadFrom at a time
// (which holds a buffer while it waits).
// flush, when not nil, runs after each batch, while its buffers are still
// lent: fn may keep buf until then (to send a batch at once), but must not
// wait for long or close a.
func ServePackets(a Association, p *BufPool, fn func(buf []byte, pkt Packet), flush func()) error {
	if ps, ok := backendOf(a).(PacketServer); ok {
		return servePacketBatches(p, fn, flush, ps.ServePackets)
	}
	l := p.Lender()
	defer l.Put(nil)
	for {
		l.Put(nil)
		pkt, err := a.ReadFrom(l.Get())
		if err != nil {
			return err
		}
		var buf []byte
		if pkt.Kind == PacketData {
			buf = l.Buf()
		}
		fn(buf, pkt)
		if flush != nil {
			flush()
		}
	}
}

// Backend relays associations towards destinations: directly, or through an
// upstream proxy. Every backend implements all three shapes; one that cannot
// carry a shape returns an *Error with ReasonCommandNotSupported.
type Backend interface {
	// Name is the backend block's name.
	Name() string
	// Dial opens a stream (CONNECT).
	Dial(ctx context.Context, req *StreamRequest) (*Stream, error)
	// Listen opens a listening socket for peers (BIND).
	Listen(ctx context.Context, req *BindRequest) (Binding, error)
	// Associate opens a datagram association.
	Associate(ctx context.Context, req *AssocRequest) (Association, error)
}

// ErrDropped is returned by Association.WriteTo for a datagram that was not
// sent (queue full, name still resolving and queue full, transient error).
var ErrDropped = errors.New("datagram dropped")
