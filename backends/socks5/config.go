package socks5

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
)

// DefaultDialTimeout bounds the setup of one request when dial_timeout is
// not set: reaching the server, the method negotiation, the request and its
// (first) reply, and sending the initial data.
const DefaultDialTimeout = 10 * time.Second

// Values of the resolve attribute.
const (
	// ResolveRemote forwards destination names to the server (ATYP 3), which
	// resolves them. The default.
	ResolveRemote = "remote"
	// ResolveLocal resolves destination names with the gateway's resolver and
	// checks every address against the request's policy before asking the
	// server for it.
	ResolveLocal = "local"
)

// Config is the body of a `backend "socks5" "name" { ... }` block.
type Config struct {
	// Server is the upstream SOCKS 5 server as host:port; the host may be a
	// name, resolved with the gateway's resolver (or by the via backend).
	Server      string    `hcl:"server"`
	ServerRange hcl.Range `hcl:"server,attr_range"`
	// Username and Password, when set, are offered with RFC 1929
	// username/password authentication; both or neither must be set.
	Username      string    `hcl:"username,optional"`
	UsernameRange hcl.Range `hcl:"username,attr_range"`
	Password      string    `hcl:"password,optional"`
	PasswordRange hcl.Range `hcl:"password,attr_range"`
	// Resolve is ResolveRemote (the default) or ResolveLocal.
	Resolve      string    `hcl:"resolve,optional"`
	ResolveRange hcl.Range `hcl:"resolve,attr_range"`
	// ViaBackend names the backend the server is reached through; empty for
	// the gateway host's own sockets.
	ViaBackend string    `hcl:"via,optional"`
	ViaRange   hcl.Range `hcl:"via,attr_range"`
	// DialTimeout is a Go duration ("5s") bounding the setup of one request;
	// empty means DefaultDialTimeout.
	DialTimeout      string    `hcl:"dial_timeout,optional"`
	DialTimeoutRange hcl.Range `hcl:"dial_timeout,attr_range"`
}

var (
	_ gateway.BackendConfig = (*Config)(nil)
	_ gateway.Validator     = (*Config)(nil)
)

// Via returns the name of the backend the server is reached through.
func (c *Config) Via() gateway.Setting {
	return gateway.Setting{Value: c.ViaBackend, Range: c.ViaRange}
}

// Validate checks the block's attributes and reports each problem at the
// attribute that holds it.
func (c *Config) Validate(*gateway.ValidateContext) hcl.Diagnostics {
	_, problems := c.compile()
	var diags hcl.Diagnostics
	for _, p := range problems {
		r := p.rng
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: p.summary, Detail: p.detail, Subject: &r})
	}
	return diags
}

// settings are the checked values of a Config.
type settings struct {
	server      gateway.Addr
	username    string
	password    string
	local       bool // resolve = "local"
	dialTimeout time.Duration
}

// problem is one invalid attribute.
type problem struct {
	attr    string
	rng     hcl.Range
	summary string
	detail  string
}

// compile checks c and returns its settings with every problem found.
func (c *Config) compile() (settings, []problem) {
	s := settings{username: c.Username, password: c.Password, dialTimeout: DefaultDialTimeout}
	var ps []problem
	bad := func(attr string, rng hcl.Range, summary, format string, args ...any) {
		ps = append(ps, problem{attr: attr, rng: rng, summary: summary, detail: fmt.Sprintf(format, args...)})
	}

	a, err := gateway.ParseAddr(c.Server)
	switch {
	case err != nil, a.Port == 0, a.IsAny():
		bad("server", c.ServerRange, "Invalid server",
			"%q must be a host and a port other than 0, such as \"proxy.example.org:1080\" or \"192.0.2.1:1080\".", c.Server)
	default:
		s.server = a
	}

	switch {
	case c.Username != "" && c.Password == "":
		bad("password", c.UsernameRange, "Incomplete credentials",
			"username is set but password is not; set both for username/password authentication, or neither.")
	case c.Username == "" && c.Password != "":
		bad("username", c.PasswordRange, "Incomplete credentials",
			"password is set but username is not; set both for username/password authentication, or neither.")
	}
	if len(c.Username) > 255 {
		bad("username", c.UsernameRange, "Username too long",
			"RFC 1929 carries at most 255 bytes; this username has %d.", len(c.Username))
	}
	if len(c.Password) > 255 {
		bad("password", c.PasswordRange, "Password too long",
			"RFC 1929 carries at most 255 bytes; this password has %d.", len(c.Password))
	}

	switch c.Resolve {
	case "", ResolveRemote:
	case ResolveLocal:
		s.local = true
	default:
		bad("resolve", c.ResolveRange, "Invalid resolve",
			"%q is not a resolve mode; use \"remote\" (the server resolves names) or \"local\" (sixgate resolves them and checks every address).", c.Resolve)
	}

	if c.DialTimeout != "" {
		d, err := time.ParseDuration(c.DialTimeout)
		if err != nil || d <= 0 {
			bad("dial_timeout", c.DialTimeoutRange, "Invalid duration",
				"%q is not a positive duration such as \"10s\" or \"500ms\".", c.DialTimeout)
		} else {
			s.dialTimeout = d
		}
	}
	return s, ps
}

// check is compile for callers without HCL: the problems as one error.
func (c *Config) check() (settings, error) {
	s, ps := c.compile()
	if len(ps) == 0 {
		return s, nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = fmt.Errorf("socks5 backend: %s: %s", p.attr, strings.TrimSuffix(lowerFirst(p.detail), "."))
	}
	return s, errors.Join(errs...)
}

func lowerFirst(s string) string {
	if s != "" && s[0] >= 'A' && s[0] <= 'Z' {
		return string(s[0]+'a'-'A') + s[1:]
	}
	return s
}
