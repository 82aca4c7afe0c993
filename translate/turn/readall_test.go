package turn

import (
	"github.com/pion/stun"
)

// readAll runs every getter and parser of the package on m, ignoring the
// results: it must never panic.
func readAll(m *stun.Message) {
	var (
		cn  ChannelNumber
		lt  Lifetime
		ep  EvenPort
		rt  RequestedTransport
		df  DontFragment
		tok ReservationToken
		cid ConnectionID
		raf RequestedAddressFamily
		aaf AdditionalAddressFamily
		d   Data
		ic  ICMP
		aec AddressErrorCode
		ec  ErrorCodeAttr
		ua  UnknownAttributes
		pa  PeerAddress
		ra  RelayedAddress
		ma  MappedAddress
	)
	for _, g := range []stun.Getter{&cn, &lt, &ep, &rt, df, &tok, &cid, &raf, &aaf, &d, &ic, &aec, &ec, &ua, &pa, &ra, &ma} {
		_ = g.GetFrom(m)
	}
	_, _ = PeerAddresses(m)
	_, _ = RelayedAddresses(m)
	_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error { return pa.GetFrom(m) })
	_ = UnknownRequired(m, nil)
	_, _ = ParseCredentials(m)
	_, _ = ParseAllocate(m, AllocateEnv{TCPRelays: true, StreamClient: true})
	_, _ = ParseAllocate(m, AllocateEnv{})
	_, _ = ParseRefresh(m)
	_, _ = ParseCreatePermission(m)
	_, _ = ParseChannelBind(m)
	_, _ = ParseSend(m)
	_, _ = ParseConnect(m)
	_, _ = ParseConnectionBind(m)
	_, _ = ParseData(m)
	_, _, _ = ParseConnectionAttempt(m)
	_, _ = ParseAllocateResponse(m)
	_ = ReasonForResponse(m)
	_ = Dispatch(m.Type)
}
