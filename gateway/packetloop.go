package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"time"
)

// PacketLoop reads datagrams in goroutines of its own until stop says the
// reading is over; then it calls exit. A loop that read nothing for
// parkAfter gives its goroutine up where it can (on Linux, for a backend
// association that is an IdlePacketServer, or a UDP socket of the
// frontend's), and its socket waits in the park set until a datagram or an
// error arrives: an idle association then costs no goroutine stack for its
// readers. The owner calls Wake after closing what the loop reads, so that
// a parked loop sees the close at once rather than at the park set's next
// sweep.
type PacketLoop struct {
	// serve reads until an error; with idle > 0 it also returns
	// ErrReaderIdle after about idle without a datagram (nil idleOK: it
	// cannot, and the loop never parks).
	serve  func(idle time.Duration) error
	idleOK bool
	stop   func(err error) bool
	exit   func()
	pk     parkEntry
}

// StartPacketLoop starts reading a: fn and flush as for ServePackets; stop
// is called with each error ServePackets returns and says whether the loop
// ends (then exit runs, in the loop's goroutine).
func StartPacketLoop(a Association, p *BufPool, fn func(buf []byte, pkt Packet), flush func(), stop func(err error) bool, exit func()) *PacketLoop {
	l := &PacketLoop{stop: stop, exit: exit}
	l.serve = func(time.Duration) error { return ServePackets(a, p, fn, flush) }
	if ips, ok := backendOf(a).(IdlePacketServer); ok {
		if rc := ips.ReadConn(); rc != nil {
			l.idleOK, l.pk.rc = true, rc
			l.serve = func(idle time.Duration) error {
				if idle <= 0 {
					return ServePackets(a, p, fn, flush)
				}
				return servePacketBatches(p, fn, flush, func(get func() [][]byte, put func(), fn func(int, Packet)) error {
					return ips.ServePacketsIdle(get, put, fn, idle)
				})
			}
		}
	}
	go l.run()
	return l
}

// StartUDPLoop starts reading c as ServeUDP does (without a context: the
// owner ends it by closing c); stop and exit as for StartPacketLoop.
func StartUDPLoop(c *net.UDPConn, get func() [][]byte, put func(), oobSize int, fn func(i int, b []byte, from netip.AddrPort, oob []byte), stop func(err error) bool, exit func()) *PacketLoop {
	l := &PacketLoop{stop: stop, exit: exit}
	l.serve = func(idle time.Duration) error { return ServeUDPIdle(c, get, put, oobSize, fn, idle) }
	if rc, err := c.SyscallConn(); err == nil {
		l.idleOK, l.pk.rc = true, rc
	}
	go l.run()
	return l
}

// ServeUDPIdle is ServeUDP that also returns ErrReaderIdle once nothing
// arrived for about idle (between idle and twice that); with idle <= 0 it
// is ServeUDP. It uses c's read deadline: nothing else may set it while
// this runs.
func ServeUDPIdle(c *net.UDPConn, get func() [][]byte, put func(), oobSize int, fn func(i int, b []byte, from netip.AddrPort, oob []byte), idle time.Duration) error {
	if idle <= 0 {
		return ServeUDP(context.Background(), c, get, put, oobSize, fn)
	}
	active := false
	counted := func(i int, b []byte, from netip.AddrPort, oob []byte) {
		active = true
		fn(i, b, from, oob)
	}
	c.SetReadDeadline(time.Now().Add(idle))
	for {
		err := ServeUDP(context.Background(), c, get, put, oobSize, counted)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !active {
			c.SetReadDeadline(time.Time{}) // a later ServeUDP waits as long as it must
			return ErrReaderIdle
		}
		active = false
		c.SetReadDeadline(time.Now().Add(idle))
	}
}

func (l *PacketLoop) run() {
	for {
		pa := parkAfter.get()
		if !l.idleOK || pa < 0 {
			pa = 0
		}
		err := l.serve(pa)
		if pa > 0 && errors.Is(err, ErrReaderIdle) {
			if park(l, time.Now()) {
				return
			}
			continue // not parked (no park set, or closed): read on
		}
		if l.stop(err) {
			l.exit()
			return
		}
	}
}

// Wake resumes a parked loop, to see that what it reads was closed.
func (l *PacketLoop) Wake() { unpark(l) }

func (l *PacketLoop) parkEntry() *parkEntry { return &l.pk }

// wakeAt: the owner enforces its timeouts, and closing what the loop reads
// wakes it.
func (l *PacketLoop) wakeAt() time.Time { return time.Time{} }

func (l *PacketLoop) resume() {
	unregister(l)
	l.run()
}
