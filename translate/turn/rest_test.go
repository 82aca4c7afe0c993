package turn

import (
	"errors"
	"testing"
	"time"
)

func TestParseRESTUsername(t *testing.T) {
	tests := []struct {
		in   string
		ts   int64
		user string
		ok   bool
	}{
		{"1893456000:alice", 1893456000, "alice", true},
		{"1893456000", 1893456000, "", true},
		{"alice:1893456000", 1893456000, "alice", true},
		{"1893456000:12345", 1893456000, "12345", true},
		{"a:b:1893456000", 1893456000, "a:b", true},
		{"1893456000:a:b", 1893456000, "a:b", true},
		{"alice", 0, "", false},
		{"", 0, "", false},
		{":", 0, "", false},
		{"-5:alice", 0, "", false},
		{"+5:alice", 0, "", false},
		{"1e9:alice", 0, "", false},
		{"9999999999999999999:alice", 0, "", false},
	}
	for _, tc := range tests {
		exp, user, err := ParseRESTUsername(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, ErrRESTUsername) {
				t.Errorf("%q: %v", tc.in, err)
			}
			continue
		}
		if exp.Unix() != tc.ts || user != tc.user {
			t.Errorf("%q: %v %q", tc.in, exp.Unix(), user)
		}
	}
	if got := RESTUsername(time.Unix(1893456000, 0), "alice"); got != tvREST {
		t.Errorf("RESTUsername %q", got)
	}
	if got := RESTUsername(time.Unix(1893456000, 0), ""); got != "1893456000" {
		t.Errorf("bare RESTUsername %q", got)
	}
	if err := CheckRESTExpiry("alice", time.Unix(0, 0)); CodeOf(err) != 401 {
		t.Errorf("no timestamp: %v", err)
	}
	if _, err := AuthenticateREST(decodeVec(t, "TV20"), tvREST, tvRealm, nil, time.Unix(0, 0)); CodeOf(err) != 401 {
		t.Errorf("no secrets: %v", err)
	}
}
