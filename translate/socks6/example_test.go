package socks6_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"

	"net/netip"

	"github.com/sixgate/sixgate/gateway"
	"github.com/sixgate/sixgate/translate/socks6"
)

// A server reads a Request, answers a wrong version with `06`, and replies.
func ExampleReadRequest() {
	conn := bytes.NewReader([]byte{0x06, 0x01, 0x00, 0x00, 0x01, 0xbb, 0x00, 0x01, 192, 0, 2, 1})
	buf := make([]byte, socks6.MaxRequestLen) // pooled in a real server
	req, err := socks6.ReadRequest(conn, buf, socks6.Draft11)
	if errors.Is(err, socks6.ErrVersion) {
		fmt.Printf("%x\n", socks6.AppendVersionMismatch(nil))
		return
	}
	fmt.Println(req.Command, req.Addr)

	out, _ := socks6.AppendAuthReply(nil, &socks6.AuthReply{Type: socks6.AuthSuccess}, socks6.Draft11)
	rep := socks6.OpReply{
		Code: socks6.ReplyCodeForError(nil),
		Bind: gateway.AddrFromAddrPort(netip.MustParseAddrPort("198.51.100.1:40000")),
	}
	out, _ = socks6.AppendOpReply(out, &rep, socks6.Draft11)
	fmt.Println(hex.EncodeToString(out))
	// Output:
	// connect 192.0.2.1:443
	// 06000000060000009c400001c6336401
}

// A relay reads a payload at a fixed offset and puts the Datagram header
// right before it, without copying the payload.
func ExamplePutDatagramHeader() {
	pkt := make([]byte, socks6.MaxDatagramHeaderLen+1500)
	payload := pkt[socks6.MaxDatagramHeaderLen:]
	n := copy(payload, "hi") // what the remote socket delivered
	from := gateway.AddrFromAddrPort(netip.MustParseAddrPort("198.51.100.7:53"))
	id := socks6.AssocID{1, 2, 3, 4, 5, 6, 7, 8}

	h, _ := socks6.DatagramHeaderLen(from)
	start := socks6.MaxDatagramHeaderLen - h
	socks6.PutDatagramHeader(pkt[start:], id, from, n)
	msg := pkt[start : socks6.MaxDatagramHeaderLen+n]
	fmt.Println(hex.EncodeToString(msg))

	m, _, _ := socks6.ParseUDPMessage(msg)
	fmt.Println(m.Type, m.Addr, string(m.Payload))
	// Output:
	// 06030016010203040506070801000035c63364076869
	// datagram 198.51.100.7:53 hi
}

// The stack options of TV23 split per leg, applied, and echoed.
func ExampleSplitStack() {
	wire, _ := hex.DecodeString("0601001801bb0001c000020100010008c101100000010008840103e80001000884020200")
	req, _, _ := socks6.ParseRequest(wire, socks6.Draft11)
	legs := socks6.SplitStack(&req, socks6.Draft11)
	fmt.Println(legs.Client.TOS.Value, legs.Remote.TFO.Value, legs.Remote.MPTCP.Value, legs.Both.TOS)

	legs.Client.TOS.Apply(0x10)
	legs.Remote.TOS.Apply(0x10)
	legs.Remote.TFO.Decline(0)       // TFO cannot say no: left out
	legs.Remote.MPTCP.Decline(false) // echoed as Availability 1
	opts, _ := socks6.AppendOptions(nil, &socks6.Options{Stack: legs.Echo(socks6.Draft11)}, socks6.Draft11)
	fmt.Println(hex.EncodeToString(opts))
	// Output:
	// 16 1000 true true
	// 00010008c10110000001000884020100
}
