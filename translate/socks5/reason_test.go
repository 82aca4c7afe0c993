package socks5

import (
	"context"
	"fmt"
	"syscall"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func TestReasonTable(t *testing.T) {
	// code -> reason, and the reason's code is the same code again.
	codes := []struct {
		code   ReplyCode
		reason gateway.Reason
	}{
		{RepSucceeded, gateway.ReasonNone},
		{RepGeneralFailure, gateway.ReasonGeneral},
		{RepNotAllowed, gateway.ReasonNotAllowed},
		{RepNetUnreachable, gateway.ReasonNetUnreachable},
		{RepHostUnreachable, gateway.ReasonHostUnreachable},
		{RepConnRefused, gateway.ReasonRefused},
		{RepTTLExpired, gateway.ReasonTTLExpired},
		{RepCommandNotSupported, gateway.ReasonCommandNotSupported},
		{RepAddrTypeNotSupported, gateway.ReasonAddrTypeNotSupported},
		{0x09, gateway.ReasonGeneral},
		{0xF0, gateway.ReasonGeneral},
		{0xFF, gateway.ReasonGeneral},
	}
	for _, tt := range codes {
		if got := tt.code.Reason(); got != tt.reason {
			t.Errorf("%v.Reason() = %v, want %v", tt.code, got, tt.reason)
		}
		if tt.code <= RepAddrTypeNotSupported {
			if back := ReplyFor(tt.code.Reason()); back != tt.code {
				t.Errorf("ReplyFor(%v) = %v, want %v", tt.code.Reason(), back, tt.code)
			}
		}
	}
}

func TestReplyFor(t *testing.T) {
	tests := []struct {
		reason gateway.Reason
		code   ReplyCode
	}{
		{gateway.ReasonNone, RepSucceeded},
		{gateway.ReasonGeneral, RepGeneralFailure},
		{gateway.ReasonNotAllowed, RepNotAllowed},
		{gateway.ReasonAuthFailed, RepNotAllowed},
		{gateway.ReasonNetUnreachable, RepNetUnreachable},
		{gateway.ReasonHostUnreachable, RepHostUnreachable},
		{gateway.ReasonRefused, RepConnRefused},
		{gateway.ReasonTTLExpired, RepTTLExpired},
		{gateway.ReasonTimeout, RepTTLExpired},
		{gateway.ReasonCommandNotSupported, RepCommandNotSupported},
		{gateway.ReasonAddrTypeNotSupported, RepAddrTypeNotSupported},
		{gateway.ReasonFamilyMismatch, RepAddrTypeNotSupported},
		{gateway.ReasonDFUnsupported, RepGeneralFailure},
		{gateway.ReasonQuotaExceeded, RepNotAllowed},
		{gateway.ReasonCapacityExhausted, RepGeneralFailure},
		{gateway.Reason(200), RepGeneralFailure},
	}
	for _, tt := range tests {
		if got := ReplyFor(tt.reason); got != tt.code {
			t.Errorf("ReplyFor(%v) = %v, want %v", tt.reason, got, tt.code)
		}
	}
}

func TestReplyForError(t *testing.T) {
	tests := []struct {
		err  error
		code ReplyCode
	}{
		{nil, RepSucceeded},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), RepConnRefused},
		{fmt.Errorf("dial: %w", syscall.ENETUNREACH), RepNetUnreachable},
		{fmt.Errorf("dial: %w", syscall.EHOSTUNREACH), RepHostUnreachable},
		{context.DeadlineExceeded, RepTTLExpired},
		{gateway.NewError(gateway.ReasonNotAllowed, "policy", nil), RepNotAllowed},
		{gateway.NewError(gateway.ReasonFamilyMismatch, "direct: listen", nil), RepAddrTypeNotSupported},
		{fmt.Errorf("something"), RepGeneralFailure},
	}
	for _, tt := range tests {
		if got := ReplyForError(tt.err); got != tt.code {
			t.Errorf("ReplyForError(%v) = %v, want %v", tt.err, got, tt.code)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{RepHostUnreachable.String(), "host unreachable"},
		{ReplyCode(0xF0).String(), "unassigned reply 0xf0"},
		{CmdUDPAssociate.String(), "udp associate"},
		{Command(9).String(), "command 0x09"},
		{MethodUserPass.String(), "username/password"},
		{Method(0x80).String(), "method 0x80"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
