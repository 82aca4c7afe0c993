package socks6

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// maxDTLSPeers bounds the DTLS connections (and handshakes) of one
// endpoint.
const maxDTLSPeers = 4096

// serveDTLS serves the DTLS relay endpoint (§8.4): each client's DTLS
// connection, identified by its 5-tuple, carries UDP relay messages, one per
// record, under the same mapping rule as plain UDP.
func (f *Frontend) serveDTLS(ctx context.Context, pc *net.UDPConn) error {
	cfg := &dtls.Config{
		Certificates:         f.tls.Certificates,
		ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
		MTU:                  1400,
	}
	mux := &dtlsMux{ep: newUDPEndpoint(pc), peers: map[netip.AddrPort]*dtlsPeer{}}
	stop := gateway.KickOnDone(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	defer mux.closeAll()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, from, local, err := mux.ep.readFrom(buf, oob)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		p, isNew := mux.peer(from, local, buf[:n])
		if p == nil {
			f.dropped("dtls_refused")
			continue
		}
		p.deliver(buf[:n])
		if isNew {
			go f.serveDTLSPeer(ctx, p, cfg)
		}
	}
}

func (f *Frontend) serveDTLSPeer(ctx context.Context, p *dtlsPeer, cfg *dtls.Config) {
	defer p.Close()
	hctx, cancel := context.WithTimeout(ctx, f.limits.HandshakeTimeout)
	dc, err := dtls.ServerWithContext(hctx, p, cfg)
	cancel()
	if err != nil {
		f.rt.HandshakeFailed(f.name, "dtls")
		return
	}
	defer dc.Close()
	stop := context.AfterFunc(ctx, func() { dc.Close() })
	defer stop()
	buf := make([]byte, s6.MaxUDPMessageLen)
	for {
		// A DTLS connection idle for longer than the association idle
		// timeout is dropped; its association ends with its TCP control.
		if idle := f.limits.AssocIdleTimeout; idle > 0 {
			dc.SetReadDeadline(time.Now().Add(idle))
		}
		n, err := dc.Read(buf)
		if err != nil {
			return
		}
		f.handleDatagram(buf[:n], p.remote, netip.Addr{}, nil, dc, nil)
	}
}

// dtlsMux splits one UDP socket into per-peer packet connections for the
// DTLS server.
type dtlsMux struct {
	ep    *udpEndpoint
	mu    sync.Mutex
	peers map[netip.AddrPort]*dtlsPeer
}

// peer returns the connection of a peer, creating it for a packet that can
// start a DTLS handshake (a handshake record) while there is room.
func (m *dtlsMux) peer(from netip.AddrPort, local netip.Addr, first []byte) (*dtlsPeer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.peers[from]; ok {
		return p, false
	}
	const contentHandshake = 22
	if len(m.peers) >= maxDTLSPeers || len(first) < 13 || first[0] != contentHandshake {
		return nil, false
	}
	p := &dtlsPeer{mux: m, remote: from, local: local, in: make(chan []byte, 64), closed: make(chan struct{})}
	m.peers[from] = p
	return p, true
}

func (m *dtlsMux) closeAll() {
	m.mu.Lock()
	peers := m.peers
	m.peers = map[netip.AddrPort]*dtlsPeer{}
	m.mu.Unlock()
	for _, p := range peers {
		p.Close()
	}
}

// dtlsPeer is one peer's datagrams on the shared socket, as a net.Conn.
type dtlsPeer struct {
	mux    *dtlsMux
	remote netip.AddrPort
	// local is the address the peer sent to (on a wildcard socket), which
	// answers leave from.
	local  netip.Addr
	in     chan []byte
	closed chan struct{}
	once   sync.Once

	dmu      sync.Mutex
	deadline time.Time
}

func (p *dtlsPeer) deliver(b []byte) {
	select {
	case p.in <- append([]byte(nil), b...):
	default: // the peer is not reading: drop, as a full socket buffer would
	}
}

func (p *dtlsPeer) Read(b []byte) (int, error) {
	p.dmu.Lock()
	dl := p.deadline
	p.dmu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		t := time.NewTimer(time.Until(dl))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case pkt := <-p.in:
		return copy(b, pkt), nil
	case <-p.closed:
		return 0, net.ErrClosed
	case <-timeout:
		return 0, os.ErrDeadlineExceeded
	}
}

func (p *dtlsPeer) Write(b []byte) (int, error) {
	select {
	case <-p.closed:
		return 0, net.ErrClosed
	default:
	}
	if err := p.mux.ep.writeTo(b, p.remote, p.local, -1, -1); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *dtlsPeer) Close() error {
	p.once.Do(func() {
		close(p.closed)
		p.mux.mu.Lock()
		if p.mux.peers[p.remote] == p {
			delete(p.mux.peers, p.remote)
		}
		p.mux.mu.Unlock()
	})
	return nil
}

func (p *dtlsPeer) LocalAddr() net.Addr  { return p.mux.ep.pc.LocalAddr() }
func (p *dtlsPeer) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(p.remote) }

func (p *dtlsPeer) SetDeadline(t time.Time) error { return p.SetReadDeadline(t) }

func (p *dtlsPeer) SetReadDeadline(t time.Time) error {
	p.dmu.Lock()
	p.deadline = t
	p.dmu.Unlock()
	return nil
}

func (p *dtlsPeer) SetWriteDeadline(time.Time) error { return nil }
