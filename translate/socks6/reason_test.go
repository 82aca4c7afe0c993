package socks6

import (
	"errors"
	"syscall"
	"testing"

	"github.com/sixgate/sixgate/gateway"
)

func TestReplyCodeFor(t *testing.T) {
	tests := []struct {
		r    gateway.Reason
		want ReplyCode
	}{
		{gateway.ReasonNone, ReplySuccess},
		{gateway.ReasonGeneral, ReplyGeneralFailure},
		{gateway.ReasonNotAllowed, ReplyNotAllowed},
		{gateway.ReasonAuthFailed, ReplyGeneralFailure},
		{gateway.ReasonNetUnreachable, ReplyNetUnreachable},
		{gateway.ReasonHostUnreachable, ReplyHostUnreachable},
		{gateway.ReasonRefused, ReplyRefused},
		{gateway.ReasonTTLExpired, ReplyTTLExpired},
		{gateway.ReasonTimeout, ReplyTimeout},
		{gateway.ReasonCommandNotSupported, ReplyCommandNotSupported},
		{gateway.ReasonAddrTypeNotSupported, ReplyAddrTypeUnsupported},
		{gateway.ReasonFamilyMismatch, ReplyAddrTypeUnsupported},
		{gateway.ReasonDFUnsupported, ReplyGeneralFailure},
		{gateway.ReasonQuotaExceeded, ReplyNotAllowed},
		{gateway.ReasonCapacityExhausted, ReplyGeneralFailure},
		{gateway.Reason(200), ReplyGeneralFailure},
	}
	for _, tt := range tests {
		if got := ReplyCodeFor(tt.r); got != tt.want {
			t.Errorf("ReplyCodeFor(%v) = %v, want %v", tt.r, got, tt.want)
		}
	}
	if got := ReplyCodeForError(syscall.ECONNREFUSED); got != ReplyRefused {
		t.Errorf("ECONNREFUSED = %v", got)
	}
	if got := ReplyCodeForError(nil); got != ReplySuccess {
		t.Errorf("nil = %v", got)
	}
}

func TestReplyCodeReason(t *testing.T) {
	for c := ReplyCode(0); c <= 0x09; c++ {
		r := c.Reason()
		if c != ReplyGeneralFailure && ReplyCodeFor(r) != c {
			t.Errorf("code %v -> %v -> %v", c, r, ReplyCodeFor(r))
		}
		err := c.Err()
		if (err == nil) != (c == ReplySuccess) {
			t.Errorf("code %v Err = %v", c, err)
		}
		if err != nil && gateway.ReasonOf(err) != r {
			t.Errorf("code %v: ReasonOf = %v", c, gateway.ReasonOf(err))
		}
		var ge *gateway.Error
		if err != nil && !errors.As(err, &ge) {
			t.Errorf("code %v: not a *gateway.Error", c)
		}
	}
	if ReplyCode(0x0a).Reason() != gateway.ReasonGeneral {
		t.Error("unknown code")
	}
}
