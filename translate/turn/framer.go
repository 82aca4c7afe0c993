package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrameSize is the largest frame on a TCP or TLS connection: the largest
// STUN message (20+65532 bytes), which is larger than the largest padded
// ChannelData frame (MaxChannelDataSize). A buffer of this size never fails
// with ErrTooLarge.
const MaxFrameSize = MaxMessageSize

var (
	errFrameCookie    = fmt.Errorf("turn: stream frame: %w", ErrBadCookie)
	errFrameLength    = fmt.Errorf("turn: stream frame: %w", ErrBadLength)
	errFrameTooLarge  = fmt.Errorf("turn: stream frame larger than the buffer: %w", ErrTooLarge)
	errFrameNoProcess = fmt.Errorf("turn: stream frame: %w", io.ErrNoProgress)
)

// FrameSize inspects the bytes at the start of a TCP or TLS stream (turn.md
// §7) and returns the kind of the frame there and its size on the stream: 20
// + Length for STUN, 4 + Length rounded up to a multiple of 4 for ChannelData.
// A size of 0 means the header is not complete yet; a size larger than
// len(b) means more bytes are needed. It fails, and the connection must be
// closed, for a first byte that is neither STUN nor RFC 8656 ChannelData
// (ErrUnknownFrame), a STUN header without the magic cookie (ErrBadCookie) or
// with a length that is not a multiple of 4 (ErrBadLength). The arithmetic is
// done in int, so Length 0xFFFF cannot wrap. It does not allocate, except to
// describe an unknown first byte.
func FrameSize(b []byte) (Kind, int, error) {
	if len(b) == 0 {
		return KindOther, 0, nil
	}
	switch k := Demux(b); k {
	case KindSTUN:
		if len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) != magicCookie {
			return k, 0, errFrameCookie
		}
		if len(b) < 4 {
			return k, 0, nil
		}
		l := int(binary.BigEndian.Uint16(b[2:4]))
		if l%4 != 0 {
			return k, 0, errFrameLength
		}
		return k, HeaderSize + l, nil
	case KindChannelData:
		if len(b) < ChannelDataHeaderSize {
			return k, 0, nil
		}
		return k, ChannelDataHeaderSize + pad4(int(binary.BigEndian.Uint16(b[2:4]))), nil
	default:
		return k, 0, fmt.Errorf("turn: stream frame first byte 0x%02x: %w", b[0], ErrUnknownFrame)
	}
}

// ScanFrames is a bufio.SplitFunc that splits a TURN stream into frames
// (STUN messages and padded ChannelData frames) with FrameSize's rules. Give
// the bufio.Scanner a buffer of MaxFrameSize (Scanner.Buffer), since its
// default limit is smaller than the largest STUN message.
func ScanFrames(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	_, size, err := FrameSize(data)
	if err != nil {
		return 0, nil, err
	}
	if size > 0 && len(data) >= size {
		return size, data[:size], nil
	}
	if atEOF {
		return 0, nil, io.ErrUnexpectedEOF
	}
	return 0, nil, nil
}

// Frame is one frame read from a TCP or TLS stream.
type Frame struct {
	// Kind is KindSTUN or KindChannelData.
	Kind Kind
	// Raw is the STUN message, or the ChannelData header and data without
	// the padding.
	Raw []byte
	// Channel is the channel number of a ChannelData frame.
	Channel uint16
	// Data is the application data of a ChannelData frame, without padding.
	Data []byte
}

// Framer splits a TURN byte stream (TCP or TLS, client side or server side)
// into STUN messages and ChannelData frames, consuming every frame of every
// read: a STUN request that follows ChannelData in the same segment is found
// (coturn 4.6.1 loses it, turn.md §7). It reads into one buffer that grows
// up to a bound only when a frame needs it, so memory per connection is
// bounded and small while frames are small, and Next does not allocate
// otherwise.
//
// A Framer is not safe for concurrent use.
type Framer struct {
	r          io.Reader
	buf        []byte
	max        int
	start, end int
	readErr    error
	fatal      error
}

// initialFrameBuf is where a growing Framer's buffer starts.
const initialFrameBuf = 1024

// NewFramer returns a Framer reading r into buf. Frames larger than buf fail
// with ErrTooLarge. A nil buf (or one shorter than a STUN header) gives a
// Framer whose buffer starts at 1 KiB and grows up to MaxFrameSize as frames
// need it — a half-open connection costs little.
func NewFramer(r io.Reader, buf []byte) *Framer {
	if len(buf) < HeaderSize {
		return &Framer{r: r, buf: make([]byte, initialFrameBuf), max: MaxFrameSize}
	}
	return &Framer{r: r, buf: buf, max: len(buf)}
}

// Next returns the next frame. Its slices point into the Framer's buffer and
// are valid until the next call to Next or Buffered. At the end of the stream
// it returns io.EOF, or io.ErrUnexpectedEOF inside a frame. A framing error
// (ErrUnknownFrame, ErrBadCookie, ErrBadLength, ErrTooLarge) is permanent:
// the stream cannot be resynchronised, so close it.
func (f *Framer) Next() (Frame, error) {
	if f.fatal != nil {
		return Frame{}, f.fatal
	}
	empty := 0
	for {
		avail := f.buf[f.start:f.end]
		kind, size, err := FrameSize(avail)
		if err == nil && size > f.max {
			err = errFrameTooLarge
		}
		if err == nil && size > len(f.buf) {
			nb := make([]byte, min(max(size, 2*len(f.buf)), f.max))
			f.end = copy(nb, avail)
			f.start = 0
			f.buf = nb
			avail = f.buf[:f.end]
		}
		if err != nil {
			f.fatal = err
			return Frame{}, err
		}
		if size > 0 && len(avail) >= size {
			f.start += size
			return makeFrame(kind, avail[:size]), nil
		}
		if f.readErr != nil {
			if errors.Is(f.readErr, io.EOF) && len(avail) > 0 {
				return Frame{}, io.ErrUnexpectedEOF
			}
			return Frame{}, f.readErr
		}
		need := size
		if need == 0 {
			need = HeaderSize
		}
		if len(f.buf)-f.start < need {
			f.end = copy(f.buf, avail)
			f.start = 0
		}
		n, err := f.r.Read(f.buf[f.end:])
		if n < 0 || n > len(f.buf)-f.end {
			n = 0
			err = io.ErrShortBuffer
		}
		f.end += n
		if err != nil {
			f.readErr = err
		} else if n == 0 {
			if empty++; empty >= 100 {
				f.fatal = errFrameNoProcess
				return Frame{}, f.fatal
			}
		}
	}
}

func makeFrame(kind Kind, b []byte) Frame {
	if kind == KindChannelData {
		l := int(binary.BigEndian.Uint16(b[2:4]))
		return Frame{
			Kind:    kind,
			Raw:     b[:ChannelDataHeaderSize+l],
			Channel: binary.BigEndian.Uint16(b[0:2]),
			Data:    b[ChannelDataHeaderSize : ChannelDataHeaderSize+l],
		}
	}
	return Frame{Kind: kind, Raw: b}
}

// Buffered returns the bytes read from the stream but not returned as frames
// yet, and forgets them. After an RFC 6062 ConnectionBind success the
// connection carries raw data: relay these bytes first, then read the
// connection directly.
func (f *Framer) Buffered() []byte {
	b := f.buf[f.start:f.end]
	f.start, f.end = 0, 0
	return b
}
