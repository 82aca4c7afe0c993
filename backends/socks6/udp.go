package socks6

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/dtls/v2"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// UDPTransport says how the datagrams of a UDP association travel between
// the client and the proxy (§8.4).
type UDPTransport uint8

// UDP transports.
const (
	// UDPOverUDP sends each relay message in a UDP datagram to the proxy's
	// UDP relay endpoint. It is the default.
	UDPOverUDP UDPTransport = iota
	// UDPOverTCP sends the relay messages back to back on the control
	// connection.
	UDPOverTCP
	// UDPOverDTLS sends each relay message in a DTLS record to the proxy's
	// DTLS relay endpoint.
	UDPOverDTLS
)

// String returns "udp", "tcp" or "dtls".
func (t UDPTransport) String() string {
	switch t {
	case UDPOverUDP:
		return "udp"
	case UDPOverTCP:
		return "tcp"
	case UDPOverDTLS:
		return "dtls"
	}
	return "transport(" + strconv.Itoa(int(t)) + ")"
}

func parseUDPOver(s string) (UDPTransport, error) {
	switch s {
	case "", "udp":
		return UDPOverUDP, nil
	case "tcp":
		return UDPOverTCP, nil
	case "dtls":
		return UDPOverDTLS, nil
	}
	return 0, fmt.Errorf("unknown udp transport %q", s)
}

// DefaultConfirmTimeout is how long a client waits for the Association
// Confirmation of a mapping tried over UDP or DTLS before it falls back to
// the control connection.
const DefaultConfirmTimeout = time.Second

// maxRead is a buffer every relay message fits in.
const maxRead = s6.MaxUDPMessageLen

// ctrlBufSize is the read buffer of a control connection that carries
// datagrams; ctrlSmallBuf that of one that carries only the Association
// Initialization and Confirmation (datagrams over UDP or DTLS).
const (
	ctrlBufSize  = 4096
	ctrlSmallBuf = 64
)

// maxBatch is how many bytes of queued messages one write to the control
// connection carries at most.
const maxBatch = 32 << 10

// maxDTLSMessage is the largest relay message sent over DTLS: pion/dtls
// (v2) reads each UDP datagram into an 8 KiB buffer, on the proxy's side
// too, and a longer record is lost. 80 bytes are left for the record
// header and the largest cipher overhead (IV, MAC, padding).
const maxDTLSMessage = 8192 - 80

// ctrlWriteTimeout bounds one write to the control connection; a proxy that
// takes longer ends the association.
const ctrlWriteTimeout = 10 * time.Second

var (
	readPool = sync.Pool{New: func() any { b := make([]byte, maxRead); return &b }}
	outPool  = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
)

// UDPOptions are the optional parts of a UDP ASSOCIATE.
type UDPOptions struct {
	// Bind is the wanted remote-facing address on the proxy; the zero Addr
	// means any address and port. A non-zero port names the port exactly
	// (and may take a Port Parity reservation of the same session).
	Bind gateway.Addr
	// Legs are the requested stack options: on the proxy–remote leg UDP
	// Error, Port Parity, TTL, TOS and DF; on the client–proxy leg TTL and
	// TOS (DF is declined there by sixgate).
	Legs s6.Legs
	// Over is how datagrams travel to the proxy; UDPOverUDP by default.
	// When no Association Confirmation comes over UDP or DTLS within
	// ConfirmTimeout, or the endpoint cannot be reached, the association
	// falls back to the control connection.
	Over UDPTransport
	// Server is host:port of the proxy's UDP (or DTLS) relay endpoint,
	// which no message carries (§8.1); default ClientConfig.Server.
	Server string
	// ConfirmTimeout is how long to wait for the Association Confirmation
	// over UDP or DTLS, resending the first datagram meanwhile;
	// DefaultConfirmTimeout when zero.
	ConfirmTimeout time.Duration
	// ReceiveFirst sends the empty all-zero Datagram at once, so the proxy
	// maps the association (and relays what remote hosts send) before the
	// client sends anything. UDPAssociate then returns once the mapping is
	// confirmed. Without it the first WriteTo maps the association.
	ReceiveFirst bool
	// DTLS configures UDPOverDTLS; nil derives it from ClientConfig.TLS
	// (trusted roots, server name, insecure_skip_verify).
	DTLS *dtls.Config
	// DialPacket opens the datagram channel to the relay endpoint for
	// UDPOverUDP and UDPOverDTLS: a connected socket on which each Write
	// is one datagram. nil dials UDP from the control connection's local
	// address (with the default dialer). A backend with `via` supplies one
	// that sends through an association of the via backend.
	DialPacket func(ctx context.Context, relay string) (net.Conn, error)
}

// UDPStats are an association's counters.
type UDPStats struct {
	// Sent counts datagrams handed to the transport.
	Sent uint64
	// Received counts datagrams and Error messages returned by ReadFrom.
	Received uint64
	// DroppedOut counts datagrams WriteTo could not send (queue full,
	// send error).
	DroppedOut uint64
	// DroppedIn counts received messages dropped: malformed, another
	// association's ID, a full queue.
	DroppedIn uint64
}

// UDPAssoc is a UDP association through the proxy (§8). It lives as long as
// its control connection: when the proxy closes it, ReadFrom returns
// net.ErrClosed, and Close closes it.
//
// WriteTo and ReadFrom may be called concurrently with each other. Neither
// allocates per datagram over UDP or TCP: WriteTo writes the Datagram header
// in front of the payload in a buffer of the association's own (over TCP a
// pooled one, queued for the writer), and ReadFrom parses messages in place.
type UDPAssoc struct {
	// ID is the Association ID from the Association Initialization.
	ID s6.AssocID
	// Bound is the Operation Reply's address: the proxy's remote-facing
	// UDP socket, which remote hosts send to.
	Bound gateway.Addr
	// Legs are the requested stack options with the proxy's outcomes.
	Legs s6.Legs
	// AuthReply and OpReply are the proxy's replies to the Request.
	AuthReply s6.AuthReply
	OpReply   s6.OpReply
	// Token is the idempotence token the proxy accepted, if any.
	Token *uint32

	c    *Client
	log  *slog.Logger
	ctrl net.Conn
	br   *bufio.Reader
	// cp parks the control connection's reader while it is idle; nil when
	// the connection cannot park (not plain TCP: TLS, or a via hop's
	// stream that is not). cbuf is that
	// reader's buffer for messages other than datagrams; datagrams over
	// the control connection are read into one from readPool, so an idle
	// association holds no 64 KiB buffer.
	cp      *gateway.ConnPark
	cbuf    []byte
	data    net.Conn // the UDP/DTLS channel; nil when over TCP from the start
	mode    atomic.Uint32
	confirm time.Duration

	confirmed   chan struct{}
	confirmOnce sync.Once
	refused     chan struct{}

	// wmu serializes writes to data and guards wbuf, started and closed.
	wmu     sync.Mutex
	wbuf    []byte
	held    *gateway.PackedBatch // what WriteToLater holds; nil while nothing waits
	started bool
	closed  bool

	// in and out carry datagrams over the control connection: made when
	// the association starts or falls back there (before mode says so,
	// which publishes them), nil over UDP and DTLS, so that an association
	// that never needs them does not hold their 256 slots each. rdl is
	// the read deadline for an inbox made later; guarded by wmu.
	in         *inbox
	out        chan *[]byte
	rdl        time.Time
	writerOnce sync.Once

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	sent, received, droppedOut, droppedIn atomic.Uint64
}

// UDPAssociate opens a UDP association: the Request, the Operation Reply
// with the proxy's remote-facing address (Bound) and the stack options in
// effect, and the Association Initialization. The data channel is set up
// at once (a UDP socket, a DTLS handshake, or the control connection); with
// ReceiveFirst the mapping is made and confirmed before it returns. ctx
// bounds the setup only.
func (c *Client) UDPAssociate(ctx context.Context, o *UDPOptions) (*UDPAssoc, error) {
	if o == nil {
		o = &UDPOptions{}
	}
	switch o.Over {
	case UDPOverUDP, UDPOverTCP, UDPOverDTLS:
	default:
		return nil, fail(gateway.ReasonGeneral, "udp associate", fmt.Errorf("unknown udp transport %d", o.Over))
	}
	relay := o.Server
	if relay == "" {
		relay = c.cfg.Server
	}
	if o.Over != UDPOverTCP {
		if err := checkHostPort(relay); err != nil {
			return nil, fail(gateway.ReasonGeneral, "udp associate", fmt.Errorf("relay endpoint %q: %w", relay, err))
		}
	}
	dcfg := o.DTLS
	if o.Over == UDPOverDTLS && dcfg == nil {
		if dcfg = c.dtlsConfig(); dcfg == nil {
			return nil, fail(gateway.ReasonGeneral, "udp associate", errors.New("datagrams over dtls need a tls or dtls configuration"))
		}
	}
	bind := o.Bind
	if !bind.IsName() && !bind.IP.IsValid() {
		bind.IP = ipv4Any
	}
	legs := o.Legs
	res, err := c.do(ctx, &request{cmd: s6.CmdUDPAssociate, addr: bind, stack: legs.RequestOptions(c.cfg.Dialect)})
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(res.conn, ctrlSmallBuf)
	id, err := c.readInit(ctx, res.conn, br)
	if err != nil {
		res.conn.Close()
		return nil, err
	}
	legs.ApplyReply(res.op.Options.Stack)
	u := &UDPAssoc{
		ID: id, Bound: res.op.Bind, Legs: legs, AuthReply: res.auth, OpReply: res.op, Token: res.token,
		c: c, ctrl: res.conn, br: br, confirm: o.ConfirmTimeout,
		confirmed: make(chan struct{}), refused: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	if u.confirm <= 0 {
		u.confirm = DefaultConfirmTimeout
	}
	u.log = c.log.With("assoc", hex.EncodeToString(id[:]))
	u.cp = gateway.NewConnPark(res.conn, u.readControl)
	u.mode.Store(uint32(UDPOverTCP))
	if o.Over != UDPOverTCP {
		dc, err := u.dialData(ctx, o, relay, dcfg)
		switch {
		case err == nil:
			u.data = dc
			u.mode.Store(uint32(o.Over))
		case ctx.Err() != nil:
			res.conn.Close()
			return nil, fail(gateway.Classify(ctx.Err()), "udp associate", ctx.Err())
		default:
			u.log.Info("udp relay endpoint unusable; datagrams go over the control connection",
				"relay", relay, "transport", o.Over.String(), "error", err)
		}
	}
	if u.Transport() == UDPOverTCP {
		u.openControlQueues()
		u.startWriter()
	}
	u.wg.Add(1)
	go u.readControl()
	if o.ReceiveFirst {
		msg, _ := s6.AppendDatagram(nil, u.ID, gateway.Addr{IP: ipv4Any}, nil)
		u.wmu.Lock()
		u.started = true
		u.wmu.Unlock()
		if err := u.mapWith(ctx, msg, false); err != nil {
			u.Close()
			return nil, err
		}
	}
	return u, nil
}

// readInit reads the Association Initialization that follows the
// Operation Reply.
func (c *Client) readInit(ctx context.Context, conn net.Conn, br *bufio.Reader) (s6.AssocID, error) {
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stop := watch(hctx, conn)
	buf := make([]byte, 64)
	m, err := s6.ReadUDPMessage(br, buf)
	if !stop() {
		return s6.AssocID{}, fail(gateway.Classify(hctx.Err()), "udp associate", hctx.Err())
	}
	if err != nil {
		return s6.AssocID{}, readErr("read association initialization", err)
	}
	if m.Type != s6.UDPInit {
		return s6.AssocID{}, fail(gateway.ReasonGeneral, "udp associate",
			fmt.Errorf("%w: %s instead of the association initialization", ErrProtocol, m.Type))
	}
	return m.Assoc, nil
}

// dtlsConfig derives a DTLS configuration from the client's TLS one.
func (c *Client) dtlsConfig() *dtls.Config {
	if c.tls == nil {
		return nil
	}
	return &dtls.Config{
		RootCAs:              c.tls.RootCAs,
		ServerName:           c.tls.ServerName,
		InsecureSkipVerify:   c.tls.InsecureSkipVerify,
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
	}
}

// dialData opens the UDP or DTLS channel to the relay endpoint.
func (u *UDPAssoc) dialData(ctx context.Context, o *UDPOptions, relay string, dcfg *dtls.Config) (net.Conn, error) {
	dial := o.DialPacket
	if dial == nil {
		d := &net.Dialer{}
		if ta, ok := u.ctrl.LocalAddr().(*net.TCPAddr); ok && u.c.cfg.Dial == nil {
			// The proxy accepts datagrams only from the control
			// connection's address.
			d.LocalAddr = &net.UDPAddr{IP: ta.IP}
		}
		dial = func(ctx context.Context, relay string) (net.Conn, error) { return d.DialContext(ctx, "udp", relay) }
	}
	conn, err := dial(ctx, relay)
	if err != nil {
		return nil, err
	}
	if o.Over != UDPOverDTLS {
		return conn, nil
	}
	// An absent endpoint refuses at once (ICMP port unreachable); only a
	// silent one makes the handshake wait this long.
	hctx, cancel := context.WithTimeout(ctx, min(max(5*u.confirm, 5*time.Second), u.c.timeout))
	dc, err := dtls.ClientWithContext(hctx, conn, dcfg)
	cancel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("dtls handshake with %s: %w", relay, err)
	}
	return dc, nil
}

// Transport returns how datagrams travel now: the transport asked for, or
// UDPOverTCP after a fall back.
func (u *UDPAssoc) Transport() UDPTransport { return UDPTransport(u.mode.Load()) }

// Confirmed is closed when the proxy confirmed the mapping.
func (u *UDPAssoc) Confirmed() <-chan struct{} { return u.confirmed }

// Done is closed when the association has ended.
func (u *UDPAssoc) Done() <-chan struct{} { return u.done }

// LocalAddr returns the client's end of the data channel: the UDP socket,
// or the control connection when datagrams travel over it.
func (u *UDPAssoc) LocalAddr() net.Addr {
	if u.Transport() != UDPOverTCP && u.data != nil {
		return u.data.LocalAddr()
	}
	return u.ctrl.LocalAddr()
}

// Stats returns the association's counters.
func (u *UDPAssoc) Stats() UDPStats {
	return UDPStats{Sent: u.sent.Load(), Received: u.received.Load(),
		DroppedOut: u.droppedOut.Load(), DroppedIn: u.droppedIn.Load()}
}

func (u *UDPAssoc) isConfirmed() bool {
	select {
	case <-u.confirmed:
		return true
	default:
		return false
	}
}

func (u *UDPAssoc) isDone() bool {
	select {
	case <-u.done:
		return true
	default:
		return false
	}
}

// mapWith makes the mapping with msg (the first Datagram, or the empty one
// of a receive-first client) and waits for its Confirmation. Over UDP or
// DTLS msg is resent until the Confirmation comes; when it does not come in
// time, or the endpoint refuses, the association falls back to the control
// connection and msg goes there. sent says msg already went out once.
func (u *UDPAssoc) mapWith(ctx context.Context, msg []byte, sent bool) error {
	if u.Transport() != UDPOverTCP {
		ok, err := u.mapOverData(ctx, msg, sent)
		if ok || err != nil {
			return err
		}
		u.fallBack()
	}
	if !u.enqueueControl(msg) {
		return u.closedErr("udp associate")
	}
	t := time.NewTimer(u.c.timeout)
	defer t.Stop()
	select {
	case <-u.confirmed:
		return nil
	case <-u.done:
		return u.closedErr("udp associate")
	case <-ctx.Done():
		return fail(gateway.Classify(ctx.Err()), "udp associate", ctx.Err())
	case <-t.C:
		return fail(gateway.ReasonTimeout, "udp associate", errors.New("no association confirmation over the control connection"))
	}
}

// mapOverData sends msg over the data channel until the Confirmation comes
// (true), the confirmation timeout passes or the endpoint refuses (false),
// or the association or ctx ends (an error).
func (u *UDPAssoc) mapOverData(ctx context.Context, msg []byte, sent bool) (bool, error) {
	deadline := time.Now().Add(u.confirm)
	// Resend after 25 ms, then at doubling intervals up to 250 ms: a
	// refusing endpoint (an ICMP port unreachable) shows at the next send.
	every := min(25*time.Millisecond, u.confirm)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		if !sent {
			if err := u.writeData(msg); err != nil && errors.Is(err, syscall.ECONNREFUSED) {
				return false, nil
			}
		}
		sent = false
		select {
		case <-u.confirmed:
			return true, nil
		case <-u.refused:
			return false, nil
		case <-u.done:
			return false, u.closedErr("udp associate")
		case <-ctx.Done():
			return false, fail(gateway.Classify(ctx.Err()), "udp associate", ctx.Err())
		case <-t.C:
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		every = min(2*every, 250*time.Millisecond)
		t.Reset(min(every, left))
	}
}

// mapAsync confirms the mapping a first WriteTo started over UDP or DTLS.
func (u *UDPAssoc) mapAsync(msg []byte, sent bool) {
	defer u.wg.Done()
	if err := u.mapWith(context.Background(), msg, sent); err != nil && !u.isDone() {
		u.log.Info("udp association not confirmed", "error", err)
	}
}

// fallBack switches the association to the control connection: the data
// channel is closed (a ReadFrom waiting on it goes on with the control
// connection) and queued messages are written there.
func (u *UDPAssoc) fallBack() {
	u.wmu.Lock()
	if u.Transport() == UDPOverTCP {
		u.wmu.Unlock()
		return
	}
	was := u.Transport()
	u.openControlQueues()
	u.mode.Store(uint32(UDPOverTCP))
	u.wmu.Unlock()
	u.startWriter()
	u.data.SetReadDeadline(time.Time{})
	u.wakeData()
	u.data.Close()
	u.log.Info("no association confirmation; datagrams go over the control connection", "tried", was.String())
}

// openControlQueues makes the inbox and the writer's queue for datagrams
// over the control connection; called before the association starts
// there, or under wmu before mode says it falls back there.
func (u *UDPAssoc) openControlQueues() {
	u.in = newInbox(u.done)
	u.in.setDeadline(u.rdl)
	u.out = make(chan *[]byte, inboxLen)
}

func (u *UDPAssoc) startWriter() {
	u.writerOnce.Do(func() {
		u.wmu.Lock()
		defer u.wmu.Unlock()
		if u.closed {
			return
		}
		u.wg.Add(1)
		go u.writeControl()
	})
}

func (u *UDPAssoc) signalRefused() {
	select {
	case u.refused <- struct{}{}:
	default:
	}
}

// writeData writes one message on the data channel.
func (u *UDPAssoc) writeData(msg []byte) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	if u.closed || u.Transport() == UDPOverTCP {
		return net.ErrClosed
	}
	_, err := u.data.Write(msg)
	return err
}

// WriteTo sends one datagram to dst (an IP address or a name the proxy
// resolves). It never blocks for long: over the control connection the
// datagram is queued, and dropped when the queue is full. Errors wrap
// gateway.ErrDropped (not sent) or net.ErrClosed (the association ended).
func (u *UDPAssoc) WriteTo(b []byte, dst gateway.Addr) error {
	h, err := s6.DatagramHeaderLen(dst)
	if err != nil {
		return fail(gateway.ReasonAddrTypeNotSupported, "send", err)
	}
	if h+len(b) > s6.MaxUDPMessageLen {
		return fail(gateway.ReasonGeneral, "send",
			fmt.Errorf("%w: %d bytes do not fit in a relay message", gateway.ErrDropped, len(b)))
	}
	if u.Transport() == UDPOverTCP {
		return u.sendControl(b, dst, h)
	}
	u.wmu.Lock()
	if u.closed {
		u.wmu.Unlock()
		return u.closedErr("send")
	}
	if u.Transport() == UDPOverTCP {
		u.wmu.Unlock()
		return u.sendControl(b, dst, h)
	}
	need := h + len(b)
	if need > maxDTLSMessage && u.Transport() == UDPOverDTLS {
		u.wmu.Unlock()
		u.droppedOut.Add(1)
		return fail(gateway.ReasonGeneral, "send",
			fmt.Errorf("%w: %d bytes do not fit in a dtls record of the relay", gateway.ErrDropped, len(b)))
	}
	if cap(u.wbuf) < need {
		u.wbuf = make([]byte, need, max(need, 2048))
	}
	w := u.wbuf[:need]
	copy(w[h:], b)
	if _, err := s6.PutDatagramHeader(w, u.ID, dst, len(b)); err != nil {
		u.wmu.Unlock()
		return fail(gateway.ReasonGeneral, "send", err)
	}
	_, werr := u.data.Write(w)
	if !u.started {
		// The first datagram maps the association; confirm it in the
		// background, resending this one meanwhile.
		u.started = true
		u.wg.Add(1)
		go u.mapAsync(bytes.Clone(w), werr == nil)
	}
	u.wmu.Unlock()
	if werr != nil {
		if errors.Is(werr, syscall.ECONNREFUSED) && !u.isConfirmed() {
			u.signalRefused()
		}
		u.droppedOut.Add(1)
		return fail(gateway.ReasonGeneral, "send", fmt.Errorf("%w: %w", gateway.ErrDropped, werr))
	}
	u.sent.Add(1)
	return nil
}

// sendControl queues a datagram for the control connection.
func (u *UDPAssoc) sendControl(b []byte, dst gateway.Addr, h int) error {
	p := outPool.Get().(*[]byte)
	need := h + len(b)
	if cap(*p) < need {
		*p = make([]byte, need)
	}
	w := (*p)[:need]
	copy(w[h:], b)
	if _, err := s6.PutDatagramHeader(w, u.ID, dst, len(b)); err != nil {
		outPool.Put(p)
		return fail(gateway.ReasonGeneral, "send", err)
	}
	*p = w
	select {
	case <-u.done:
		outPool.Put(p)
		return u.closedErr("send")
	default:
	}
	select {
	case u.out <- p:
		u.sent.Add(1)
		return nil
	default:
		outPool.Put(p)
		u.droppedOut.Add(1)
		return fail(gateway.ReasonGeneral, "send", fmt.Errorf("%w: control connection queue full", gateway.ErrDropped))
	}
}

// enqueueControl queues msg for the control connection, waiting for room;
// false when the association ended.
func (u *UDPAssoc) enqueueControl(msg []byte) bool {
	p := outPool.Get().(*[]byte)
	*p = append((*p)[:0], msg...)
	select {
	case u.out <- p:
		return true
	case <-u.done:
		outPool.Put(p)
		return false
	}
}

// writeControl writes queued messages to the control connection, several
// per write when they queue up.
func (u *UDPAssoc) writeControl() {
	defer u.wg.Done()
	batch := make([]byte, 0, 4096)
	for {
		select {
		case p := <-u.out:
			batch = append(batch[:0], *p...)
			outPool.Put(p)
		more:
			for len(batch) < maxBatch {
				select {
				case p := <-u.out:
					batch = append(batch, *p...)
					outPool.Put(p)
				default:
					break more
				}
			}
			u.ctrl.SetWriteDeadline(time.Now().Add(ctrlWriteTimeout))
			if _, err := u.ctrl.Write(batch); err != nil {
				u.shutdown(fmt.Errorf("write to the control connection: %w", err))
				return
			}
		case <-u.done:
			return
		}
	}
}

// readControl reads the control connection: the Confirmation, and the
// datagrams and Error messages once they travel there. The association
// ends with the connection. After a second without a message it parks the
// connection and ends; the park set runs it again when the connection is
// readable or closed, or on shutdown.
func (u *UDPAssoc) readControl() {
	u.cp.Touch(time.Now())
	if u.cbuf == nil {
		u.cbuf = make([]byte, 64)
	}
	for {
		over := u.Transport() == UDPOverTCP
		if over && u.br.Size() < ctrlBufSize && u.br.Buffered() == 0 {
			// Datagrams come here now: read several per system call.
			u.br = bufio.NewReaderSize(u.ctrl, ctrlBufSize)
		}
		if u.cp != nil && u.br.Buffered() == 0 {
			// Wait for a message's first byte under the time to park: a
			// deadline never cuts a message in two.
			u.ctrl.SetReadDeadline(u.cp.Deadline(time.Time{}))
			_, err := u.br.Peek(1)
			if err != nil && isTimeout(err) && !u.isDone() {
				if u.cp.ParkIdle(time.Time{}, u.isDone) {
					return
				}
				continue
			}
			if err != nil {
				u.endControl(err)
				return
			}
			u.ctrl.SetReadDeadline(time.Time{})
			u.cp.Touch(time.Now())
		}
		buf, bp := u.cbuf, (*[]byte)(nil)
		if over {
			bp = readPool.Get().(*[]byte)
			buf = *bp
		}
		m, err := s6.ReadUDPMessage(u.br, buf)
		if err == nil {
			u.controlMessage(&m)
		}
		if bp != nil {
			readPool.Put(bp)
		}
		if err != nil {
			u.endControl(err)
			return
		}
	}
}

// endControl ends the association when its control connection's reader
// stops with err (the proxy's close, or ours, is no error).
func (u *UDPAssoc) endControl(err error) {
	if errors.Is(err, io.EOF) || isTimeout(err) {
		err = nil
	}
	u.shutdown(err)
	u.wg.Done()
}

// controlMessage handles a message that came over the control connection;
// m's payload is copied, not kept.
func (u *UDPAssoc) controlMessage(m *s6.UDPMessage) {
	if m.Assoc != u.ID {
		u.droppedIn.Add(1)
		return
	}
	switch m.Type {
	case s6.UDPConfirm:
		u.confirmOnce.Do(func() { close(u.confirmed) })
	case s6.UDPDatagram, s6.UDPError:
		if u.Transport() != UDPOverTCP {
			u.droppedIn.Add(1)
			return
		}
		im := getInMsg()
		if m.Type == s6.UDPError {
			e, ok := s6.ICMPFor(m)
			if !ok {
				putInMsg(im)
				u.droppedIn.Add(1)
				return
			}
			im.kind, im.icmp = gateway.PacketICMP, e
		} else {
			im.kind, im.from = gateway.PacketData, m.Addr
			im.buf = append(im.buf[:0], m.Payload...)
		}
		if !u.in.put(im) {
			u.droppedIn.Add(1)
		}
	default:
		u.droppedIn.Add(1)
	}
}

// ReadFrom reads the next datagram (its payload into b, truncated to b) or
// Error message (Kind gateway.PacketICMP, with the neutral error from
// s6.ICMPFor). It returns an error wrapping net.ErrClosed once the
// association has ended, and one wrapping os.ErrDeadlineExceeded when the
// read deadline passes. A b of s6.MaxUDPMessageLen bytes or more is read
// into directly.
func (u *UDPAssoc) ReadFrom(b []byte) (gateway.Packet, error) {
	for {
		if u.Transport() == UDPOverTCP {
			return u.readQueued(b)
		}
		pkt, ok, err := u.readData(b)
		if ok || err != nil {
			return pkt, err
		}
	}
}

// readQueued returns the next message that came over the control
// connection.
func (u *UDPAssoc) readQueued(b []byte) (gateway.Packet, error) {
	m, err := u.in.get()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return gateway.Packet{}, u.closedErr("read")
		}
		return gateway.Packet{}, fail(gateway.ReasonTimeout, "read", err)
	}
	pkt := gateway.Packet{Kind: m.kind, From: m.from, ICMP: m.icmp}
	if m.kind == gateway.PacketData {
		pkt.N = copy(b, m.buf)
	}
	putInMsg(m)
	u.received.Add(1)
	return pkt, nil
}

// readData reads one message from the data channel; ok is false for a
// message that was dropped or a transient error.
func (u *UDPAssoc) readData(b []byte) (pkt gateway.Packet, ok bool, err error) {
	rb := b
	var pooled *[]byte
	if len(b) < maxRead {
		pooled = readPool.Get().(*[]byte)
		rb = *pooled
	}
	defer func() {
		if pooled != nil {
			readPool.Put(pooled)
		}
	}()
	n, rerr := u.data.Read(rb)
	if rerr != nil {
		return pkt, false, u.dataReadErr(rerr)
	}
	m, _, perr := s6.ParseUDPMessage(rb[:n])
	if perr != nil || m.Assoc != u.ID {
		u.droppedIn.Add(1)
		return pkt, false, nil
	}
	switch m.Type {
	case s6.UDPDatagram:
		pkt = gateway.Packet{Kind: gateway.PacketData, N: copy(b, m.Payload), From: m.Addr}
	case s6.UDPError:
		e, known := s6.ICMPFor(&m)
		if !known {
			u.droppedIn.Add(1)
			return pkt, false, nil
		}
		pkt = gateway.Packet{Kind: gateway.PacketICMP, ICMP: e}
	default:
		u.droppedIn.Add(1)
		return pkt, false, nil
	}
	u.received.Add(1)
	return pkt, true, nil
}

// dataReadErr decides what a read error on the data channel means: nil to
// read on (a transient error, or the fall back to the control connection
// closed the channel), or the error ReadFrom returns.
func (u *UDPAssoc) dataReadErr(err error) error {
	switch {
	case u.isDone():
		return u.closedErr("read")
	case u.Transport() == UDPOverTCP:
		return nil
	case isTimeout(err):
		return fail(gateway.ReasonTimeout, "read", fmt.Errorf("%w: %w", os.ErrDeadlineExceeded, err))
	case errors.Is(err, syscall.ECONNREFUSED):
		// An ICMP error about the relay endpoint: before the mapping is
		// confirmed a reason to fall back, afterwards transient.
		if !u.isConfirmed() {
			u.signalRefused()
		}
		return nil
	case errors.Is(err, net.ErrClosed), errors.Is(err, io.EOF), isDTLSFatal(err):
		// The channel is gone (a DTLS connection closed by the proxy, or
		// the via association ended): nothing more can arrive.
		u.shutdown(fmt.Errorf("data channel: %w", err))
		return u.closedErr("read")
	}
	return nil
}

// isDTLSFatal reports whether err ends a DTLS connection (a fatal alert, or
// the connection closed).
func isDTLSFatal(err error) bool {
	var fe *dtls.FatalError
	return errors.As(err, &fe)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// SetReadDeadline sets the deadline for ReadFrom; a zero t means none.
func (u *UDPAssoc) SetReadDeadline(t time.Time) error {
	u.wmu.Lock()
	u.rdl = t
	in := u.in
	u.wmu.Unlock()
	if in != nil {
		in.setDeadline(t)
	}
	if u.data != nil && u.Transport() != UDPOverTCP {
		if err := u.data.SetReadDeadline(t); err != nil && u.Transport() != UDPOverTCP && !u.isDone() {
			return err
		}
	}
	return nil
}

// wakeData resumes a reader parked on the plain UDP data channel (the
// frontend's packet loop) just before the channel is closed: the close
// alone would reach it only at the park set's next sweep.
func (u *UDPAssoc) wakeData() {
	if pc, ok := u.data.(*net.UDPConn); ok {
		gateway.WakeSocket(pc)
	}
}

func (u *UDPAssoc) closedErr(op string) error {
	return fail(gateway.ReasonGeneral, op, net.ErrClosed)
}

// shutdown ends the association without waiting for its goroutines.
func (u *UDPAssoc) shutdown(cause error) {
	u.closeOnce.Do(func() {
		u.wmu.Lock()
		u.closed = true
		u.wmu.Unlock()
		close(u.done)
		u.ctrl.Close()
		u.cp.Wake() // a parked control reader sees the end
		if u.data != nil {
			// pion/dtls keeps a goroutine per pending read deadline.
			u.data.SetReadDeadline(time.Time{})
			u.wakeData()
			u.data.Close()
		}
		if cause != nil {
			u.log.Debug("udp association ended", "error", cause)
		} else {
			u.log.Debug("udp association ended")
		}
	})
}

// Close ends the association: the control connection is closed, which
// tells the proxy to end the association and release its port and any
// reservation it holds.
func (u *UDPAssoc) Close() error {
	u.shutdown(nil)
	u.wg.Wait()
	return nil
}
