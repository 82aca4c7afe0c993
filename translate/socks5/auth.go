package socks5

import (
	"fmt"
	"io"
	"slices"
)

// Greeting is the client's first message, the version identifier/method
// selection message of RFC 1928 section 3:
//
//	+-----+----------+----------+
//	| VER | NMETHODS | METHODS  |
//	+-----+----------+----------+
//	|  1  |    1     | 1 to 255 |
//	+-----+----------+----------+
type Greeting struct {
	// Methods are the authentication methods the client offers, in its
	// order; 1 to 255 of them.
	Methods []Method
}

// ReadGreeting reads a greeting. NMETHODS 0 is an error (ErrLength), since
// RFC 1928 gives METHODS 1 to 255 octets.
func ReadGreeting(r io.Reader) (Greeting, error) {
	var buf [2 + 255]byte
	if n, err := io.ReadFull(r, buf[:2]); err != nil {
		if n == 1 && buf[0] != Version {
			return Greeting{}, versionErr(msgGreeting, buf[0])
		}
		return Greeting{}, readErr(msgGreeting, [...]string{"VER", "NMETHODS"}[n], err, true)
	}
	if buf[0] != Version {
		return Greeting{}, versionErr(msgGreeting, buf[0])
	}
	n := int(buf[1])
	if n == 0 {
		return Greeting{}, fieldErr(msgGreeting, "NMETHODS", fmt.Errorf("%w: no methods", ErrLength))
	}
	if _, err := io.ReadFull(r, buf[2:2+n]); err != nil {
		return Greeting{}, readErr(msgGreeting, "METHODS", err, false)
	}
	g := Greeting{Methods: make([]Method, n)}
	for i, m := range buf[2 : 2+n] {
		g.Methods[i] = Method(m)
	}
	return g, nil
}

// Append appends the encoded greeting to b. It fails with ErrLength when
// there are no methods or more than 255.
func (g Greeting) Append(b []byte) ([]byte, error) {
	if len(g.Methods) == 0 || len(g.Methods) > 255 {
		return b, fieldErr(msgGreeting, "NMETHODS", fmt.Errorf("%w: %d methods", ErrLength, len(g.Methods)))
	}
	b = append(b, Version, byte(len(g.Methods)))
	for _, m := range g.Methods {
		b = append(b, byte(m))
	}
	return b, nil
}

// Offers reports whether the client offers method m.
func (g Greeting) Offers(m Method) bool { return slices.Contains(g.Methods, m) }

// Choose returns the first of the server's methods, in the server's order of
// preference, that the client offers, or MethodNoAcceptable.
func (g Greeting) Choose(server ...Method) Method {
	for _, m := range server {
		if m != MethodNoAcceptable && g.Offers(m) {
			return m
		}
	}
	return MethodNoAcceptable
}

// ReadMethodSelection reads the server's METHOD selection message (VER,
// METHOD). MethodNoAcceptable is returned as a method, not as an error: the
// client then closes.
func ReadMethodSelection(r io.Reader) (Method, error) {
	var buf [2]byte
	if n, err := io.ReadFull(r, buf[:]); err != nil {
		if n == 1 && buf[0] != Version {
			return 0, versionErr(msgMethodSelection, buf[0])
		}
		return 0, readErr(msgMethodSelection, [...]string{"VER", "METHOD"}[n], err, true)
	}
	if buf[0] != Version {
		return 0, versionErr(msgMethodSelection, buf[0])
	}
	return Method(buf[1]), nil
}

// AppendMethodSelection appends the METHOD selection message for m (use
// MethodNoAcceptable to refuse every offered method).
func AppendMethodSelection(b []byte, m Method) []byte {
	return append(b, Version, byte(m))
}

// UserPassRequest is the RFC 1929 username/password request:
//
//	+----+------+----------+------+----------+
//	|VER | ULEN |  UNAME   | PLEN |  PASSWD  |
//	+----+------+----------+------+----------+
//	| 1  |  1   | 1 to 255 |  1   | 1 to 255 |
//	+----+------+----------+------+----------+
//
// Both strings may hold any bytes; RFC 1929 restricts only their lengths.
type UserPassRequest struct {
	Username string
	Password string
}

// ReadUserPassRequest reads a username/password request. VER must be 1. A
// ULEN or PLEN of 0 is an error (ErrLength); the whole message has been read
// even then, so the server can send its failure reply before closing.
func ReadUserPassRequest(r io.Reader) (UserPassRequest, error) {
	var buf [2 + 255 + 1 + 255]byte
	if n, err := io.ReadFull(r, buf[:2]); err != nil {
		if n == 1 && buf[0] != UserPassVersion {
			return UserPassRequest{}, versionErr(msgUserPassRequest, buf[0])
		}
		return UserPassRequest{}, readErr(msgUserPassRequest, [...]string{"VER", "ULEN"}[n], err, true)
	}
	if buf[0] != UserPassVersion {
		return UserPassRequest{}, versionErr(msgUserPassRequest, buf[0])
	}
	ulen := int(buf[1])
	// UNAME and PLEN in one read.
	if n, err := io.ReadFull(r, buf[2:2+ulen+1]); err != nil {
		field := "UNAME"
		if n >= ulen {
			field = "PLEN"
		}
		return UserPassRequest{}, readErr(msgUserPassRequest, field, err, false)
	}
	plen := int(buf[2+ulen])
	p := 2 + ulen + 1
	if _, err := io.ReadFull(r, buf[p:p+plen]); err != nil {
		return UserPassRequest{}, readErr(msgUserPassRequest, "PASSWD", err, false)
	}
	if ulen == 0 {
		return UserPassRequest{}, fieldErr(msgUserPassRequest, "ULEN", fmt.Errorf("%w: empty username", ErrLength))
	}
	if plen == 0 {
		return UserPassRequest{}, fieldErr(msgUserPassRequest, "PLEN", fmt.Errorf("%w: empty password", ErrLength))
	}
	return UserPassRequest{Username: string(buf[2 : 2+ulen]), Password: string(buf[p : p+plen])}, nil
}

// Append appends the encoded request to b. Username and password must each
// be 1 to 255 bytes long (ErrLength).
func (u UserPassRequest) Append(b []byte) ([]byte, error) {
	if len(u.Username) == 0 || len(u.Username) > 255 {
		return b, fieldErr(msgUserPassRequest, "ULEN", fmt.Errorf("%w: username of %d bytes", ErrLength, len(u.Username)))
	}
	if len(u.Password) == 0 || len(u.Password) > 255 {
		return b, fieldErr(msgUserPassRequest, "PLEN", fmt.Errorf("%w: password of %d bytes", ErrLength, len(u.Password)))
	}
	b = append(b, UserPassVersion, byte(len(u.Username)))
	b = append(b, u.Username...)
	b = append(b, byte(len(u.Password)))
	return append(b, u.Password...), nil
}

// ReadUserPassReply reads the server's username/password reply (VER 1,
// STATUS) and returns STATUS: UserPassSuccess, or any other value for a
// failure.
func ReadUserPassReply(r io.Reader) (status byte, err error) {
	var buf [2]byte
	if n, err := io.ReadFull(r, buf[:]); err != nil {
		if n == 1 && buf[0] != UserPassVersion {
			return 0, versionErr(msgUserPassReply, buf[0])
		}
		return 0, readErr(msgUserPassReply, [...]string{"VER", "STATUS"}[n], err, true)
	}
	if buf[0] != UserPassVersion {
		return 0, versionErr(msgUserPassReply, buf[0])
	}
	return buf[1], nil
}

// AppendUserPassReply appends the username/password reply with status
// (UserPassSuccess or UserPassFailure).
func AppendUserPassReply(b []byte, status byte) []byte {
	return append(b, UserPassVersion, status)
}

func versionErr(msg string, v byte) error {
	return fieldErr(msg, "VER", fmt.Errorf("%w 0x%02x", ErrVersion, v))
}
