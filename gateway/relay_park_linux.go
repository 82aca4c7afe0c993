package gateway

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The park set holds the sockets of readers that went idle (relay
// directions, packet loops): one epoll instance of our own, itself waited
// on through Go's poller by a single goroutine that runs only while
// something is parked. A readable socket, the owner's teardown (unpark) or
// the idle timer resumes the reader in a new goroutine. A socket closed by
// someone else leaves the epoll set silently, so the waiting goroutine also
// sweeps the set every parkSweep and resumes readers whose socket is
// closed.
type parkSet struct {
	mu    sync.Mutex
	epfd  int
	file  *os.File // nil while nothing is parked
	byTok map[uint64]parkable
	// byFD finds a parked reader by its descriptor, for WakeSocket; an
	// entry whose socket was closed under it stays until it is taken or
	// a new reader parks a socket of the same number.
	byFD    map[int]parkable
	next    uint64
	running bool
}

var parked = parkSet{byTok: make(map[uint64]parkable), byFD: make(map[int]parkable), next: 1}

// ParkedReaders is how many idle readers (relay directions, packet loops,
// control connections) wait in the park set without a goroutine.
func ParkedReaders() int {
	parked.mu.Lock()
	defer parked.mu.Unlock()
	return len(parked.byTok)
}

// WakeSocket resumes the reader parked on c's socket, if any. Whoever
// closes a socket that a reader of someone else's (a PacketLoop reading a
// backend's association) may have parked calls it just before the close:
// a closed socket leaves the park set silently, and the reader would only
// see the close at the park set's next sweep. The resumed reader finds the
// socket closed, or waits on it in Go's poller until the close.
func WakeSocket(c syscall.Conn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	s := &parked
	var p parkable
	rc.Control(func(fd uintptr) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if q := s.byFD[int(fd)]; q != nil && s.takeLocked(q) {
			p = q
		}
	})
	if p != nil {
		go p.resume()
	}
}

// parkSweep is how often the park set looks for sockets closed under it.
var parkSweep = tunable{def: time.Second}

// openLocked creates the epoll instance and starts the loop when the set
// is not running: the set holds no descriptor while nothing is parked.
func (s *parkSet) openLocked() error {
	if s.running {
		return nil
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	s.epfd = fd
	s.file = os.NewFile(uintptr(fd), "relay-park")
	s.running = true
	go s.loop(s.file)
	return nil
}

// park puts p's idle socket in the park set. It returns false when the
// reader must go on in its goroutine (no park set, or the socket is
// closed): then nothing else runs p. After true, the caller must not touch
// p: another goroutine may already run it.
func park(p parkable, now time.Time) bool {
	s := &parked
	e := p.parkEntry()
	s.mu.Lock()
	if s.openLocked() != nil {
		s.mu.Unlock()
		return false
	}
	epfd := s.epfd
	tok := s.next
	s.next++
	e.tok = tok
	s.byTok[tok] = p
	if at := p.wakeAt(); !at.IsZero() {
		e.timer = time.AfterFunc(at.Sub(now), func() { unpark(p) })
	}
	s.mu.Unlock()

	var addErr error
	err := e.rc.Control(func(fd uintptr) {
		s.mu.Lock()
		if s.byTok[tok] == p { // not taken by an unpark meanwhile
			e.fd, e.hasFD = int(fd), true
			s.byFD[e.fd] = p
		}
		s.mu.Unlock()
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
		addErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil && addErr == nil {
		return true
	}
	// Not parked after all; unless the teardown already took p over, it
	// goes on here.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byTok[tok] != p {
		return true
	}
	s.takeLocked(p)
	return false
}

// takeLocked removes p from the set; it reports whether p was there.
func (s *parkSet) takeLocked(p parkable) bool {
	e := p.parkEntry()
	if e.tok == 0 || s.byTok[e.tok] != p {
		return false
	}
	delete(s.byTok, e.tok)
	e.tok = 0
	if e.hasFD && s.byFD[e.fd] == p {
		delete(s.byFD, e.fd)
	}
	e.hasFD = false
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	if len(s.byTok) == 0 && s.file != nil {
		// Wake the loop so it ends.
		s.file.SetReadDeadline(time.Now())
	}
	return true
}

// unpark resumes p in a new goroutine if it is parked.
func unpark(p parkable) {
	s := &parked
	s.mu.Lock()
	ok := s.takeLocked(p)
	s.mu.Unlock()
	if ok {
		go p.resume()
	}
}

// unregister takes a resumed reader's socket out of the epoll set (a
// one-shot registration stays there, disarmed). A closed socket has left it
// already, and Control does not run on it, so a reused descriptor number is
// never touched.
func unregister(p parkable) {
	s := &parked
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return // the epoll instance is gone, and the registration with it
	}
	p.parkEntry().rc.Control(func(fd uintptr) {
		unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// loop waits for parked sockets to become readable and resumes their
// directions; when nothing is parked it closes the epoll instance and ends.
func (s *parkSet) loop(file *os.File) {
	rc, err := file.SyscallConn()
	if err != nil {
		panic(err) // an *os.File always has one
	}
	evs := make([]unix.EpollEvent, 64)
	var ready []parkable
	lastSweep := time.Now()
	for {
		s.mu.Lock()
		if len(s.byTok) == 0 {
			s.running = false
			s.file = nil
			s.mu.Unlock()
			file.Close()
			return
		}
		s.mu.Unlock()
		file.SetReadDeadline(time.Now().Add(parkSweep.get()))
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, e := unix.EpollWait(int(fd), evs, 0)
				if e == unix.EINTR {
					continue
				}
				if e != nil || n == 0 {
					return len(ready) > 0 || e != nil
				}
				s.mu.Lock()
				for _, ev := range evs[:n] {
					tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
					if p := s.byTok[tok]; p != nil && s.takeLocked(p) {
						ready = append(ready, p)
					}
				}
				s.mu.Unlock()
				if n < len(evs) {
					return true
				}
			}
		})
		for i, p := range ready {
			go p.resume()
			ready[i] = nil
		}
		ready = ready[:0]
		if errors.Is(err, os.ErrDeadlineExceeded) || time.Since(lastSweep) >= parkSweep.get() {
			s.sweep()
			lastSweep = time.Now()
		}
	}
}

// sweep resumes the readers whose socket was closed while parked.
func (s *parkSet) sweep() {
	var closed []parkable
	s.mu.Lock()
	for _, p := range s.byTok {
		if p.parkEntry().rc.Control(func(uintptr) {}) != nil {
			closed = append(closed, p)
		}
	}
	for _, p := range closed {
		s.takeLocked(p)
	}
	s.mu.Unlock()
	for _, p := range closed {
		go p.resume()
	}
}
