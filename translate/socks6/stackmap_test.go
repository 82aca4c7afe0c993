package socks6

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func TestSplitStackTV23(t *testing.T) {
	r, _, err := ParseRequest(hx(t, "0601001801bb0001c000020100010008c101100000010008840103e80001000884020200"), Draft11)
	if err != nil {
		t.Fatal(err)
	}
	l := SplitStack(&r, Draft11)
	want := Legs{
		Client: gateway.StackOptions{TOS: gateway.Want[uint8](0x10)},
		Remote: gateway.StackOptions{TOS: gateway.Want[uint8](0x10), TFO: gateway.Want[uint16](1000), MPTCP: gateway.Want(true)},
		Both:   BothLegs{TOS: true},
	}
	if !reflect.DeepEqual(l, want) {
		t.Fatalf("got  %+v\nwant %+v", l, want)
	}
	// The proxy applies everything: the echo carries TOS on leg 3 again.
	l.Client.TOS.Apply(0x10)
	l.Remote.TOS.Apply(0x10)
	l.Remote.TFO.Apply(1000)
	l.Remote.MPTCP.Apply(true)
	got, err := AppendOptions(nil, &Options{Stack: l.Echo(Draft11)}, Draft11)
	if err != nil || !bytes.Equal(got, hx(t, "00010008c101100000010008840103e80001000884020200")) {
		t.Errorf("echo %x %v", got, err)
	}
	// Different values in effect on the two legs: one echo per leg.
	l.Remote.TOS.Apply(0x20)
	echo := l.Echo(Draft11)
	if len(echo) != 4 || echo[0] != (StackOption{Leg: LegClient, Kind: StackTOS, Value: 0x10}) ||
		echo[1] != (StackOption{Leg: LegRemote, Kind: StackTOS, Value: 0x20}) {
		t.Errorf("split echo %+v", echo)
	}
	// The client leg unsupported: only the remote leg is echoed.
	l.Client.TOS.Unsupport()
	if echo := l.Echo(Draft11); echo[0] != (StackOption{Leg: LegRemote, Kind: StackTOS, Value: 0x20}) {
		t.Errorf("remote-only echo %+v", echo)
	}
}

func TestEchoTV10(t *testing.T) {
	r, _, _ := ParseRequest(hx(t, "06030010000000010000000000010008850102000001000885020101"), Draft11)
	l := SplitStack(&r, Draft11)
	if !l.Remote.UDPError.Pending() || l.Remote.PortParity.Value != (gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}) {
		t.Fatalf("%+v", l.Remote)
	}
	l.Remote.UDPError.Apply(true)
	l.Remote.PortParity.Apply(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
	rep := OpReply{Bind: ipAddr("198.51.100.1", 40000), Options: Options{Stack: l.Echo(Draft11)}}
	b, err := AppendOpReply(nil, &rep, Draft11)
	if err != nil || !bytes.Equal(b, hx(t, "060000109c400001c633640100010008850102000001000885020101")) {
		t.Errorf("TV10 %x %v", b, err)
	}
	// -10: the same intent and the same outcomes in -10 encodings.
	r10, _, _ := ParseRequest(hx(t, "06030010000000010000000000010008850100000001000885020001"), Draft10)
	l10 := SplitStack(&r10, Draft10)
	if l11 := SplitStack(&r, Draft11); !reflect.DeepEqual(l10, l11) {
		t.Errorf("-10 split %+v, -11 split %+v", l10, l11)
	}
	l10.Remote.UDPError.Apply(true)
	l10.Remote.PortParity.Apply(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
	b, _ = AppendOptions(nil, &Options{Stack: l10.Echo(Draft10)}, Draft10)
	if !bytes.Equal(b, hx(t, "00010008850100000001000885020001")) {
		t.Errorf("-10 echo %x", b)
	}
}

func TestEchoDeclined(t *testing.T) {
	var l Legs
	l.Remote.HappyEyeballs.Decline(true)
	l.Remote.DF.Decline(true)
	l.Remote.MPTCP.Decline(true)
	l.Remote.UDPError.Decline(true)
	l.Remote.Backlog.Decline(5)
	l.Remote.PortParity.Decline(gateway.PortParity{Parity: gateway.ParityOdd, Reserve: true})
	l.Remote.TFO.Decline(100)             // TFO cannot say no: absent
	l.Remote.TTL.Unsupport()              // absent
	l.Remote.TOS = gateway.Want[uint8](1) // never handled: absent
	l.Client.TTL = gateway.Opt[uint8]{}   // not requested: absent
	b, err := AppendOptions(nil, &Options{Stack: l.Echo(Draft11)}, Draft11)
	want := "0001000881020100" + "0001000881040100" + "0001000884020100" + "0001000884030000" +
		"0001000885010100" + "0001000885020200"
	if err != nil || !bytes.Equal(b, hx(t, want)) {
		t.Errorf("declined echo\n got %x\nwant %s (%v)", b, want, err)
	}
	// -10 cannot say "no": declined availability options are left out, the
	// Port Parity echo says Reserve 0.
	b, _ = AppendOptions(nil, &Options{Stack: l.Echo(Draft10)}, Draft10)
	if !bytes.Equal(b, hx(t, "0001000884020100"+"0001000884030000"+"0001000885020100")) {
		t.Errorf("-10 declined echo %x", b)
	}
}

func TestSplitStackRules(t *testing.T) {
	he := StackOption{Leg: LegRemote, Kind: StackHappyEyeballs, Avail: AvailYes}
	// Happy Eyeballs only for CONNECT to a name.
	for _, c := range []struct {
		cmd  Command
		addr gateway.Addr
		want bool
	}{
		{CmdConnect, nameAddr(t, "example.com", 80), true},
		{CmdConnect, ipAddr("192.0.2.1", 80), false},
		{CmdBind, nameAddr(t, "example.com", 80), false},
	} {
		r := Request{Command: c.cmd, Addr: c.addr, Options: Options{Stack: []StackOption{he}}}
		if got := SplitStack(&r, Draft11).Remote.HappyEyeballs.Wanted(); got != c.want {
			t.Errorf("%v %v: HE wanted %v", c.cmd, c.addr, got)
		}
	}
	// Remote-only options on another leg are ignored; first request per
	// leg wins; leg 3 after leg 1 only fills the remote leg.
	r := Request{Command: CmdConnect, Options: Options{Stack: []StackOption{
		{Leg: LegClient, Kind: StackTFO, Value: 1},
		{Leg: LegBoth, Kind: StackMPTCP, Avail: AvailYes},
		{Leg: LegClient, Kind: StackTTL, Value: 9},
		{Leg: LegBoth, Kind: StackTTL, Value: 64},
		{Leg: LegRemote, Kind: StackTTL, Value: 1},
		{Leg: LegRemote, Kind: StackNoFragmentation, Avail: AvailNo},
	}}}
	l := SplitStack(&r, Draft11)
	if l.Remote.TFO.Wanted() || l.Client.TFO.Wanted() || l.Remote.MPTCP.Wanted() {
		t.Errorf("remote-only options on other legs: %+v", l)
	}
	if l.Client.TTL.Value != 9 || l.Remote.TTL.Value != 64 || l.Both.TTL {
		t.Errorf("TTL split: %+v", l)
	}
	if !l.Remote.DF.Wanted() || l.Remote.DF.Value {
		t.Errorf("DF not wanted (Availability 1): %+v", l.Remote.DF)
	}
	// Port Parity with an explicit port.
	pp := StackOption{Leg: LegRemote, Kind: StackPortParity, PortParity: gateway.PortParity{Parity: gateway.ParityOdd, Reserve: true}}
	r = Request{Command: CmdUDPAssociate, Addr: ipAddr("0.0.0.0", 5000), Options: Options{Stack: []StackOption{pp}}}
	if got := SplitStack(&r, Draft11).Remote.PortParity; got.Value != (gateway.PortParity{Reserve: true}) {
		t.Errorf("-11 explicit port: %+v", got)
	}
	if got := SplitStack(&r, Draft10).Remote.PortParity; got.Wanted() {
		t.Errorf("-10 explicit port: %+v", got)
	}
}

func TestClientSideRoundTrip(t *testing.T) {
	for _, d := range []Dialect{Draft11, Draft10} {
		client := Legs{
			Client: gateway.StackOptions{TOS: gateway.Want[uint8](8), DF: gateway.Want(true)},
			Remote: gateway.StackOptions{TOS: gateway.Want[uint8](8), DF: gateway.Want(true), TTL: gateway.Want[uint8](3),
				MPTCP: gateway.Want(true), Backlog: gateway.Want[uint16](4), UDPError: gateway.Want(true),
				PortParity: gateway.Want(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}),
				TFO:        gateway.Want[uint16](0)},
		}
		req := Request{Command: CmdUDPAssociate, Options: Options{Stack: client.RequestOptions(d)}}
		wire, err := AppendRequest(nil, &req, d)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := ParseRequest(wire, d)
		if err != nil {
			t.Fatal(err)
		}
		if d == Draft11 && (got.Options.Stack[0].Leg != LegBoth || got.Options.Stack[0].Kind != StackTOS) {
			t.Errorf("TOS not merged on leg 3: %+v", got.Options.Stack)
		}
		server := SplitStack(&got, d)
		if !reflect.DeepEqual(server.Remote, client.Remote) || !reflect.DeepEqual(server.Client, client.Client) {
			t.Fatalf("%v: server sees\n%+v\nclient sent\n%+v", d, server, client)
		}
		// The proxy: TOS applied on both legs, DF declined remotely, TTL
		// applied, MPTCP unsupported, backlog 2, UDP Error on, parity
		// without the reservation, TFO applied.
		server.Client.TOS.Apply(8)
		server.Client.DF.Apply(true)
		server.Remote.TOS.Apply(8)
		server.Remote.DF.Decline(false)
		server.Remote.TTL.Apply(3)
		server.Remote.MPTCP.Unsupport()
		server.Remote.Backlog.Apply(2)
		server.Remote.UDPError.Apply(true)
		server.Remote.PortParity.Decline(gateway.PortParity{Parity: gateway.ParityEven, Reserve: true})
		server.Remote.TFO.Apply(0)
		rep := OpReply{Options: Options{Stack: server.Echo(d)}}
		wire, err = AppendOpReply(nil, &rep, d)
		if err != nil {
			t.Fatal(err)
		}
		gotRep, _, err := ParseOpReply(wire, d)
		if err != nil {
			t.Fatal(err)
		}
		client.ApplyReply(gotRep.Options.Stack)
		want := client
		want.Client.TOS.Apply(8)
		want.Client.DF.Apply(true)
		want.Remote.TOS.Apply(8)
		want.Remote.TTL.Apply(3)
		want.Remote.MPTCP.Unsupport()
		want.Remote.Backlog.Apply(2)
		want.Remote.UDPError.Apply(true)
		want.Remote.PortParity.Decline(gateway.PortParity{Parity: gateway.ParityEven})
		want.Remote.TFO.Apply(0)
		if d == Draft11 {
			want.Remote.DF.Decline(false)
		} else {
			want.Remote.DF.Unsupport() // -10 could not say "declined"
		}
		if !reflect.DeepEqual(client, want) {
			t.Errorf("%v: outcomes\n got %+v\nwant %+v", d, client, want)
		}
	}
}

func TestPortParityAndMPTCPHelpers(t *testing.T) {
	pp := gateway.PortParity{Parity: gateway.ParityEven, Reserve: true}
	tests := []struct {
		port uint16
		d    Dialect
		want gateway.PortParity
		ok   bool
	}{
		{0, Draft11, pp, true},
		{0, Draft10, pp, true},
		{4000, Draft11, gateway.PortParity{Reserve: true}, true},
		{4000, Draft10, gateway.PortParity{}, false},
	}
	for _, tt := range tests {
		got, ok := EffectivePortParity(pp, tt.port, tt.d)
		if got != tt.want || ok != tt.ok {
			t.Errorf("port %d %v: %+v %v", tt.port, tt.d, got, ok)
		}
	}
	mptcp := []struct {
		cmd  Command
		d    Dialect
		want bool
	}{
		{CmdConnect, Draft11, false},
		{CmdBind, Draft11, true},
		{CmdUDPAssociate, Draft11, true},
		{CmdConnect, Draft10, false},
		{CmdBind, Draft10, false},
	}
	for _, tt := range mptcp {
		if got := MPTCPByDefault(tt.cmd, tt.d); got != tt.want {
			t.Errorf("MPTCPByDefault(%v, %v) = %v", tt.cmd, tt.d, got)
		}
	}
}
