package turn

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/pion/stun"
)

// ResponseOptions say how a response is finished, after its own attributes:
// SOFTWARE, then MESSAGE-INTEGRITY, then FINGERPRINT (turn.md §12).
type ResponseOptions struct {
	// Software is the SOFTWARE value; empty for none.
	Software string
	// Key signs the response with MESSAGE-INTEGRITY: the key the request
	// authenticated with (every response after authentication passed is
	// signed). Nil for an unsigned response.
	Key []byte
	// Fingerprint appends FINGERPRINT; set it when the request had one
	// (HasFingerprint).
	Fingerprint bool
}

type finisher ResponseOptions

// AddTo appends SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT as configured
// and checks that the message still fits its 16-bit length.
func (o finisher) AddTo(m *stun.Message) error {
	if o.Software != "" {
		if err := stun.NewSoftware(o.Software).AddTo(m); err != nil {
			return attrErr(stun.AttrSoftware, ErrTooLarge)
		}
	}
	extra := 0
	if o.Key != nil {
		extra += 24
	}
	if o.Fingerprint {
		extra += 8
	}
	if int(m.Length)+extra > 0xFFFC {
		return fmt.Errorf("turn: message: %w", ErrTooLarge)
	}
	if o.Key != nil {
		if err := stun.MessageIntegrity(o.Key).AddTo(m); err != nil {
			return fmt.Errorf("turn: message-integrity: %w", err)
		}
	}
	if o.Fingerprint {
		if err := stun.Fingerprint.AddTo(m); err != nil {
			return fmt.Errorf("turn: fingerprint: %w", err)
		}
	}
	return nil
}

func build(t stun.MessageType, tid [stun.TransactionIDSize]byte, o ResponseOptions, attrs []stun.Setter) (*stun.Message, error) {
	m := new(stun.Message)
	setters := make([]stun.Setter, 0, len(attrs)+3)
	setters = append(setters, t, stun.NewTransactionIDSetter(tid))
	setters = append(setters, attrs...)
	setters = append(setters, finisher(o))
	if err := m.Build(setters...); err != nil {
		return nil, err
	}
	return m, nil
}

// NewSuccess builds the success response to req: the request's method and
// transaction ID, attrs in order, then SOFTWARE, MESSAGE-INTEGRITY and
// FINGERPRINT as o says. CreatePermission and ChannelBind successes carry
// no attributes of their own (TV6, TV8).
func NewSuccess(req *stun.Message, o ResponseOptions, attrs ...stun.Setter) (*stun.Message, error) {
	return build(ResponseType(req.Type, true), req.TransactionID, o, attrs)
}

// NewError builds an error response to req: ERROR-CODE with the canonical
// reason phrase, attrs, then SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT as o
// says. Use NewUnauthorized and NewStaleNonce for 401 and 438, which must
// carry REALM and NONCE and no MESSAGE-INTEGRITY.
func NewError(req *stun.Message, code stun.ErrorCode, o ResponseOptions, attrs ...stun.Setter) (*stun.Message, error) {
	all := make([]stun.Setter, 0, len(attrs)+1)
	all = append(all, ErrorCodeAttr{Code: code})
	all = append(all, attrs...)
	return build(ResponseType(req.Type, false), req.TransactionID, o, all)
}

// NewUnauthorized builds the 401 challenge (TV2): ERROR-CODE 401, REALM and
// NONCE, never MESSAGE-INTEGRITY (o.Key is ignored).
func NewUnauthorized(req *stun.Message, realm, nonce string, o ResponseOptions) (*stun.Message, error) {
	return newChallenge(req, stun.CodeUnauthorized, realm, nonce, o)
}

// NewStaleNonce builds the 438 answer (TV19): ERROR-CODE 438, REALM and a
// fresh NONCE, never MESSAGE-INTEGRITY (o.Key is ignored).
func NewStaleNonce(req *stun.Message, realm, nonce string, o ResponseOptions) (*stun.Message, error) {
	return newChallenge(req, stun.CodeStaleNonce, realm, nonce, o)
}

func newChallenge(req *stun.Message, code stun.ErrorCode, realm, nonce string, o ResponseOptions) (*stun.Message, error) {
	if realm == "" || len(realm) > MaxRealmLen {
		return nil, attrErr(stun.AttrRealm, ErrAttrValue)
	}
	if nonce == "" || len(nonce) > MaxNonceLen {
		return nil, attrErr(stun.AttrNonce, ErrAttrValue)
	}
	o.Key = nil
	return NewError(req, code, o, stun.NewRealm(realm), stun.NewNonce(nonce))
}

// NewUnknownAttributes builds the 420 answer listing unknown
// comprehension-required attributes with the RFC's 2-byte
// UNKNOWN-ATTRIBUTES (TV17).
func NewUnknownAttributes(req *stun.Message, unknown []stun.AttrType, o ResponseOptions) (*stun.Message, error) {
	return NewError(req, stun.CodeUnknownAttribute, o, UnknownAttributes(unknown))
}

// NewErrorFor builds the error response for err: the code CodeOf(err) gives,
// with UNKNOWN-ATTRIBUTES for a 420 *CodeError. It refuses 401 and 438, which
// need REALM and NONCE (NewUnauthorized, NewStaleNonce).
func NewErrorFor(req *stun.Message, err error, o ResponseOptions) (*stun.Message, error) {
	code := CodeOf(err)
	switch code {
	case 0:
		return nil, errors.New("turn: no error to answer")
	case stun.CodeUnauthorized, stun.CodeStaleNonce:
		return nil, fmt.Errorf("turn: error %d needs realm and nonce", code)
	case stun.CodeUnknownAttribute:
		var ce *CodeError
		errors.As(err, &ce)
		return NewUnknownAttributes(req, ce.Unknown, o)
	}
	return NewError(req, code, o)
}

// NewBindingSuccess builds the answer to a Binding request: XOR-MAPPED-ADDRESS
// set to the request's source.
func NewBindingSuccess(req *stun.Message, source netip.AddrPort, o ResponseOptions) (*stun.Message, error) {
	return NewSuccess(req, o, MappedAddress{Addr: source})
}

// AllocateResult is the content of an Allocate success response.
type AllocateResult struct {
	// Relayed lists the relayed transport addresses: one, or two for a
	// dual-stack allocation.
	Relayed []netip.AddrPort
	// Lifetime is the granted lifetime.
	Lifetime Lifetime
	// ReservationToken names the reserved port+1 (EVEN-PORT R=1); nil for
	// none.
	ReservationToken *ReservationToken
	// AddressError reports the family a dual-stack request could not get;
	// nil for none.
	AddressError *AddressErrorCode
	// Mapped is the client's source address (XOR-MAPPED-ADDRESS).
	Mapped netip.AddrPort
}

// NewAllocateSuccess builds an Allocate success response with its attributes
// in the order of the §9 vectors (TV4, TV15, TV28): XOR-RELAYED-ADDRESS
// (one per relay), LIFETIME, RESERVATION-TOKEN, ADDRESS-ERROR-CODE,
// XOR-MAPPED-ADDRESS, then SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT.
func NewAllocateSuccess(req *stun.Message, r AllocateResult, o ResponseOptions) (*stun.Message, error) {
	if len(r.Relayed) == 0 || len(r.Relayed) > 2 {
		return nil, attrErr(stun.AttrXORRelayedAddress, ErrAttrValue)
	}
	attrs := make([]stun.Setter, 0, 6)
	for _, ap := range r.Relayed {
		attrs = append(attrs, RelayedAddress{Addr: ap})
	}
	attrs = append(attrs, r.Lifetime)
	if r.ReservationToken != nil {
		attrs = append(attrs, *r.ReservationToken)
	}
	if r.AddressError != nil {
		attrs = append(attrs, *r.AddressError)
	}
	attrs = append(attrs, MappedAddress{Addr: r.Mapped})
	return NewSuccess(req, o, attrs...)
}

// ParseAllocateResponse reads an Allocate success response (the client side):
// every XOR-RELAYED-ADDRESS (at least one), LIFETIME, XOR-MAPPED-ADDRESS and
// the optional RESERVATION-TOKEN and ADDRESS-ERROR-CODE. Any malformed one
// fails the call.
func ParseAllocateResponse(m *stun.Message) (AllocateResult, error) {
	var r AllocateResult
	if m.Type != TypeAllocateSuccess {
		return r, fmt.Errorf("turn: %s: %w", m.Type, ErrUnexpectedType)
	}
	var err error
	if r.Relayed, err = RelayedAddresses(m); err != nil {
		return r, err
	}
	if err = r.Lifetime.GetFrom(m); err != nil {
		return r, err
	}
	var mapped MappedAddress
	if err = mapped.GetFrom(m); err != nil {
		return r, err
	}
	r.Mapped = mapped.Addr
	if m.Contains(stun.AttrReservationToken) {
		r.ReservationToken = new(ReservationToken)
		if err = r.ReservationToken.GetFrom(m); err != nil {
			return r, err
		}
	}
	if m.Contains(AttrAddressErrorCode) || m.Contains(AttrAddressErrorCodeDraft) {
		r.AddressError = new(AddressErrorCode)
		if err = r.AddressError.GetFrom(m); err != nil {
			return r, err
		}
	}
	return r, nil
}

// NewRefreshSuccess builds a Refresh success response carrying the lifetime
// set (0 after a deletion).
func NewRefreshSuccess(req *stun.Message, lifetime Lifetime, o ResponseOptions) (*stun.Message, error) {
	return NewSuccess(req, o, lifetime)
}

// NewConnectSuccess builds an RFC 6062 Connect success response carrying the
// CONNECTION-ID the client binds a data connection with (TV24).
func NewConnectSuccess(req *stun.Message, id ConnectionID, o ResponseOptions) (*stun.Message, error) {
	return NewSuccess(req, o, id)
}
