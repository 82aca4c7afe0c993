package main

import (
	"github.com/sixgate/sixgate/backends/direct"
	bsocks5 "github.com/sixgate/sixgate/backends/socks5"
	bsocks6 "github.com/sixgate/sixgate/backends/socks6"
	"github.com/sixgate/sixgate/frontends/socks5"
	"github.com/sixgate/sixgate/frontends/socks6"
	"github.com/sixgate/sixgate/frontends/turn"
	"github.com/sixgate/sixgate/gateway"
)

// registry lists every plug-in. This is the one place that knows them all.
func registry() *gateway.Registry {
	r := gateway.NewRegistry()
	r.Frontend("socks5", socks5.Plugin())
	r.Frontend("socks6", socks6.Plugin())
	r.Frontend("turn", turn.Plugin())
	r.Backend("direct", direct.Plugin())
	r.Backend("socks5", bsocks5.Plugin())
	r.Backend("socks6", bsocks6.Plugin())
	return r
}
