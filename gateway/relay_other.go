//go:build !linux

package gateway

import (
	"net"
	"syscall"
	"time"
)

// waitReadable cannot wait without reading on this OS: the relay falls back
// to buffered copies.
func waitReadable(net.Conn) (int, error) { return -1, nil }

// canReadReady says readyRead does not work on this OS.
const canReadReady = false

type readyRead struct{ rc syscall.RawConn }

func (r *readyRead) init(rc syscall.RawConn, _ func([]byte) (int, bool)) { r.rc = rc }

func (r *readyRead) serve(int) (*[]byte, int, int, error) { return nil, 0, 0, syscall.ENOTSUP }

func (p *pipe) writeNow(uintptr) bool { return true }

// park is not available on this OS: readers keep their goroutines.
func park(parkable, time.Time) bool { return false }
func unpark(parkable)               {}
func unregister(parkable)           {}

// ParkedReaders is 0: nothing parks on this OS.
func ParkedReaders() int { return 0 }

// WakeSocket does nothing: nothing parks on this OS.
func WakeSocket(syscall.Conn) {}
