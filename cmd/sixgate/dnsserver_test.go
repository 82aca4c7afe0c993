package main

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a tiny authoritative DNS server on UDP for tests: it answers
// A and AAAA questions from a table, and NXDOMAIN otherwise. answer may
// change the table between queries (to test that the gateway dials what it
// checked).
type dnsServer struct {
	pc    net.PacketConn
	mu    sync.Mutex
	table map[string][]netip.Addr
	// queries counts questions per name.
	queries map[string]int
	// onQuery, when set, may rewrite the table after each question.
	onQuery func(name string, n int, table map[string][]netip.Addr)
}

// startDNS serves on pc until the test ends.
func startDNS(t testing.TB, pc net.PacketConn, table map[string][]netip.Addr) *dnsServer {
	d := &dnsServer{pc: pc, table: table, queries: map[string]int{}}
	t.Cleanup(func() { pc.Close() })
	go d.serve()
	return d
}

func (d *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if resp := d.answer(buf[:n]); resp != nil {
			d.pc.WriteTo(resp, from)
		}
	}
}

func (d *dnsServer) answer(q []byte) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(q); err != nil || len(m.Questions) != 1 {
		return nil
	}
	qq := m.Questions[0]
	name := strings.ToLower(strings.TrimSuffix(qq.Name.String(), "."))
	d.mu.Lock()
	d.queries[name]++
	addrs, ok := d.table[name]
	addrs = append([]netip.Addr(nil), addrs...)
	if d.onQuery != nil {
		d.onQuery(name, d.queries[name], d.table)
	}
	d.mu.Unlock()
	resp := dnsmessage.Message{Header: dnsmessage.Header{ID: m.ID, Response: true, Authoritative: true, RecursionDesired: m.RecursionDesired},
		Questions: m.Questions}
	if !ok {
		resp.RCode = dnsmessage.RCodeNameError
	}
	for _, a := range addrs {
		h := dnsmessage.ResourceHeader{Name: qq.Name, Class: dnsmessage.ClassINET, TTL: 1}
		switch {
		case qq.Type == dnsmessage.TypeA && a.Is4():
			resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: a.As4()}})
		case qq.Type == dnsmessage.TypeAAAA && a.Is6() && !a.Is4In6():
			resp.Answers = append(resp.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
		}
	}
	out, err := resp.Pack()
	if err != nil {
		return nil
	}
	return out
}

// count returns how many questions were asked for name.
func (d *dnsServer) count(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.queries[name]
}
