package main

import (
	"github.com/sixgate/sixgate/gateway"
)

// registry lists every plug-in. This is the one place that knows them all.
func registry() *gateway.Registry {
	r := gateway.NewRegistry()
	return r
}
