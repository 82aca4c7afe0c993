package socks6

import (
	"bytes"
	"errors"
	"io"

	"github.com/sixgate/sixgate/gateway"
)

// Stream framing: each Read* function reads exactly one message from an
// io.Reader (a TCP or TLS stream) and nothing beyond it. The message's bytes
// go into buf when it has the capacity (pass a pooled buffer of
// MaxRequestLen or MaxUDPMessageLen bytes for zero-allocation reads);
// otherwise a buffer grows in steps bounded by the bytes actually received,
// so a peer that announces 64 KiB and sends 16 bytes costs no 64 KiB. A
// clean end of stream before the first byte is returned as io.EOF; a stream
// that ends inside a message gives a *FieldError wrapping ErrShort and
// io.ErrUnexpectedEOF.

// minGrow is the first allocation when buf is too small.
const minGrow = 512

// readN appends exactly n bytes from r to b.
func readN(r io.Reader, b []byte, n int) ([]byte, error) {
	for n > 0 {
		if len(b) == cap(b) {
			grow := min(max(len(b), minGrow), n)
			nb := make([]byte, len(b), len(b)+grow)
			copy(nb, b)
			b = nb
		}
		chunk := min(n, cap(b)-len(b))
		m, err := io.ReadFull(r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		n -= m
		if err != nil {
			return b, err
		}
	}
	return b, nil
}

// readFirst reads the first byte of a message: io.EOF stays io.EOF.
func readFirst(r io.Reader, buf []byte, msg string) ([]byte, error) {
	b, err := readN(r, buf[:0], 1)
	if err != nil {
		if len(b) == 0 && errors.Is(err, io.EOF) {
			return b, io.EOF
		}
		return b, readErr(msg, "version", 0, err)
	}
	return b, nil
}

// readAddrMsg reads the Request/Operation Reply layout: the version byte
// alone (so that a peer speaking another protocol is answered at once), the
// rest of the 8-byte header, then the address — for a domain name first the
// length byte, then all but the last byte of the name, which detects style C
// without waiting for a byte that may never come — and the options. Where a
// prefix is already wrong it stops reading; the slice parser, run on that
// prefix, names the field.
func readAddrMsg(r io.Reader, buf []byte, msg string) ([]byte, error) {
	fail := func(b []byte) error {
		var a gateway.Addr
		var o Options
		if _, _, err := parseAddrMsg(b, &a, &o, Draft11, msg); err != nil && !errors.Is(err, ErrShort) {
			return err
		}
		return fieldErr(msg, "header", 0, ErrBadLength) // not reached: the checks below mirror the parser
	}
	b, err := readFirst(r, buf, msg)
	if err != nil {
		return b, err
	}
	if b[0] != Version {
		return b, fail(b)
	}
	if b, err = readN(r, b, 7); err != nil {
		return b, readErr(msg, "header", len(b), err)
	}
	ol := int(b[2])<<8 | int(b[3])
	if checkOptionsLen(ol) != nil {
		return b, fail(b)
	}
	var rest int
	switch AddrType(b[7]) {
	case AddrIPv4:
		rest = 4 + ol
	case AddrIPv6:
		rest = 16 + ol
	case AddrDomain:
		if b, err = readN(r, b, 1); err != nil {
			return b, readErr(msg, "address length", 8, err)
		}
		l := int(b[8])
		if l == 0 {
			return b, fail(b)
		}
		if b, err = readN(r, b, l-1); err != nil {
			return b, readErr(msg, "address", len(b), err)
		}
		if !nameBytesOK(l, b[9:]) {
			return b, fail(b)
		}
		rest = 1 + namePad(l) + ol
	default:
		return b, fail(b)
	}
	if b, err = readN(r, b, rest); err != nil {
		return b, readErr(msg, "address or options", len(b), err)
	}
	return b, nil
}

// ReadRequest reads one Request from r. If the first byte is not 6 it
// returns at once with a *FieldError wrapping ErrVersion (Field "version"),
// having read that one byte: the proxy then sends AppendVersionMismatch and
// closes. Initial data (Request.InitialDataLen) is left unread.
func ReadRequest(r io.Reader, buf []byte, d Dialect) (Request, error) {
	b, err := readAddrMsg(r, buf, msgRequest)
	if err != nil {
		return Request{}, err
	}
	req, _, err := ParseRequest(b, d)
	return req, err
}

// ReadOpReply reads one Operation Reply from r.
func ReadOpReply(r io.Reader, buf []byte, d Dialect) (OpReply, error) {
	b, err := readAddrMsg(r, buf, msgOpRep)
	if err != nil {
		return OpReply{}, err
	}
	rep, _, err := ParseOpReply(b, d)
	return rep, err
}

// ReadAuthReply reads one Authentication Reply from r.
func ReadAuthReply(r io.Reader, buf []byte, d Dialect) (AuthReply, error) {
	b, err := readFirst(r, buf, msgAuthRep)
	if err != nil {
		return AuthReply{}, err
	}
	if b[0] == Version {
		if b, err = readN(r, b, 3); err != nil {
			return AuthReply{}, readErr(msgAuthRep, "header", len(b), err)
		}
		if ol := int(b[2])<<8 | int(b[3]); checkOptionsLen(ol) == nil {
			if b, err = readN(r, b, ol); err != nil {
				return AuthReply{}, readErr(msgAuthRep, "options", len(b), err)
			}
		}
	}
	rep, _, err := ParseAuthReply(b, d)
	return rep, err
}

// ReadInBandResult reads what follows the client's raw RFC 1929 request in
// the in-band username/password exchange (-11, §10 item 13): this codec's
// proxy sends the raw RFC 1929 reply and then the final Authentication
// Reply, but a proxy that sends only the Authentication Reply is accepted
// too (up is nil then). The two are told apart by the first byte (1 or 6).
func ReadInBandResult(r io.Reader, buf []byte, d Dialect) (up *UserPassReply, rep AuthReply, err error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, AuthReply{}, readErr(msgUPRep, "version", 0, err)
	}
	mr := io.MultiReader(bytes.NewReader(first[:]), r)
	if first[0] == UserPassVersion {
		u, err := ReadUserPassReply(mr)
		if err != nil {
			return nil, AuthReply{}, err
		}
		up = &u
		mr = r
	}
	rep, err = ReadAuthReply(mr, buf, d)
	return up, rep, err
}
