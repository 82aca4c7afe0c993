package turn

import (
	"encoding/binary"
	"fmt"
)

// ChannelData framing (RFC 8656 §12.5, turn.md §4.10).
const (
	// ChannelDataHeaderSize is the size of the ChannelData header.
	ChannelDataHeaderSize = 4
	// MinChannel and MaxChannel bound the RFC 8656 channel numbers.
	MinChannel = 0x4000
	MaxChannel = 0x4FFF
	// MaxChannelDataSize is the largest padded ChannelData frame on a stream.
	MaxChannelDataSize = ChannelDataHeaderSize + 0xFFFF + 1
)

// ValidChannel reports whether n is an RFC 8656 channel number
// (0x4000-0x4FFF). The RFC 5766 range up to 0x7FFF is reserved and refused.
func ValidChannel(n uint16) bool { return n >= MinChannel && n <= MaxChannel }

// ChannelData is one decoded ChannelData message.
type ChannelData struct {
	// Number is the channel number.
	Number uint16
	// Data is the application data, without padding; it aliases the parsed
	// buffer.
	Data []byte
}

// ParseChannelData decodes a ChannelData message from a datagram (UDP or
// DTLS): the channel must be in 0x4000-0x4FFF (ErrChannelRange), the
// datagram at least 4+Length bytes (ErrTruncated); anything after the data,
// padding or not, is ignored. Data aliases b. It does not allocate.
func ParseChannelData(b []byte) (ChannelData, error) {
	if len(b) < ChannelDataHeaderSize {
		return ChannelData{}, errChannelTruncated
	}
	n := binary.BigEndian.Uint16(b[0:2])
	if !ValidChannel(n) {
		return ChannelData{}, errChannelRange
	}
	l := int(binary.BigEndian.Uint16(b[2:4]))
	if len(b) < ChannelDataHeaderSize+l {
		return ChannelData{}, errChannelTruncated
	}
	return ChannelData{Number: n, Data: b[ChannelDataHeaderSize : ChannelDataHeaderSize+l]}, nil
}

// Preallocated so the hot path does not allocate on bad input either.
var (
	errChannelTruncated = fmt.Errorf("turn: channeldata: %w", ErrTruncated)
	errChannelRange     = fmt.Errorf("turn: channeldata: %w", ErrChannelRange)
	errChannelTooLarge  = fmt.Errorf("turn: channeldata: %w", ErrTooLarge)
)

// ChannelDataSize returns the size of a ChannelData frame carrying n bytes:
// 4+n, rounded up to a multiple of 4 when padded (TCP and TLS).
func ChannelDataSize(n int, padded bool) int {
	if padded {
		return ChannelDataHeaderSize + pad4(n)
	}
	return ChannelDataHeaderSize + n
}

// AppendChannelData appends a ChannelData frame for channel number with data
// to dst. With padded (TCP and TLS) it appends zero bytes up to a multiple of
// 4; over UDP and DTLS pass false, as coturn does. It fails for a channel
// outside 0x4000-0x4FFF or more than 65535 bytes of data, and does not
// allocate when dst has room.
func AppendChannelData(dst []byte, number uint16, data []byte, padded bool) ([]byte, error) {
	if !ValidChannel(number) {
		return dst, errChannelRange
	}
	if len(data) > 0xFFFF {
		return dst, errChannelTooLarge
	}
	dst = append(dst, byte(number>>8), byte(number), byte(len(data)>>8), byte(len(data)))
	dst = append(dst, data...)
	if padded {
		for i := len(data); i%4 != 0; i++ {
			dst = append(dst, 0)
		}
	}
	return dst, nil
}

// PutChannelDataHeader writes the ChannelData header for channel number and
// n bytes of data into b[0:4], for the zero-copy path where the payload was
// read into b[4:]. With padded it zeroes the padding after the data too
// (b must then have room for ChannelDataSize(n, true) bytes). It returns the
// frame size.
func PutChannelDataHeader(b []byte, number uint16, n int, padded bool) (int, error) {
	if !ValidChannel(number) {
		return 0, errChannelRange
	}
	if n < 0 || n > 0xFFFF {
		return 0, errChannelTooLarge
	}
	size := ChannelDataSize(n, padded)
	if len(b) < size {
		return 0, errChannelTruncated
	}
	binary.BigEndian.PutUint16(b[0:2], number)
	binary.BigEndian.PutUint16(b[2:4], uint16(n))
	clear(b[ChannelDataHeaderSize+n : size])
	return size, nil
}
