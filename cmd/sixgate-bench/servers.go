package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// tcpServer is a built-in TCP sink (reads and discards, counting bytes) or
// echo (writes back what it reads).
type tcpServer struct {
	ln    net.Listener
	echo  bool
	bytes atomic.Int64
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]struct{}
}

// listenTCP starts a sink (echo false) or an echo server on addr.
func listenTCP(addr string, echo bool) (*tcpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &tcpServer{ln: ln, echo: echo, open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

func (s *tcpServer) addrPort() netip.AddrPort {
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

func (s *tcpServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if s.echo {
				s.echoConn(c)
			} else {
				s.sinkConn(c)
			}
			s.mu.Lock()
			delete(s.open, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

func (s *tcpServer) sinkConn(c net.Conn) {
	buf := make([]byte, 256<<10)
	for {
		n, err := c.Read(buf)
		s.bytes.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// echoConn writes back what it reads with a small buffer (no splice, so an
// idle connection holds no pipe), then half-closes at EOF.
func (s *tcpServer) echoConn(c net.Conn) {
	buf := make([]byte, 2048)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			s.bytes.Add(int64(n))
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := c.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
				tc.CloseWrite()
			}
			return
		}
	}
}

func (s *tcpServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// udpEcho is a built-in UDP echo server: it sends every datagram back to
// its source, reading and writing in batches.
type udpEcho struct {
	pc *net.UDPConn
	rx atomic.Int64
	wg sync.WaitGroup
}

func listenUDPEcho(addr string, workers int) (*udpEcho, error) {
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	u := &udpEcho{pc: pc.(*net.UDPConn)}
	u.pc.SetReadBuffer(4 << 20)
	u.pc.SetWriteBuffer(4 << 20)
	for range max(workers, 1) {
		u.wg.Add(1)
		go u.loop()
	}
	return u, nil
}

func (u *udpEcho) addrPort() netip.AddrPort {
	return u.pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (u *udpEcho) loop() {
	defer u.wg.Done()
	const batch = 64
	p := ipv4.NewPacketConn(u.pc)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		n, err := p.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		u.rx.Add(int64(n))
		out := msgs[:n]
		for i := range out {
			out[i].Buffers[0] = out[i].Buffers[0][:out[i].N]
		}
		for len(out) > 0 {
			k, err := p.WriteBatch(out, 0)
			if err != nil {
				break // drop the rest: the load counts it as loss
			}
			out = out[k:]
		}
		for i := range msgs[:n] {
			msgs[i].Buffers[0] = msgs[i].Buffers[0][:cap(msgs[i].Buffers[0])]
		}
	}
}

func (u *udpEcho) close() {
	u.pc.Close()
	u.wg.Wait()
}

// cmdServe runs the built-in servers until the duration ends or a signal,
// for loads whose target must live in another process (idle sessions
// beyond one process's descriptor limit, pinning to another CPU).
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	sink := fs.String("tcp-sink", "", "address of the TCP sink (empty: none)")
	echo := fs.String("tcp-echo", "", "address of the TCP echo server (empty: none)")
	uecho := fs.String("udp-echo", "", "address of the UDP echo server (empty: none)")
	workers := fs.Int("udp-workers", 2, "UDP echo reader goroutines")
	dur := fs.Duration("duration", 30*time.Minute, "stop after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	addrs := map[string]string{}
	var closers []func()
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	if *sink != "" {
		s, err := listenTCP(*sink, false)
		if err != nil {
			return err
		}
		closers = append(closers, s.close)
		addrs["tcp_sink"] = s.addrPort().String()
	}
	if *echo != "" {
		s, err := listenTCP(*echo, true)
		if err != nil {
			return err
		}
		closers = append(closers, s.close)
		addrs["tcp_echo"] = s.addrPort().String()
	}
	if *uecho != "" {
		u, err := listenUDPEcho(*uecho, *workers)
		if err != nil {
			return err
		}
		closers = append(closers, u.close)
		addrs["udp_echo"] = u.addrPort().String()
	}
	if len(addrs) == 0 {
		return fmt.Errorf("nothing to serve: give -tcp-sink, -tcp-echo or -udp-echo")
	}
	b, _ := json.Marshal(addrs)
	fmt.Fprintf(stdout, "%s\n", b)
	select {
	case <-ctx.Done():
	case <-time.After(*dur):
	}
	return nil
}
