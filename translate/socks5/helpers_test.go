package socks5

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

// hx decodes hex with optional spaces; 'text' in single quotes is taken as
// ASCII: hx("03 0b 'example.com' 0050").
func hx(s string) []byte {
	var out []byte
	for s != "" {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			out = append(out, s[1:1+end]...)
			s = s[end+2:]
			continue
		}
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		b, err := hex.DecodeString(s[:end])
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
		s = s[end:]
	}
	return out
}

func ipAddr(s string, port uint16) gateway.Addr {
	return gateway.Addr{IP: netip.MustParseAddr(s), Port: port}
}

func nameAddr(s string, port uint16) gateway.Addr {
	return gateway.Addr{Name: s, Port: port}
}

// wantFieldErr checks that err is a *FieldError for field wrapping target.
func wantFieldErr(t *testing.T, err error, field string, target error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T) is not a *FieldError", err, err)
	}
	if fe.Field != field {
		t.Errorf("field = %q, want %q (%v)", fe.Field, field, err)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v does not wrap %v", err, target)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "socks5: ") || strings.ContainsAny(msg[len(msg)-1:], ".!") {
		t.Errorf("error text %q: want prefix \"socks5: \" and no trailing punctuation", msg)
	}
}

// name255 is a valid 255-byte domain name: four 63-byte labels.
var name255 = strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 63)
