package gateway

import (
	"errors"
	"time"
)

// PacketLoop reads an association's datagrams and ICMP errors as
// ServePackets does, in goroutines of its own, until stop says the
// association is over; then it calls exit. Where the backend can (an
// IdlePacketServer, on Linux) a loop that read nothing for parkAfter gives
// its goroutine up, and its socket waits in the park set until a datagram
// or an error arrives: an idle association then costs no goroutine stack
// for its reader. The owner calls Wake after closing the association, so
// that a parked loop sees the close at once rather than at the park set's
// next sweep.
type PacketLoop struct {
	a     Association
	ips   IdlePacketServer // nil: the loop never parks
	pool  *BufPool
	fn    func(buf []byte, pkt Packet)
	flush func()
	stop  func(err error) bool
	exit  func()
	pk    parkEntry
}

// StartPacketLoop starts reading a: fn and flush as for ServePackets; stop
// is called with each error ServePackets returns and says whether the loop
// ends (then exit runs, in the loop's goroutine).
func StartPacketLoop(a Association, p *BufPool, fn func(buf []byte, pkt Packet), flush func(), stop func(err error) bool, exit func()) *PacketLoop {
	l := &PacketLoop{a: a, pool: p, fn: fn, flush: flush, stop: stop, exit: exit}
	if ips, ok := backendOf(a).(IdlePacketServer); ok {
		if rc := ips.ReadConn(); rc != nil {
			l.ips, l.pk.rc = ips, rc
		}
	}
	go l.run()
	return l
}

func (l *PacketLoop) run() {
	for {
		var err error
		if pa := parkAfter.get(); l.ips != nil && pa > 0 {
			err = servePacketBatches(l.pool, l.fn, l.flush, func(get func() [][]byte, put func(), fn func(int, Packet)) error {
				return l.ips.ServePacketsIdle(get, put, fn, pa)
			})
			if errors.Is(err, ErrReaderIdle) {
				if park(l, time.Now()) {
					return
				}
				continue // not parked (no park set, or closed): read on
			}
		} else {
			err = ServePackets(l.a, l.pool, l.fn, l.flush)
		}
		if l.stop(err) {
			l.exit()
			return
		}
	}
}

// Wake resumes a parked loop, to see that its association was closed.
func (l *PacketLoop) Wake() { unpark(l) }

func (l *PacketLoop) parkEntry() *parkEntry { return &l.pk }

// wakeAt: the association's owner enforces its timeouts, and closing it
// wakes the loop.
func (l *PacketLoop) wakeAt() time.Time { return time.Time{} }

func (l *PacketLoop) resume() {
	unregister(l)
	l.run()
}
