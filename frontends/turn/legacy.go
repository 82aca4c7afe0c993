package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pion/stun"
	tt "github.com/sixgate/sixgate/translate/turn"
)

// RFC 5766 allowed channel numbers up to 0x7FFF; RFC 8656 reserves
// 0x5000-0x7FFF, and translate/turn refuses them. With legacy_channels the
// frontend accepts them here, for clients such as coturn's
// turnutils_uclient that still pick from the old range.
const (
	legacyMinChannel = 0x5000
	legacyMaxChannel = 0x7FFF
)

func isLegacyChannel(n uint16) bool { return n >= legacyMinChannel && n <= legacyMaxChannel }

// parseLegacyChannelData decodes a datagram on an RFC 5766 channel with the
// rules of tt.ParseChannelData.
func parseLegacyChannelData(b []byte) (tt.ChannelData, error) {
	if len(b) < tt.ChannelDataHeaderSize {
		return tt.ChannelData{}, fmt.Errorf("turn: channeldata: %w", tt.ErrTruncated)
	}
	n := binary.BigEndian.Uint16(b)
	l := int(binary.BigEndian.Uint16(b[2:]))
	if !isLegacyChannel(n) {
		return tt.ChannelData{}, fmt.Errorf("turn: channeldata: %w", tt.ErrChannelRange)
	}
	if len(b) < tt.ChannelDataHeaderSize+l {
		return tt.ChannelData{}, fmt.Errorf("turn: channeldata: %w", tt.ErrTruncated)
	}
	return tt.ChannelData{Number: n, Data: b[4 : 4+l]}, nil
}

// parseLegacyChannelBind reads a ChannelBind for an RFC 5766 channel with
// the rules of tt.ParseChannelBind.
func parseLegacyChannelBind(m *stun.Message) (tt.ChannelBindRequest, error) {
	var r tt.ChannelBindRequest
	if tt.Count(m, stun.AttrChannelNumber) != 1 || tt.Count(m, stun.AttrXORPeerAddress) != 1 {
		return r, &tt.CodeError{Code: stun.CodeBadRequest, Err: errors.New("turn: channel-number and xor-peer-address must appear once")}
	}
	var n tt.ChannelNumber
	if err := n.GetFrom(m); err != nil {
		return r, &tt.CodeError{Code: stun.CodeBadRequest, Err: err}
	}
	if !isLegacyChannel(uint16(n)) {
		return r, &tt.CodeError{Code: stun.CodeBadRequest, Err: tt.ErrChannelRange}
	}
	peer, err := tt.GetXORAddr(m, stun.AttrXORPeerAddress)
	if err != nil {
		return r, &tt.CodeError{Code: stun.CodeBadRequest, Err: err}
	}
	return tt.ChannelBindRequest{Channel: uint16(n), Peer: peer}, nil
}

// legacyFramer splits a TCP or TLS stream like tt.Framer, and also takes
// ChannelData frames on RFC 5766 channels.
type legacyFramer struct {
	r          io.Reader
	buf        []byte
	start, end int
}

func newLegacyFramer(r io.Reader) *legacyFramer {
	return &legacyFramer{r: r, buf: make([]byte, tt.MaxFrameSize)}
}

func (f *legacyFramer) Next() (tt.Frame, error) {
	for {
		b := f.buf[f.start:f.end]
		var kind tt.Kind
		var size int
		var err error
		if len(b) > 0 && b[0] >= 0x50 && b[0] <= 0x7F {
			kind = tt.KindChannelData
			if len(b) >= 4 {
				size = 4 + (int(binary.BigEndian.Uint16(b[2:]))+3)&^3
			}
		} else if kind, size, err = tt.FrameSize(b); err != nil {
			return tt.Frame{}, err
		}
		if size > 0 && size <= len(b) {
			f.start += size
			if kind == tt.KindSTUN {
				return tt.Frame{Kind: kind, Raw: b[:size]}, nil
			}
			l := int(binary.BigEndian.Uint16(b[2:]))
			return tt.Frame{Kind: kind, Raw: b[:4+l], Channel: binary.BigEndian.Uint16(b), Data: b[4 : 4+l]}, nil
		}
		if size > len(f.buf) {
			return tt.Frame{}, fmt.Errorf("turn: frame: %w", tt.ErrTooLarge)
		}
		if f.start > 0 && (size > len(f.buf)-f.start || f.end == len(f.buf)) {
			copy(f.buf, b)
			f.end -= f.start
			f.start = 0
		}
		n, err := f.r.Read(f.buf[f.end:])
		f.end += n
		if err != nil && n == 0 {
			if err == io.EOF && f.end > f.start {
				return tt.Frame{}, io.ErrUnexpectedEOF
			}
			return tt.Frame{}, err
		}
	}
}

// Buffered returns the bytes read but not returned as frames, and forgets
// them (see tt.Framer.Buffered).
func (f *legacyFramer) Buffered() []byte {
	b := f.buf[f.start:f.end]
	f.start, f.end = 0, 0
	return b
}

// putChannelHeader is tt.PutChannelDataHeader that also takes RFC 5766
// channel numbers (the frontend only binds them with legacy_channels).
func putChannelHeader(b []byte, ch uint16, n int, padded bool) (int, error) {
	if !isLegacyChannel(ch) {
		return tt.PutChannelDataHeader(b, ch, n, padded)
	}
	size := tt.ChannelDataSize(n, padded)
	if n > 0xFFFF || len(b) < size {
		return 0, fmt.Errorf("turn: channeldata: %w", tt.ErrTooLarge)
	}
	binary.BigEndian.PutUint16(b, ch)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	clear(b[4+n : size])
	return size, nil
}
