package socks6

import (
	"crypto/tls"
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Config is the `frontend "socks6" "<name>"` block.
type Config struct {
	// Listen is the TCP (or TLS) control listener.
	Listen      string    `hcl:"listen"`
	ListenRange hcl.Range `hcl:"listen,attr_range"`
	// UDPListen is the UDP relay endpoint for datagrams; by default the
	// same host:port as Listen. "off" disables it (datagrams over TCP only).
	UDPListen      string    `hcl:"udp_listen,optional"`
	UDPListenRange hcl.Range `hcl:"udp_listen,attr_range"`
	// DTLSListen is the optional DTLS relay endpoint (needs tls {}).
	DTLSListen      string    `hcl:"dtls_listen,optional"`
	DTLSListenRange hcl.Range `hcl:"dtls_listen,attr_range"`
	Users           string    `hcl:"users,optional"`
	UsersRange      hcl.Range `hcl:"users,attr_range"`
	AllowAnonymous  bool      `hcl:"allow_anonymous,optional"`
	// AcceptSOCKS5 serves SOCKS 5 clients on the same TCP port, dispatched
	// by the first byte.
	AcceptSOCKS5 bool `hcl:"accept_socks5,optional"`
	// Dialect is "draft-11" (default) or "draft-10".
	Dialect      string    `hcl:"dialect,optional"`
	DialectRange hcl.Range `hcl:"dialect,attr_range"`
	// DNS enables "DNS provided by SOCKS" (CONNECT to 0.0.0.0:53 / [::]:53);
	// default true.
	DNS *bool `hcl:"dns,optional"`
	// WindowSize caps idempotence windows (tokens); default 1024.
	WindowSize *int                  `hcl:"window_size,optional"`
	TLS        *TLSConfig            `hcl:"tls,block"`
	Limits     *gateway.LimitsConfig `hcl:"limits,block"`
	DefRange   hcl.Range             `hcl:",def_range"`
}

// TLSConfig is the `tls` block: SOCKS 6 over TLS (and DTLS for datagrams).
type TLSConfig struct {
	CertFile string    `hcl:"cert_file"`
	KeyFile  string    `hcl:"key_file"`
	DefRange hcl.Range `hcl:",def_range"`
}

// Settings reports what the gateway validates.
func (c *Config) Settings() gateway.FrontendSettings {
	ls := []gateway.Setting{{Value: c.Listen, Range: c.ListenRange}}
	if c.UDPListen != "" && c.UDPListen != "off" {
		ls = append(ls, gateway.Setting{Value: c.UDPListen, Range: c.UDPListenRange})
	}
	if c.DTLSListen != "" {
		ls = append(ls, gateway.Setting{Value: c.DTLSListen, Range: c.DTLSListenRange})
	}
	return gateway.FrontendSettings{
		Listens:        ls,
		Users:          gateway.Setting{Value: c.Users, Range: c.UsersRange},
		AllowAnonymous: c.AllowAnonymous,
		Proxy:          true,
	}
}

// FrontendLimits returns the frontend's own limits block.
func (c *Config) FrontendLimits() *gateway.LimitsConfig { return c.Limits }

// Siblings asks for a SOCKS 5 handler on the same port when accept_socks5
// is set.
func (c *Config) Siblings(name string) []gateway.SiblingSpec {
	if !c.AcceptSOCKS5 {
		return nil
	}
	return []gateway.SiblingSpec{{Type: "socks5", Name: name, Listen: c.Listen, FirstBytes: []byte{0x05},
		Users: c.Users, AllowAnonymous: c.AllowAnonymous}}
}

func (c *Config) dialect() s6.Dialect {
	if c.Dialect == "draft-10" {
		return s6.Draft10
	}
	return s6.Draft11
}

// Validate checks the frontend's own attributes.
func (c *Config) Validate(*gateway.ValidateContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(r hcl.Range, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r})
	}
	switch c.Dialect {
	case "", "draft-11", "draft-10":
	default:
		bad(c.DialectRange, "Invalid dialect", `dialect is "draft-11" or "draft-10".`)
	}
	if c.DTLSListen != "" && c.TLS == nil {
		bad(c.DTLSListenRange, "DTLS needs a certificate", "dtls_listen needs a tls { cert_file, key_file } block.")
	}
	if c.TLS != nil {
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			bad(c.TLS.DefRange, "Cannot load TLS certificate", err.Error())
		}
	}
	if c.WindowSize != nil && (*c.WindowSize < 1 || *c.WindowSize > 1<<20) {
		bad(c.DefRange, "Invalid window_size", "window_size is 1 to 1048576 tokens.")
	}
	if c.UDPListen != "" && c.UDPListen != "off" {
		if _, err := netip.ParseAddrPort(c.UDPListen); err != nil {
			bad(c.UDPListenRange, "Invalid udp_listen", fmt.Sprintf("%q must be an IP address and port, or \"off\".", c.UDPListen))
		}
	}
	return diags
}

// Plugin returns the frontend plug-in for the registry.
func Plugin() gateway.FrontendPlugin {
	return gateway.FrontendPlugin{
		NewConfig: func() any { return &Config{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Frontend, error) {
			return New(env, name, cfg.(*Config))
		},
	}
}
