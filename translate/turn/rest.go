package turn

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun"
)

// TURN REST API credentials (draft-uberti-behave-turn-rest-00, turn.md §3.8):
// the username carries an expiry time, the password is
// base64(HMAC-SHA1(secret, username)), and the key is the usual long-term
// key of username, realm and password.

// RESTPassword returns the TURN REST password for username under secret.
func RESTPassword(secret, username string) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// RESTUsername returns the draft's username "<expiry>:<user>", or the bare
// expiry when user is empty.
func RESTUsername(expiry time.Time, user string) string {
	ts := strconv.FormatInt(expiry.Unix(), 10)
	if user == "" {
		return ts
	}
	return ts + ":" + user
}

// ParseRESTUsername returns the expiry time and the user part of a TURN REST
// username. Three forms are accepted, as coturn does: "<expiry>:<user>" (the
// draft's), a bare "<expiry>", and "<user>:<expiry>". The timestamp is the
// all-digit part (Unix seconds); when both parts are all digits the first is
// the timestamp. A username without one fails with ErrRESTUsername.
func ParseRESTUsername(username string) (expiry time.Time, user string, err error) {
	if ts, ok := parseUnix(username); ok {
		return ts, "", nil
	}
	if i := strings.IndexByte(username, ':'); i >= 0 {
		if ts, ok := parseUnix(username[:i]); ok {
			return ts, username[i+1:], nil
		}
	}
	if i := strings.LastIndexByte(username, ':'); i >= 0 {
		if ts, ok := parseUnix(username[i+1:]); ok {
			return ts, username[:i], nil
		}
	}
	return time.Time{}, "", fmt.Errorf("turn: %q: %w", username, ErrRESTUsername)
}

// parseUnix parses 1 to 18 ASCII digits as Unix seconds; 18 digits cannot
// overflow int64.
func parseUnix(s string) (time.Time, bool) {
	if len(s) == 0 || len(s) > 18 {
		return time.Time{}, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		n = n*10 + int64(c-'0')
	}
	return time.Unix(n, 0), true
}

// CheckRESTExpiry fails when username carries no timestamp or one before
// now. Both errors carry code 401: the user counts as unknown.
func CheckRESTExpiry(username string, now time.Time) error {
	expiry, _, err := ParseRESTUsername(username)
	if err != nil {
		return codeErr(stun.CodeUnauthorized, err)
	}
	if expiry.Before(now) {
		return codeErr(stun.CodeUnauthorized, fmt.Errorf("turn: %q: %w", username, ErrRESTExpired))
	}
	return nil
}

// RESTKey returns the long-term key for a TURN REST username under one
// shared secret: LongTermKey(username, realm, RESTPassword(secret, username)).
func RESTKey(username, realm, secret string) []byte {
	return LongTermKey(username, realm, RESTPassword(secret, username))
}

// AuthenticateREST authenticates a request that carries TURN REST
// credentials, after ParseCredentials (turn.md §3.6 steps 4 and 5): the
// username's timestamp must not be before now, then the key of each shared
// secret, newest first, is tried against MESSAGE-INTEGRITY. realm is the
// server's realm (a request naming another realm cannot verify). It returns the
// key that verifies, which signs every response. On success attributes after
// MESSAGE-INTEGRITY are removed as VerifyIntegrity does. Every failure
// carries code 401 (ErrRESTUsername, ErrRESTExpired or ErrIntegrity).
func AuthenticateREST(m *stun.Message, username, realm string, secrets []string, now time.Time) ([]byte, error) {
	if err := CheckRESTExpiry(username, now); err != nil {
		return nil, err
	}
	var last error = codeErr(stun.CodeUnauthorized, errors.New("turn: no rest secret configured"))
	for _, s := range secrets {
		key := RESTKey(username, realm, s)
		if last = checkIntegrity(m, key); last == nil {
			trimAfterIntegrity(m)
			return key, nil
		}
	}
	return nil, last
}
