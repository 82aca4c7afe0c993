package turn

// Kind is what the first byte of a packet or stream frame on a
// client-facing socket says it is (turn.md §1.4).
type Kind uint8

// Kinds of client packets.
const (
	// KindOther: not TURN (first byte 0x80-0xFF, or no bytes). Drop.
	KindOther Kind = iota
	// KindSTUN: a STUN message (0x00-0x3F). Decode it with Decode.
	KindSTUN
	// KindChannelData: ChannelData on an RFC 8656 channel (0x40-0x4F).
	KindChannelData
	// KindReservedChannel: ChannelData in the RFC 5766 range RFC 8656
	// reserves (0x50-0x7F). Drop it (and on a stream, close).
	KindReservedChannel
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindSTUN:
		return "stun"
	case KindChannelData:
		return "channeldata"
	case KindReservedChannel:
		return "reserved channel"
	}
	return "other"
}

// Demux classifies a client packet by its first byte. Use it instead of
// stun.IsMessage, which only checks the length and the cookie, so that a
// ChannelData payload holding the cookie at bytes 4-7 is not taken for STUN.
// It does not allocate.
func Demux(b []byte) Kind {
	if len(b) == 0 {
		return KindOther
	}
	switch c := b[0]; {
	case c < 0x40:
		return KindSTUN
	case c < 0x50:
		return KindChannelData
	case c < 0x80:
		return KindReservedChannel
	}
	return KindOther
}
