package gateway

import (
	"io"
	"net"
	"testing"
)

// TestReadAhead: on a TCP connection the handshake is read through the
// read-ahead, and what the client sent after it is read next from the
// connection Done returns; Done(false) drops it; a connection that is not
// plain TCP is read directly and returned as it is.
func TestReadAhead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pair := func() (client, server net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	read := func(r io.Reader, n int) string {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	c, s := pair()
	c.Write([]byte("HELLOrest"))
	ra := NewReadAhead(s)
	if ra.Reader() == io.Reader(s) {
		t.Fatal("a TCP connection is read without a read-ahead")
	}
	if got := read(ra.Reader(), 5); got != "HELLO" {
		t.Fatalf("handshake %q", got)
	}
	kept := ra.Done(true)
	if kept == s {
		t.Fatal("Done(true) dropped the bytes read ahead")
	}
	c.Write([]byte("!"))
	if got := read(kept, 5); got != "rest!" {
		t.Fatalf("after the handshake %q, want %q", got, "rest!")
	}

	c, s = pair()
	c.Write([]byte("HELLOrest"))
	ra = NewReadAhead(s)
	read(ra.Reader(), 5)
	if ra.Done(false) != s {
		t.Fatal("Done(false) did not return the connection itself")
	}

	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	ra = NewReadAhead(p1)
	if ra.Reader() != io.Reader(p1) || ra.Done(true) != p1 {
		t.Fatal("a connection that is not plain TCP got a read-ahead")
	}
}
