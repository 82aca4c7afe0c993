package gateway

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestPackedBatch: datagrams built in the batch's buffer go out in order
// with one Send; Alloc refuses what no longer fits, and a released batch
// comes back empty.
func TestPackedBatch(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	p := GetPackedBatch()
	var want [][]byte
	for i := range 3 {
		w := p.Alloc(100 + i)
		if len(w) != 100+i || cap(w) != 100+i {
			t.Fatalf("Alloc(%d) = len %d cap %d", 100+i, len(w), cap(w))
		}
		for j := range w {
			w[j] = byte(i)
		}
		want = append(want, bytes.Clone(w))
		p.Add(w)
	}
	if w := p.Alloc(PackedBytes); w != nil {
		t.Fatal("Alloc gave more than the buffer has left")
	}
	if n, err := p.Send(tx, rx.LocalAddr().(*net.UDPAddr).AddrPort(), nil); n != 3 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	buf := make([]byte, 2048)
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, w := range want {
		n, err := rx.Read(buf)
		if err != nil || !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: %d bytes, %v", i, n, err)
		}
	}
	p.Release()
	p = GetPackedBatch()
	defer p.Release()
	if p.Len() != 0 || p.Alloc(PackedBytes) == nil {
		t.Fatalf("a batch from the pool holds %d datagrams or has less than %d bytes", p.Len(), PackedBytes)
	}
}
