package socks5

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/hcl/v2"
	"github.com/sixgate/sixgate/gateway"
)

// Config is the `frontend "socks5" "<name>"` block.
type Config struct {
	Listen         string    `hcl:"listen"`
	ListenRange    hcl.Range `hcl:"listen,attr_range"`
	Users          string    `hcl:"users,optional"`
	UsersRange     hcl.Range `hcl:"users,attr_range"`
	AllowAnonymous bool      `hcl:"allow_anonymous,optional"`
	// UDPAdvertise is the BND.ADDR given for UDP ASSOCIATE when the
	// gateway is behind NAT or in a container; by default the address the
	// client reached the gateway on.
	UDPAdvertise      string                `hcl:"udp_advertise,optional"`
	UDPAdvertiseRange hcl.Range             `hcl:"udp_advertise,attr_range"`
	Limits            *gateway.LimitsConfig `hcl:"limits,block"`
}

// Settings reports what the gateway validates.
func (c *Config) Settings() gateway.FrontendSettings {
	return gateway.FrontendSettings{
		Listens:        []gateway.Setting{{Value: c.Listen, Range: c.ListenRange}},
		Users:          gateway.Setting{Value: c.Users, Range: c.UsersRange},
		AllowAnonymous: c.AllowAnonymous,
		Proxy:          true,
	}
}

// FrontendLimits returns the frontend's own limits block.
func (c *Config) FrontendLimits() *gateway.LimitsConfig { return c.Limits }

// Validate checks the frontend's own attributes.
func (c *Config) Validate(*gateway.ValidateContext) hcl.Diagnostics {
	if c.UDPAdvertise == "" {
		return nil
	}
	if _, err := netip.ParseAddr(c.UDPAdvertise); err != nil {
		r := c.UDPAdvertiseRange
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid udp_advertise",
			Detail: fmt.Sprintf("%q must be an IP address.", c.UDPAdvertise), Subject: &r}}
	}
	return nil
}

// Plugin returns the frontend plug-in for the registry.
func Plugin() gateway.FrontendPlugin {
	return gateway.FrontendPlugin{
		NewConfig: func() any { return &Config{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Frontend, error) {
			c := cfg.(*Config)
			var adv netip.Addr
			if c.UDPAdvertise != "" {
				adv, _ = netip.ParseAddr(c.UDPAdvertise)
			}
			return newFrontend(env, name, c.Listen, c.Users, adv, nil)
		},
		Sibling: func(env *gateway.Env, spec gateway.SiblingSpec) (gateway.Frontend, error) {
			env.Limits = spec.Limits
			return newFrontend(env, spec.Name, spec.Listen, spec.Users, netip.Addr{}, spec.FirstBytes)
		},
	}
}
