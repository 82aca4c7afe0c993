package socks6

// Dialect selects the draft revision whose encodings the codec reads and
// writes. The codec never guesses it: -10 and -11 give different meanings to
// the same bytes (`00 00` Availability, Port Parity 0), so the caller passes
// the peer's revision explicitly. The zero value is Draft11.
type Dialect uint8

// The supported revisions. -09 and older are not supported.
const (
	// Draft11 is draft-olteanu-intarea-socks-6-11, the baseline.
	Draft11 Dialect = iota
	// Draft10 is revision -10: Happy Eyeballs, No Fragmentation and UDP
	// Error carry `00 00` (presence means yes), Port Parity uses 0 = even and
	// 1 = odd, a Port Parity option with an explicit port is ignored whole,
	// and a missing MPTCP option means "no MPTCP" for every command.
	Draft10
)

// String returns "draft-11" or "draft-10".
func (d Dialect) String() string {
	switch d {
	case Draft11:
		return "draft-11"
	case Draft10:
		return "draft-10"
	}
	return "unknown dialect"
}
