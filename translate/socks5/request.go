package socks5

import (
	"errors"
	"fmt"
	"io"

	"github.com/sixgate/sixgate/gateway"
)

// Request is the client's SOCKS request (RFC 1928 section 4):
//
//	+----+-----+-------+------+----------+----------+
//	|VER | CMD |  RSV  | ATYP | DST.ADDR | DST.PORT |
//	+----+-----+-------+------+----------+----------+
//	| 1  |  1  | X'00' |  1   | Variable |    2     |
//	+----+-----+-------+------+----------+----------+
type Request struct {
	Command Command
	// Dest is the destination for CONNECT, the expected peer for BIND and
	// the client's expected UDP source for UDP ASSOCIATE (often 0.0.0.0:0).
	Dest gateway.Addr
}

// ReadRequest reads a request. RSV is ignored. The command is judged first:
// for an unknown CMD it returns ErrCommand, after reading the rest of the
// message when its ATYP is known, and the returned Request then holds the
// raw command and the destination. An unknown ATYP gives ErrAddrType (the
// rest cannot be read), a bad domain name an error wrapping
// gateway.ErrBadName (the message has been read). RequestFailure turns each
// of these into the reply to send.
func ReadRequest(r io.Reader) (Request, error) {
	var buf [4 + maxAddrLen]byte // one allocation for the whole message
	hdr := buf[:4]
	if n, err := io.ReadFull(r, hdr); err != nil {
		if n >= 1 && hdr[0] != Version {
			return Request{}, versionErr(msgRequest, hdr[0])
		}
		return Request{}, readErr(msgRequest, [...]string{"VER", "CMD", "RSV", "ATYP"}[n], err, true)
	}
	if hdr[0] != Version {
		return Request{}, versionErr(msgRequest, hdr[0])
	}
	q := Request{Command: Command(hdr[1])}
	dest, err := readAddr(r, buf[4:], AddrType(hdr[3]), msgRequest, "DST.ADDR", "DST.PORT")
	q.Dest = dest
	if err != nil && !errors.Is(err, ErrAddrType) && !errors.Is(err, gateway.ErrBadName) {
		return q, err // the reader failed: nothing to judge
	}
	if !q.Command.Valid() {
		return q, fieldErr(msgRequest, "CMD", fmt.Errorf("%w 0x%02x", ErrCommand, hdr[1]))
	}
	return q, err
}

// Append appends the encoded request to b. The command must be one of the
// three RFC 1928 commands (ErrCommand) and a domain name at most 255 bytes
// of ASCII without NUL or empty labels (gateway.ErrBadName). A Dest with
// neither IP nor name is sent as 0.0.0.0.
func (q Request) Append(b []byte) ([]byte, error) {
	if !q.Command.Valid() {
		return b, fieldErr(msgRequest, "CMD", fmt.Errorf("%w 0x%02x", ErrCommand, uint8(q.Command)))
	}
	if err := checkAddr(q.Dest); err != nil {
		return b, fieldErr(msgRequest, "DST.ADDR", err)
	}
	b = append(b, Version, byte(q.Command), 0)
	return appendAddr(b, q.Dest), nil
}

// Reply is the server's reply to a request (RFC 1928 section 6):
//
//	+----+-----+-------+------+----------+----------+
//	|VER | REP |  RSV  | ATYP | BND.ADDR | BND.PORT |
//	+----+-----+-------+------+----------+----------+
//	| 1  |  1  | X'00' |  1   | Variable |    2     |
//	+----+-----+-------+------+----------+----------+
//
// CONNECT gets one reply, BIND two (the listening address, then the peer),
// UDP ASSOCIATE one (the relay address).
type Reply struct {
	Code ReplyCode
	// Bound is BND.ADDR/BND.PORT: the server's outgoing address for
	// CONNECT, the listening address or the peer for BIND, the UDP relay
	// address for UDP ASSOCIATE. A zero Bound is sent as 0.0.0.0:0, the
	// usual address of a failure reply.
	Bound gateway.Addr
}

// ReadReply reads a reply. Any REP value is accepted and RSV is ignored.
// Once VER and REP have been read the returned Reply carries Code even on
// error, so a client can still report why a server with a malformed failure
// reply refused.
func ReadReply(r io.Reader) (Reply, error) {
	var buf [4 + maxAddrLen]byte // one allocation for the whole message
	hdr := buf[:4]
	if n, err := io.ReadFull(r, hdr); err != nil {
		if n >= 1 && hdr[0] != Version {
			return Reply{}, versionErr(msgReply, hdr[0])
		}
		p := Reply{}
		if n >= 2 {
			p.Code = ReplyCode(hdr[1])
		}
		return p, readErr(msgReply, [...]string{"VER", "REP", "RSV", "ATYP"}[n], err, true)
	}
	if hdr[0] != Version {
		return Reply{}, versionErr(msgReply, hdr[0])
	}
	p := Reply{Code: ReplyCode(hdr[1])}
	var err error
	p.Bound, err = readAddr(r, buf[4:], AddrType(hdr[3]), msgReply, "BND.ADDR", "BND.PORT")
	return p, err
}

// Append appends the encoded reply to b. A domain name in Bound must be at
// most 255 bytes of ASCII without NUL or empty labels (gateway.ErrBadName).
func (p Reply) Append(b []byte) ([]byte, error) {
	if err := checkAddr(p.Bound); err != nil {
		return b, fieldErr(msgReply, "BND.ADDR", err)
	}
	b = append(b, Version, byte(p.Code), 0)
	return appendAddr(b, p.Bound), nil
}

// Err returns nil for a successful reply, and otherwise a *gateway.Error
// whose Reason is p.Code.Reason(), for a client to return to its caller.
func (p Reply) Err() error {
	if p.Code == RepSucceeded {
		return nil
	}
	return gateway.NewError(p.Code.Reason(), "socks5: reply", fmt.Errorf("rep 0x%02x", uint8(p.Code)))
}
