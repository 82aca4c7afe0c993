package turn

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
)

// Config is the `frontend "turn" "<name>"` block.
type Config struct {
	// Listen is the UDP and TCP address TURN is served on (3478).
	Listen      string    `hcl:"listen"`
	ListenRange hcl.Range `hcl:"listen,attr_range"`
	// TLSListen is the TURN-over-TLS address (5349); it needs tls {}.
	TLSListen      string    `hcl:"tls_listen,optional"`
	TLSListenRange hcl.Range `hcl:"tls_listen,attr_range"`
	// Realm is the long-term credential realm.
	Realm      string    `hcl:"realm,optional"`
	RealmRange hcl.Range `hcl:"realm,attr_range"`
	// Users names the users block whose plain passwords or turn_keys
	// authenticate clients.
	Users      string    `hcl:"users,optional"`
	UsersRange hcl.Range `hcl:"users,attr_range"`
	// Secrets are TURN REST API shared secrets, newest first.
	Secrets      []string  `hcl:"secrets,optional"`
	SecretsRange hcl.Range `hcl:"secrets,attr_range"`
	// Software is the SOFTWARE attribute of responses; "" sends none.
	Software *string `hcl:"software,optional"`
	// Lifetimes, as Go durations.
	MaxLifetime        *string   `hcl:"max_lifetime,optional"`
	MaxLifetimeRange   hcl.Range `hcl:"max_lifetime,attr_range"`
	DefaultLifetime    *string   `hcl:"default_lifetime,optional"`
	DefaultLifeRange   hcl.Range `hcl:"default_lifetime,attr_range"`
	NonceLifetime      *string   `hcl:"nonce_lifetime,optional"`
	NonceLifetimeRange hcl.Range `hcl:"nonce_lifetime,attr_range"`
	PermissionLifetime *string   `hcl:"permission_lifetime,optional"`
	PermLifetimeRange  hcl.Range `hcl:"permission_lifetime,attr_range"`
	ChannelLifetime    *string   `hcl:"channel_lifetime,optional"`
	ChanLifetimeRange  hcl.Range `hcl:"channel_lifetime,attr_range"`
	// LegacyChannels also accepts the RFC 5766 channel numbers
	// 0x5000-0x7FFF that RFC 8656 reserves (coturn's turnutils_uclient
	// picks from them); off by default.
	LegacyChannels bool `hcl:"legacy_channels,optional"`
	// TCPRelays enables RFC 6062 TCP allocations (REQUESTED-TRANSPORT 6
	// over TCP or TLS); default true. Off, such an Allocate gets 442.
	TCPRelays *bool `hcl:"tcp_relays,optional"`
	// MaxTCPConnections bounds the peer connections (pending and active)
	// of one TCP allocation; default DefaultMaxTCPConnections.
	MaxTCPConnections      *int      `hcl:"max_tcp_connections,optional"`
	MaxTCPConnectionsRange hcl.Range `hcl:"max_tcp_connections,attr_range"`
	// ConnectionBindTimeout is how long a peer connection waits for its
	// ConnectionBind before it is closed (RFC 6062: 30 s).
	ConnectionBindTimeout *string   `hcl:"connection_bind_timeout,optional"`
	ConnBindTimeoutRange  hcl.Range `hcl:"connection_bind_timeout,attr_range"`
	// ReusePort asks for one SO_REUSEPORT socket per core; not available
	// yet (the gateway binds one socket per address).
	ReusePort      bool                  `hcl:"reuseport,optional"`
	ReusePortRange hcl.Range             `hcl:"reuseport,attr_range"`
	TLS            *TLSConfig            `hcl:"tls,block"`
	Limits         *gateway.LimitsConfig `hcl:"limits,block"`
	DefRange       hcl.Range             `hcl:",def_range"`
}

// TLSConfig is the `tls` block: the certificate for TURN over TLS.
type TLSConfig struct {
	CertFile string    `hcl:"cert_file"`
	KeyFile  string    `hcl:"key_file"`
	DefRange hcl.Range `hcl:",def_range"`
}

// Defaults of the lifetimes (RFC 8656, turn.md §4.11).
const (
	DefaultMaxLifetime        = time.Hour
	DefaultAllocationLifetime = 10 * time.Minute
	DefaultNonceLifetime      = 10 * time.Minute
	DefaultPermissionLifetime = 5 * time.Minute
	DefaultChannelLifetime    = 10 * time.Minute
	// DefaultConnectionBindTimeout is how long an RFC 6062 peer connection
	// waits for its ConnectionBind.
	DefaultConnectionBindTimeout = 30 * time.Second
	// DefaultMaxTCPConnections bounds the peer connections of one TCP
	// allocation.
	DefaultMaxTCPConnections = 64
	// DefaultSoftware is the SOFTWARE attribute when none is configured.
	DefaultSoftware = "sixgate"
)

// settings are the compiled, validated values of a Config.
type settings struct {
	realm                 string
	software              string
	secrets               []string
	maxLife, defLife      time.Duration
	nonceLife             time.Duration
	permLife, channelLife time.Duration
	legacyChannels        bool
	tcpRelays             bool
	maxTCPConns           int
	bindTimeout           time.Duration
}

// Settings reports what the gateway validates: TURN users need plain
// passwords or turn_keys, and TURN is not an open proxy (peers are judged by
// the routes).
func (c *Config) Settings() gateway.FrontendSettings {
	ls := []gateway.Setting{{Value: c.Listen, Range: c.ListenRange}}
	if c.TLSListen != "" {
		ls = append(ls, gateway.Setting{Value: c.TLSListen, Range: c.TLSListenRange})
	}
	return gateway.FrontendSettings{
		Listens:       ls,
		Users:         gateway.Setting{Value: c.Users, Range: c.UsersRange},
		NeedsTURNKeys: true,
		Proxy:         false,
	}
}

// FrontendLimits returns the frontend's own limits block.
func (c *Config) FrontendLimits() *gateway.LimitsConfig { return c.Limits }

// compile parses the lifetimes and fills the defaults.
func (c *Config) compile() (settings, hcl.Diagnostics) {
	s := settings{realm: c.Realm, software: DefaultSoftware, secrets: c.Secrets, legacyChannels: c.LegacyChannels,
		tcpRelays: true, maxTCPConns: DefaultMaxTCPConnections}
	if c.TCPRelays != nil {
		s.tcpRelays = *c.TCPRelays
	}
	if c.Software != nil {
		s.software = *c.Software
	}
	var diags, d hcl.Diagnostics
	dur := func(v *string, r hcl.Range, def time.Duration, name string, into *time.Duration) {
		*into, d = gateway.ParseDuration(v, r, def)
		diags = append(diags, d...)
		if d == nil && *into <= 0 {
			diags = append(diags, bad(r, "Invalid "+name, name+" must be positive."))
			*into = def
		}
	}
	dur(c.MaxLifetime, c.MaxLifetimeRange, DefaultMaxLifetime, "max_lifetime", &s.maxLife)
	dur(c.DefaultLifetime, c.DefaultLifeRange, DefaultAllocationLifetime, "default_lifetime", &s.defLife)
	dur(c.NonceLifetime, c.NonceLifetimeRange, DefaultNonceLifetime, "nonce_lifetime", &s.nonceLife)
	dur(c.PermissionLifetime, c.PermLifetimeRange, DefaultPermissionLifetime, "permission_lifetime", &s.permLife)
	dur(c.ChannelLifetime, c.ChanLifetimeRange, DefaultChannelLifetime, "channel_lifetime", &s.channelLife)
	dur(c.ConnectionBindTimeout, c.ConnBindTimeoutRange, DefaultConnectionBindTimeout, "connection_bind_timeout", &s.bindTimeout)
	if c.MaxTCPConnections != nil {
		if n := *c.MaxTCPConnections; n < 1 || n > 0xFFFF {
			diags = append(diags, bad(c.MaxTCPConnectionsRange, "Invalid max_tcp_connections", "max_tcp_connections is between 1 and 65535."))
		} else {
			s.maxTCPConns = n
		}
	}
	if s.maxLife > time.Hour {
		diags = append(diags, bad(c.MaxLifetimeRange, "Invalid max_lifetime", "max_lifetime is at most 1h (RFC 8656)."))
	}
	if s.nonceLife > time.Hour {
		diags = append(diags, bad(c.NonceLifetimeRange, "Invalid nonce_lifetime", "nonce_lifetime is at most 1h: RFC 8656 wants nonces renewed at least hourly."))
	}
	if s.defLife > s.maxLife {
		diags = append(diags, bad(c.DefaultLifeRange, "Invalid default_lifetime", "default_lifetime cannot exceed max_lifetime."))
	}
	return s, diags
}

func bad(r hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// Validate checks the frontend's own attributes.
func (c *Config) Validate(*gateway.ValidateContext) hcl.Diagnostics {
	_, diags := c.compile()
	if c.Realm == "" {
		diags = append(diags, bad(c.DefRange, "Realm required", "A TURN frontend needs realm = \"...\" for long-term credentials."))
	} else if len(c.Realm) > 127 {
		diags = append(diags, bad(c.RealmRange, "Invalid realm", "realm is at most 127 characters."))
	}
	for _, s := range c.Secrets {
		if s == "" {
			diags = append(diags, bad(c.SecretsRange, "Empty secret", "Every TURN REST secret must be a non-empty string."))
			break
		}
	}
	if c.Users == "" && len(c.Secrets) == 0 {
		diags = append(diags, bad(c.DefRange, "No credentials", "A TURN frontend needs users = \"...\", secrets = [...], or both."))
	}
	if c.Software != nil && len(*c.Software) > 127 {
		diags = append(diags, bad(c.DefRange, "Invalid software", "software is at most 127 characters."))
	}
	if c.TLSListen != "" && c.TLS == nil {
		diags = append(diags, bad(c.TLSListenRange, "TLS needs a certificate", "tls_listen needs a tls { cert_file, key_file } block."))
	}
	if c.TLSListen != "" && c.TLSListen == c.Listen {
		diags = append(diags, bad(c.TLSListenRange, "Invalid tls_listen", "tls_listen must differ from listen, which serves plain TCP."))
	}
	if c.TLS != nil {
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			diags = append(diags, bad(c.TLS.DefRange, "Cannot load TLS certificate", err.Error()))
		}
	}
	if c.ReusePort {
		diags = append(diags, bad(c.ReusePortRange, "reuseport not available",
			"The gateway binds one UDP socket per address, so SO_REUSEPORT sockets per core are not available yet; remove reuseport."))
	}
	return diags
}

// Plugin returns the frontend plug-in for the registry.
func Plugin() gateway.FrontendPlugin {
	return gateway.FrontendPlugin{
		NewConfig: func() any { return &Config{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Frontend, error) {
			c, ok := cfg.(*Config)
			if !ok {
				return nil, fmt.Errorf("turn: config is %T", cfg)
			}
			return New(env, name, c)
		},
	}
}
