package socks6

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

// hx decodes a hex literal; spaces are ignored.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ipAddr(s string, port uint16) gateway.Addr { return gateway.Addr{IP: ip(s), Port: port} }

func nameAddr(t testing.TB, s string, port uint16) gateway.Addr {
	t.Helper()
	a, err := gateway.NameAddr(s, port)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var testAssoc = AssocID{1, 2, 3, 4, 5, 6, 7, 8}
