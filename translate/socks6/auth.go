package socks6

import (
	"io"
)

// Method is an authentication method code (the IANA SOCKS methods registry).
type Method uint8

// Authentication methods. -11 specifies only MethodNone and MethodUserPass.
const (
	MethodNone         Method = 0x00
	MethodGSSAPI       Method = 0x01
	MethodUserPass     Method = 0x02 // RFC 1929 username/password
	MethodNoAcceptable Method = 0xff // only ever in a Selection
)

// MaxInitialData is the largest Initial Data Length (2^14).
const MaxInitialData = 16384

// Advertisement is the Authentication Method Advertisement option (kind 2).
type Advertisement struct {
	// InitialDataLen is the number of bytes of application data the client
	// sends right after a CONNECT Request (≤ MaxInitialData). For other
	// commands it has no defined meaning; send 0.
	InitialDataLen uint16
	// Methods are the advertised methods. Method 0 is never listed: the
	// decoder drops it (it cannot be told from padding) and the encoder
	// skips it.
	Methods []Method
}

// Has reports whether m is advertised.
func (a *Advertisement) Has(m Method) bool {
	for _, x := range a.Methods {
		if x == m {
			return true
		}
	}
	return false
}

// AuthData is an Authentication Data option (kind 4): method-specific data,
// in a Request (0-RTT credentials) or an Authentication Reply.
type AuthData struct {
	Method Method
	// Data is the method's data. Decoded, it includes the option's zero
	// padding, which the method's own format delimits (RFC 1929 bodies are
	// self-delimiting); encoded, it is padded to a multiple of 4.
	Data []byte
}

// RFC 1929 versions and status values.
const (
	UserPassVersion = 0x01
	// UserPassSuccess is the reply STATUS for success; any other value is
	// a failure.
	UserPassSuccess = 0x00
	// UserPassFailure is the STATUS the codec's callers send on failure.
	UserPassFailure = 0x01
)

// UserPassRequest is an RFC 1929 username/password request body: in an
// Authentication Data option for method 2 (0-RTT), or raw on the stream
// after a Selection of method 2 (in-band, -11 only).
type UserPassRequest struct {
	Username string
	Password string
}

// UserPassReply is an RFC 1929 reply body (VER 1, STATUS).
type UserPassReply struct {
	Status byte
}

// OK reports whether the reply's status is success.
func (r UserPassReply) OK() bool { return r.Status == UserPassSuccess }

// AppendUserPassRequest appends the RFC 1929 request for u to b. Username
// and password are each at most 255 bytes; empty ones are written as they
// are (RFC 1929 asks for 1..255, and the decoder tolerates 0).
func AppendUserPassRequest(b []byte, u UserPassRequest) ([]byte, error) {
	if len(u.Username) > 255 {
		return b, encodeErr("username/password request", "username", ErrTooLong)
	}
	if len(u.Password) > 255 {
		return b, encodeErr("username/password request", "password", ErrTooLong)
	}
	b = append(b, UserPassVersion, byte(len(u.Username)))
	b = append(b, u.Username...)
	b = append(b, byte(len(u.Password)))
	return append(b, u.Password...), nil
}

// AppendUserPassReply appends the RFC 1929 reply `01 STATUS` to b.
func AppendUserPassReply(b []byte, r UserPassReply) []byte {
	return append(b, UserPassVersion, r.Status)
}

const (
	msgUPReq = "username/password request"
	msgUPRep = "username/password reply"
)

// ParseUserPassRequest parses an RFC 1929 request at the start of b and
// returns it and its length; bytes after it (option padding) are not
// examined.
func ParseUserPassRequest(b []byte) (UserPassRequest, int, error) {
	if len(b) < 2 {
		return UserPassRequest{}, 0, fieldErr(msgUPReq, "version", 0, ErrShort)
	}
	if b[0] != UserPassVersion {
		return UserPassRequest{}, 0, fieldErr(msgUPReq, "version", 0, ErrVersion)
	}
	ul := int(b[1])
	if len(b) < 2+ul+1 {
		return UserPassRequest{}, 0, fieldErr(msgUPReq, "username", 2, ErrShort)
	}
	pl := int(b[2+ul])
	n := 3 + ul + pl
	if len(b) < n {
		return UserPassRequest{}, 0, fieldErr(msgUPReq, "password", 3+ul, ErrShort)
	}
	return UserPassRequest{Username: string(b[2 : 2+ul]), Password: string(b[3+ul : n])}, n, nil
}

// ParseUserPassReply parses an RFC 1929 reply at the start of b and returns
// it and its length (2).
func ParseUserPassReply(b []byte) (UserPassReply, int, error) {
	if len(b) < 2 {
		return UserPassReply{}, 0, fieldErr(msgUPRep, "status", 0, ErrShort)
	}
	if b[0] != UserPassVersion {
		return UserPassReply{}, 0, fieldErr(msgUPRep, "version", 0, ErrVersion)
	}
	return UserPassReply{Status: b[1]}, 2, nil
}

// ReadUserPassRequest reads one raw RFC 1929 request from r (the in-band
// exchange after a Selection of method 2), reading no byte beyond it.
func ReadUserPassRequest(r io.Reader) (UserPassRequest, error) {
	b, err := readN(r, make([]byte, 0, 2), 2)
	if err != nil {
		return UserPassRequest{}, readErr(msgUPReq, "version", len(b), err)
	}
	if b[0] != UserPassVersion {
		return UserPassRequest{}, fieldErr(msgUPReq, "version", 0, ErrVersion)
	}
	ul := int(b[1])
	if b, err = readN(r, b, ul+1); err != nil {
		return UserPassRequest{}, readErr(msgUPReq, "username", len(b), err)
	}
	if b, err = readN(r, b, int(b[2+ul])); err != nil {
		return UserPassRequest{}, readErr(msgUPReq, "password", len(b), err)
	}
	u, _, err := ParseUserPassRequest(b)
	return u, err
}

// ReadUserPassReply reads one raw RFC 1929 reply (2 bytes) from r.
func ReadUserPassReply(r io.Reader) (UserPassReply, error) {
	var buf [2]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return UserPassReply{}, readErr(msgUPRep, "status", 0, err)
	}
	u, _, err := ParseUserPassReply(buf[:])
	return u, err
}

// UserPassAuthData returns the 0-RTT Authentication Data option carrying u.
func UserPassAuthData(u UserPassRequest) (AuthData, error) {
	d, err := AppendUserPassRequest(nil, u)
	if err != nil {
		return AuthData{}, err
	}
	return AuthData{Method: MethodUserPass, Data: d}, nil
}

// UserPassReplyData returns the Authentication Data option a proxy puts in
// its Authentication Reply to answer 0-RTT username/password: `02 01 STATUS`.
func UserPassReplyData(status byte) AuthData {
	return AuthData{Method: MethodUserPass, Data: []byte{UserPassVersion, status}}
}

// UserPass returns the username/password request carried by the options'
// Authentication Data for method 2; ok is false if there is none, err
// non-nil if it is malformed.
func (o *Options) UserPass() (u UserPassRequest, ok bool, err error) {
	d, ok := o.AuthDataFor(MethodUserPass)
	if !ok {
		return UserPassRequest{}, false, nil
	}
	u, _, err = ParseUserPassRequest(d)
	return u, true, err
}

// UserPassResult returns the RFC 1929 reply carried by the options'
// Authentication Data for method 2 (in an Authentication Reply).
func (o *Options) UserPassResult() (r UserPassReply, ok bool, err error) {
	d, ok := o.AuthDataFor(MethodUserPass)
	if !ok {
		return UserPassReply{}, false, nil
	}
	r, _, err = ParseUserPassReply(d)
	return r, true, err
}

// AuthDataFor returns the data of the Authentication Data option for method
// m, if the options hold one.
func (o *Options) AuthDataFor(m Method) ([]byte, bool) {
	for i := range o.AuthData {
		if o.AuthData[i].Method == m {
			return o.AuthData[i].Data, true
		}
	}
	return nil, false
}
