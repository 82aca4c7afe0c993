package socks6

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
	"time"
)

var requestVectors = []string{
	"0601000001bb0001c0000201",
	"06010008005000030b6578616d706c652e636f6d0002000800050200",
	"06010010005000030b6578616d706c652e6f726700040010020104757365720470617373",
	"06030010000000010000000000010008850102000001000885020101",
	"060300000000000100000000",
	"0600000c000000010000000000050004000b000800000010",
	"0601001401bb0001c00002010006000c0102030405060708000d000800000010",
	"0600001000000001000000000006000c0102030405060708000a0004",
	"0601001801bb0001c000020100010008c101100000010008840103e80001000884020200",
	"0602000800000001000000000001000884030005",
	"060100000050000304612e696f000000",
	"060100000050000307612e696f000000",
}

func readers(b []byte) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":    bytes.NewReader(b),
		"one byte": iotest.OneByteReader(bytes.NewReader(b)),
		"half":     iotest.HalfReader(bytes.NewReader(b)),
		"data+err": iotest.DataErrReader(bytes.NewReader(b)),
	}
}

func TestReadRequest(t *testing.T) {
	trail := []byte("hello")
	for _, h := range requestVectors {
		msg := hx(t, h)
		want, _, err := ParseRequest(msg, Draft11)
		if err != nil {
			t.Fatal(err)
		}
		for _, buf := range [][]byte{nil, make([]byte, 0, MaxRequestLen), make([]byte, 3)} {
			for name, r := range readers(append(append([]byte(nil), msg...), trail...)) {
				got, err := ReadRequest(r, buf, Draft11)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s %s: %+v %v", h, name, got, err)
				}
				// Nothing beyond the Request was read.
				rest, _ := io.ReadAll(r)
				if !bytes.Equal(rest, trail) {
					t.Fatalf("%s %s: left %q", h, name, rest)
				}
			}
		}
	}
}

func TestReadRequestVersionMismatch(t *testing.T) {
	r := bytes.NewReader([]byte{5, 1, 0})
	_, err := ReadRequest(r, nil, Draft11)
	var fe *FieldError
	if !errors.Is(err, ErrVersion) || !errors.As(err, &fe) || fe.Field != "version" || fe.Offset != 0 {
		t.Fatalf("err = %v", err)
	}
	if r.Len() != 2 {
		t.Errorf("read %d bytes, want only the version byte", 3-r.Len())
	}
}

// blockingReader returns its bytes, then blocks until the test ends: a
// client that sent a whole message and waits for the answer.
type blockingReader struct {
	b    []byte
	done chan struct{}
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		<-r.done
		return 0, io.ErrClosedPipe
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func TestReadRequestStyleCDoesNotBlock(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	res := make(chan error, 1)
	go func() {
		_, err := ReadRequest(&blockingReader{b: hx(t, "060100000050000308612e696f000000"), done: done}, nil, Draft11)
		res <- err
	}()
	select {
	case err := <-res:
		if !errors.Is(err, ErrDomainStyle) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadRequest blocked on a style-C Request")
	}
}

func TestReadTruncated(t *testing.T) {
	msg := hx(t, "06010010005000030b6578616d706c652e6f726700040010020104757365720470617373")
	if _, err := ReadRequest(bytes.NewReader(nil), nil, Draft11); err != io.EOF {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
	for i := 1; i < len(msg); i++ {
		_, err := ReadRequest(bytes.NewReader(msg[:i]), nil, Draft11)
		var fe *FieldError
		if !errors.Is(err, ErrShort) || !errors.Is(err, io.ErrUnexpectedEOF) || !errors.As(err, &fe) {
			t.Fatalf("%d bytes: %v", i, err)
		}
	}
	rep := hx(t, "060000180006000c0102030405060708000c000c0000100000000010")
	for i := 1; i < len(rep); i++ {
		if _, err := ReadAuthReply(bytes.NewReader(rep[:i]), nil, Draft11); !errors.Is(err, ErrShort) {
			t.Fatalf("auth reply %d bytes: %v", i, err)
		}
	}
	udp := hx(t, "06030018010203040506070801000035c6336407deadbeef")
	for i := 1; i < len(udp); i++ {
		if _, err := ReadUDPMessage(bytes.NewReader(udp[:i]), nil); !errors.Is(err, ErrShort) {
			t.Fatalf("udp %d bytes: %v", i, err)
		}
	}
	if _, err := ReadUDPMessage(bytes.NewReader(nil), nil); err != io.EOF {
		t.Errorf("udp empty stream: %v", err)
	}
	// An I/O error other than EOF is kept.
	_, err := ReadRequest(iotest.TimeoutReader(iotest.OneByteReader(bytes.NewReader(msg))), nil, Draft11)
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Errorf("timeout: %v", err)
	}
}

func TestReadReplies(t *testing.T) {
	stream := hx(t, "060100080003000802000000"+"06000000"+"06000000c350000420010db8000000000000000000000001"+
		"0601000c0102030405060708"+"06030018010203040506070801000035c6336407deadbeef"+
		"0604001c010203040506070801000035c633640701020000cb007109"+"0602000c0102030405060708")
	for name, r := range readers(stream) {
		a1, err := ReadAuthReply(r, nil, Draft11)
		if err != nil || !a1.Continues() {
			t.Fatalf("%s: %+v %v", name, a1, err)
		}
		a2, err := ReadAuthReply(r, nil, Draft11)
		if err != nil || a2.Type != AuthSuccess {
			t.Fatalf("%s: %+v %v", name, a2, err)
		}
		op, err := ReadOpReply(r, make([]byte, 0, 64), Draft11)
		if err != nil || op.Bind != ipAddr("2001:db8::1", 50000) {
			t.Fatalf("%s: %+v %v", name, op, err)
		}
		buf := make([]byte, MaxUDPMessageLen)
		var types []UDPType
		for {
			m, err := ReadUDPMessage(r, buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if m.Type == UDPDatagram && !bytes.Equal(m.Payload, []byte{0xde, 0xad, 0xbe, 0xef}) {
				t.Errorf("%s: payload %x", name, m.Payload)
			}
			types = append(types, m.Type)
		}
		if !reflect.DeepEqual(types, []UDPType{UDPInit, UDPDatagram, UDPError, UDPConfirm}) {
			t.Errorf("%s: types %v", name, types)
		}
	}
	// Bad headers are reported from the header alone.
	for _, h := range []string{"07010000", "06050000", "0603000b"} {
		if _, err := ReadUDPMessage(bytes.NewReader(hx(t, h)), nil); err == nil || errors.Is(err, ErrShort) {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := ReadAuthReply(bytes.NewReader(hx(t, "05")), nil, Draft11); !errors.Is(err, ErrVersion) {
		t.Errorf("auth reply version: %v", err)
	}
	if _, err := ReadAuthReply(bytes.NewReader(hx(t, "06000002")), nil, Draft11); !errors.Is(err, ErrBadLength) {
		t.Errorf("auth reply options length: %v", err)
	}
}

func TestUserPassStream(t *testing.T) {
	up := UserPassRequest{Username: "user", Password: "pass"}
	b, err := AppendUserPassRequest(nil, up)
	if err != nil || !bytes.Equal(b, hx(t, "0104757365720470617373")) {
		t.Fatalf("%x %v", b, err)
	}
	got, err := ReadUserPassRequest(iotest.OneByteReader(bytes.NewReader(append(b, 0x06))))
	if err != nil || got != up {
		t.Errorf("%+v %v", got, err)
	}
	if _, err := ReadUserPassRequest(bytes.NewReader(hx(t, "0504"))); !errors.Is(err, ErrVersion) {
		t.Errorf("version: %v", err)
	}
	if _, err := ReadUserPassRequest(bytes.NewReader(hx(t, "010475"))); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	if _, err := AppendUserPassRequest(nil, UserPassRequest{Username: string(make([]byte, 256))}); !errors.Is(err, ErrTooLong) {
		t.Errorf("long username: %v", err)
	}
	rep, err := ReadUserPassReply(bytes.NewReader(AppendUserPassReply(nil, UserPassReply{Status: 1})))
	if err != nil || rep.OK() {
		t.Errorf("%+v %v", rep, err)
	}

	// In-band result: raw RFC 1929 reply then the final Authentication
	// Reply, or the Authentication Reply alone.
	for _, h := range []string{"0100" + "06000000", "06000000"} {
		u, a, err := ReadInBandResult(bytes.NewReader(hx(t, h)), nil, Draft11)
		if err != nil || a.Type != AuthSuccess || (u != nil) != (len(h) > 8) || (u != nil && !u.OK()) {
			t.Errorf("%s: %v %+v %v", h, u, a, err)
		}
	}
}
