package socks6

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
	s6 "github.com/sixgate/sixgate/translate/socks6"
)

// Defaults of Config.
const (
	// DefaultWindowSize is the idempotence window asked for when
	// window_size is not set.
	DefaultWindowSize = 64
)

// Config is the body of a `backend "socks6" "name" { ... }` block.
type Config struct {
	// Server is host:port of the upstream proxy's TCP (or TLS) listener.
	Server      string    `hcl:"server"`
	ServerRange hcl.Range `hcl:"server,attr_range"`
	// Username and Password authenticate the gateway to the upstream
	// (0-RTT username/password); empty for none.
	Username      string    `hcl:"username,optional"`
	UsernameRange hcl.Range `hcl:"username,attr_range"`
	Password      string    `hcl:"password,optional"`
	PasswordRange hcl.Range `hcl:"password,attr_range"`
	// Resolve is "remote" (default: names go to the upstream) or "local"
	// (names are resolved here and every address is checked by policy).
	Resolve      string    `hcl:"resolve,optional"`
	ResolveRange hcl.Range `hcl:"resolve,attr_range"`
	// Dialect is "draft-11" (default) or "draft-10".
	Dialect      string    `hcl:"dialect,optional"`
	DialectRange hcl.Range `hcl:"dialect,attr_range"`
	// TLS runs SOCKS 6 over TLS to the upstream.
	TLS *TLSConfig `hcl:"tls,block"`
	// ViaBackend names the backend the upstream is reached through.
	ViaBackend string    `hcl:"via,optional"`
	ViaRange   hcl.Range `hcl:"via,attr_range"`
	// Session opens a session with the upstream and reuses it; default
	// true.
	Session      *bool     `hcl:"session,optional"`
	SessionRange hcl.Range `hcl:"session,attr_range"`
	// WindowSize is the idempotence window asked for with the session;
	// default DefaultWindowSize, 0 for none.
	WindowSize      *int      `hcl:"window_size,optional"`
	WindowSizeRange hcl.Range `hcl:"window_size,attr_range"`
	// TFO uses TCP Fast Open towards the upstream.
	TFO      bool      `hcl:"tfo,optional"`
	TFORange hcl.Range `hcl:"tfo,attr_range"`
	// UDPServer is host:port of the upstream's UDP (or DTLS) relay
	// endpoint; default the server's host:port.
	UDPServer      string    `hcl:"udp_server,optional"`
	UDPServerRange hcl.Range `hcl:"udp_server,attr_range"`
	// UDPOver is how datagrams travel to the upstream: "udp" (default),
	// "tcp" (over the control connection) or "dtls".
	UDPOver      string    `hcl:"udp_over,optional"`
	UDPOverRange hcl.Range `hcl:"udp_over,attr_range"`
	DefRange     hcl.Range `hcl:",def_range"`
}

// TLSConfig is the `tls` block of the backend.
type TLSConfig struct {
	// ServerName is the name the upstream's certificate must carry;
	// default the host of server.
	ServerName      string    `hcl:"server_name,optional"`
	ServerNameRange hcl.Range `hcl:"server_name,attr_range"`
	// CAFile is a PEM file of the CAs to trust; default the system roots.
	CAFile      string    `hcl:"ca_file,optional"`
	CAFileRange hcl.Range `hcl:"ca_file,attr_range"`
	// InsecureSkipVerify accepts any certificate (tests only).
	InsecureSkipVerify bool      `hcl:"insecure_skip_verify,optional"`
	InsecureRange      hcl.Range `hcl:"insecure_skip_verify,attr_range"`
	DefRange           hcl.Range `hcl:",def_range"`
}

var (
	_ gateway.BackendConfig = (*Config)(nil)
	_ gateway.Validator     = (*Config)(nil)
)

// Via names the backend the upstream is reached through.
func (c *Config) Via() gateway.Setting {
	return gateway.Setting{Value: c.ViaBackend, Range: c.ViaRange}
}

// Validate checks the block's attributes and reports problems at the
// attribute that holds them.
func (c *Config) Validate(*gateway.ValidateContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	bad := func(r hcl.Range, summary, detail string) {
		if r.Filename == "" {
			r = c.DefRange
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r})
	}
	warn := func(r hcl.Range, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: summary, Detail: detail, Subject: &r})
	}
	if err := checkHostPort(c.Server); err != nil {
		bad(c.ServerRange, "Invalid server", fmt.Sprintf("%q must be a host and a port, such as \"proxy.example.org:1080\" or \"[2001:db8::1]:1080\": %v.", c.Server, err))
	}
	if len(c.Username) > 255 {
		bad(c.UsernameRange, "Username too long", "username is at most 255 bytes.")
	}
	if len(c.Password) > 255 {
		bad(c.PasswordRange, "Password too long", "password is at most 255 bytes.")
	}
	if c.Username == "" && c.Password != "" {
		bad(c.PasswordRange, "Password without username", "password needs username.")
	}
	switch c.Resolve {
	case "", "remote", "local":
	default:
		bad(c.ResolveRange, "Invalid resolve", `resolve is "remote" (names go to the upstream) or "local" (names are resolved here).`)
	}
	if _, err := parseDialect(c.Dialect); err != nil {
		bad(c.DialectRange, "Invalid dialect", `dialect is "draft-11" or "draft-10".`)
	}
	if c.WindowSize != nil {
		if *c.WindowSize < 0 || *c.WindowSize > s6.MaxWindowSize {
			bad(c.WindowSizeRange, "Invalid window_size", fmt.Sprintf("window_size is 0 (no window) to %d tokens.", s6.MaxWindowSize))
		} else if *c.WindowSize > 0 && c.Session != nil && !*c.Session {
			bad(c.WindowSizeRange, "Window without session", "An idempotence window lives in a session; remove window_size or set session = true.")
		}
	}
	if c.TFO && c.ViaBackend != "" {
		warn(c.TFORange, "tfo has no effect with via", "The upstream is reached through another backend, which opens the connection; tfo applies to connections this backend opens itself.")
	}
	if c.UDPServer != "" {
		if err := checkHostPort(c.UDPServer); err != nil {
			bad(c.UDPServerRange, "Invalid udp_server", fmt.Sprintf("%q must be a host and a port: %v.", c.UDPServer, err))
		}
	}
	switch c.UDPOver {
	case "", "udp", "tcp":
	case "dtls":
		if c.TLS == nil {
			bad(c.UDPOverRange, "DTLS needs tls", `udp_over = "dtls" needs a tls { } block for the upstream's certificate.`)
		}
	default:
		bad(c.UDPOverRange, "Invalid udp_over", `udp_over is "udp", "tcp" or "dtls".`)
	}
	if t := c.TLS; t != nil && t.CAFile != "" {
		if _, err := loadCAs(t.CAFile); err != nil {
			bad(t.CAFileRange, "Cannot load ca_file", err.Error())
		}
	}
	return diags
}

// checkHostPort checks "host:port" with a non-empty host and a port 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("the host is missing")
	}
	if _, err := gateway.NameAddr(host, 0); err != nil {
		return err
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("bad port %q", port)
	}
	return nil
}

func parseDialect(s string) (s6.Dialect, error) {
	switch s {
	case "", "draft-11":
		return s6.Draft11, nil
	case "draft-10":
		return s6.Draft10, nil
	}
	return 0, fmt.Errorf("unknown dialect %q", s)
}

func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// clientConfig turns the block into a ClientConfig (without Dial and Log).
func (c *Config) clientConfig() (ClientConfig, error) {
	var cc ClientConfig
	if diags := c.Validate(nil); diags.HasErrors() {
		return cc, fmt.Errorf("socks6 backend: %s", diags.Errs()[0])
	}
	d, _ := parseDialect(c.Dialect)
	cc = ClientConfig{
		Server: c.Server, Dialect: d, Username: c.Username, Password: c.Password,
		Session: c.Session == nil || *c.Session, TFO: c.TFO,
	}
	if cc.Session {
		cc.WindowSize = DefaultWindowSize
		if c.WindowSize != nil {
			cc.WindowSize = uint32(*c.WindowSize)
		}
	}
	if t := c.TLS; t != nil {
		cc.TLS = &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if t.CAFile != "" {
			pool, err := loadCAs(t.CAFile)
			if err != nil {
				return cc, fmt.Errorf("socks6 backend: ca_file: %w", err)
			}
			cc.TLS.RootCAs = pool
		}
	}
	return cc, nil
}
