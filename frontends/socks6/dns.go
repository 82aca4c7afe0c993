package socks6

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
	"golang.org/x/net/dns/dnsmessage"
)

// serveDNS is "DNS provided by SOCKS" (§3.1): after a successful Operation
// Reply the stream carries DNS over TCP (RFC 7766), answered from the
// gateway's resolver. A and AAAA questions are answered; other types get
// NOTIMP. Nothing is ever dialled to 0.0.0.0.
func (cn *conn) serveDNS(ctx context.Context) {
	f := cn.f
	if !f.dns {
		err := gateway.NewError(gateway.ReasonRefused, "socks6: dns", errors.New("dns service disabled"))
		cn.opReply(s6.ReplyRefused, gateway.Addr{}, nil)
		cn.log(gateway.CmdConnect, nil, gateway.RelayStats{}, err)
		return
	}
	if err := cn.opReply(s6.ReplySuccess, gateway.Addr{}, nil); err != nil {
		return
	}
	var st gateway.RelayStats
	var err error
	buf := make([]byte, 2+65535)
	// Initial data, if any, is the start of the first query.
	pending := cn.initial
	for {
		cn.c.SetDeadline(time.Now().Add(f.limits.StreamIdleTimeout))
		var q []byte
		q, pending, err = readDNSMessage(cn.c, pending, buf)
		if err != nil {
			break
		}
		st.Up += int64(len(q))
		resp := cn.answer(ctx, q)
		if resp == nil {
			err = errors.New("malformed dns query")
			break
		}
		out := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(resp)), uint16(len(resp)))
		if _, err = cn.c.Write(append(out, resp...)); err != nil {
			break
		}
		st.Down += int64(len(resp))
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	cn.log(gateway.CmdConnect, nil, st, err)
}

// readDNSMessage reads one length-prefixed DNS message, first from pending
// bytes, then from r.
func readDNSMessage(r io.Reader, pending, buf []byte) (msg, rest []byte, err error) {
	n := copy(buf, pending)
	pending = pending[n:]
	for n < 2 {
		m, err := r.Read(buf[n:2])
		n += m
		if err != nil {
			return nil, nil, err
		}
	}
	l := int(binary.BigEndian.Uint16(buf))
	if n > 2+l {
		return nil, nil, errors.New("dns: initial data holds more than one message")
	}
	if _, err := io.ReadFull(r, buf[n:2+l]); err != nil {
		return nil, nil, err
	}
	return buf[2 : 2+l], pending, nil
}

// answer builds the response to one query, or nil when it cannot be parsed.
func (cn *conn) answer(ctx context.Context, q []byte) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil
	}
	rh := dnsmessage.Header{ID: hdr.ID, Response: true, OpCode: hdr.OpCode, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true}
	if hdr.OpCode != 0 || len(qs) != 1 {
		rh.RCode = dnsmessage.RCodeNotImplemented
		if len(qs) != 1 {
			rh.RCode = dnsmessage.RCodeFormatError
		}
		return finish(rh, qs, nil)
	}
	qq := qs[0]
	network := ""
	switch qq.Type {
	case dnsmessage.TypeA:
		network = "ip4"
	case dnsmessage.TypeAAAA:
		network = "ip6"
	default:
		rh.RCode = dnsmessage.RCodeNotImplemented
		return finish(rh, qs, nil)
	}
	name := strings.TrimSuffix(qq.Name.String(), ".")
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := cn.f.rt.Resolver.LookupNetIP(lctx, network, name)
	var answers []dnsmessage.Resource
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			rh.RCode = dnsmessage.RCodeNameError
		} else {
			rh.RCode = dnsmessage.RCodeServerFailure
		}
	}
	for _, a := range addrs {
		a = a.Unmap()
		h := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 30}
		switch {
		case qq.Type == dnsmessage.TypeA && a.Is4():
			answers = append(answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}})
		case qq.Type == dnsmessage.TypeAAAA && a.Is6():
			answers = append(answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
		}
	}
	return finish(rh, qs, answers)
}

func finish(h dnsmessage.Header, qs []dnsmessage.Question, answers []dnsmessage.Resource) []byte {
	m := dnsmessage.Message{Header: h, Questions: qs, Answers: answers}
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}
