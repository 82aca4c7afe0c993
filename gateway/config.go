package gateway

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// fileConfig is the top level of the HCL file.
type fileConfig struct {
	Admin         *AdminConfig    `hcl:"admin,block"`
	Resolver      *ResolverConfig `hcl:"resolver,block"`
	Log           *LogConfig      `hcl:"log,block"`
	Limits        *LimitsConfig   `hcl:"limits,block"`
	ShutdownGrace *string         `hcl:"shutdown_grace,optional"`
	GraceRange    hcl.Range       `hcl:"shutdown_grace,attr_range"`
	Users         []usersConfig   `hcl:"users,block"`
	Frontends     []pluginBlock   `hcl:"frontend,block"`
	Backends      []pluginBlock   `hcl:"backend,block"`
	Routes        []RouteConfig   `hcl:"route,block"`
}

// AdminConfig is the `admin` block: the HTTP listener for /metrics, /livez,
// /readyz and, when enabled, pprof and the log level.
type AdminConfig struct {
	Listen      string    `hcl:"listen,optional"`
	ListenRange hcl.Range `hcl:"listen,attr_range"`
	Pprof       bool      `hcl:"pprof,optional"`
	PprofRange  hcl.Range `hcl:"pprof,attr_range"`
	// LogLevel enables PUT/POST /loglevel.
	LogLevel      bool      `hcl:"log_level_endpoint,optional"`
	LogLevelRange hcl.Range `hcl:"log_level_endpoint,attr_range"`
	DefRange      hcl.Range `hcl:",def_range"`
}

// ResolverConfig is the `resolver` block.
type ResolverConfig struct {
	Servers      []string  `hcl:"servers,optional"`
	ServersRange hcl.Range `hcl:"servers,attr_range"`
	Timeout      *string   `hcl:"timeout,optional"`
	TimeoutRange hcl.Range `hcl:"timeout,attr_range"`
	// Cache is how long answers are kept ("30s"); "0s" disables the cache.
	Cache      *string   `hcl:"cache,optional"`
	CacheRange hcl.Range `hcl:"cache,attr_range"`
}

// LogConfig is the `log` block.
type LogConfig struct {
	Level       string    `hcl:"level,optional"`
	LevelRange  hcl.Range `hcl:"level,attr_range"`
	Format      string    `hcl:"format,optional"`
	FormatRange hcl.Range `hcl:"format,attr_range"`
}

type usersConfig struct {
	Name     string       `hcl:"name,label"`
	Users    []userConfig `hcl:"user,block"`
	DefRange hcl.Range    `hcl:",def_range"`
}

type userConfig struct {
	Name         string    `hcl:"name,label"`
	Password     string    `hcl:"password,optional"`
	PasswordHash string    `hcl:"password_hash,optional"`
	HashRange    hcl.Range `hcl:"password_hash,attr_range"`
	TURNKey      string    `hcl:"turn_key,optional"`
	KeyRange     hcl.Range `hcl:"turn_key,attr_range"`
	DefRange     hcl.Range `hcl:",def_range"`
}

type pluginBlock struct {
	Type      string    `hcl:"type,label"`
	Name      string    `hcl:"name,label"`
	Body      hcl.Body  `hcl:",remain"`
	DefRange  hcl.Range `hcl:",def_range"`
	TypeRange hcl.Range `hcl:",type_range"`
}

// RouteConfig is one `route` block.
type RouteConfig struct {
	Commands      []string  `hcl:"commands,optional"`
	CommandsRange hcl.Range `hcl:"commands,attr_range"`
	Users         []string  `hcl:"users,optional"`
	UsersRange    hcl.Range `hcl:"users,attr_range"`
	Frontends     []string  `hcl:"frontends,optional"`
	FrontRange    hcl.Range `hcl:"frontends,attr_range"`
	Destinations  []string  `hcl:"destinations,optional"`
	DestRange     hcl.Range `hcl:"destinations,attr_range"`
	Ports         []string  `hcl:"ports,optional"`
	PortsRange    hcl.Range `hcl:"ports,attr_range"`
	Backend       string    `hcl:"backend,optional"`
	BackendRange  hcl.Range `hcl:"backend,attr_range"`
	Action        string    `hcl:"action,optional"`
	ActionRange   hcl.Range `hcl:"action,attr_range"`
	DefRange      hcl.Range `hcl:",def_range"`
}

// FrontendSettings are what the gateway itself must know of a frontend's
// configuration to validate it; plugin configs report them.
type FrontendSettings struct {
	// Listens are the addresses the frontend binds, with their ranges.
	Listens []Setting
	// Users names the user set; empty for none.
	Users Setting
	// AllowAnonymous permits a public listener without users.
	AllowAnonymous bool
	// Proxy is true for SOCKS frontends (the open-proxy rule applies).
	Proxy bool
	// NeedsTURNKeys is true when every user must have a plain password or a
	// turn_key.
	NeedsTURNKeys bool
}

// Setting is a configured string value with where it was written.
type Setting struct {
	Value string
	Range hcl.Range
}

// FrontendConfig is implemented by every frontend plugin's config struct.
type FrontendConfig interface {
	Settings() FrontendSettings
}

// BackendConfig may be implemented by a backend plugin's config struct that
// supports chaining.
type BackendConfig interface {
	// Via names the backend to reach the server through; empty for none.
	Via() Setting
}

// Validator is implemented by plugin configs with checks of their own.
type Validator interface {
	Validate(vc *ValidateContext) hcl.Diagnostics
}

// ValidateContext is what a plugin's Validate can see of the whole file.
type ValidateContext struct {
	Users    map[string]*UserSet
	Backends map[string]bool
	// Name and DefRange identify the block being validated.
	Name     string
	DefRange hcl.Range
}

// PluginConfig is a decoded frontend or backend block.
type PluginConfig struct {
	Type     string
	Name     string
	Config   any
	DefRange hcl.Range
}

// Config is a parsed, validated configuration file.
type Config struct {
	Path          string
	Admin         AdminConfig
	Resolver      ResolverConfig
	Log           LogConfig
	Limits        Limits
	ShutdownGrace time.Duration
	Users         map[string]*UserSet
	Frontends     []PluginConfig
	Backends      []PluginConfig
	Routes        []RouteConfig
	// BackendOrder lists backends so that every `via` target comes first.
	BackendOrder []string
}

// LoadConfig reads, decodes and validates a configuration file. It returns
// the config and every problem found, as HCL diagnostics with positions.
func LoadConfig(path string, reg *Registry) (*Config, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read configuration", Detail: err.Error()}}
	}
	return ParseConfig(path, src, reg)
}

// ParseConfig is LoadConfig on bytes already read; path names them in
// diagnostics.
func ParseConfig(path string, src []byte, reg *Registry) (*Config, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return nil, diags
	}
	var fc fileConfig
	diags = append(diags, gohcl.DecodeBody(f.Body, nil, &fc)...)
	if diags.HasErrors() {
		return nil, diags
	}
	c := &Config{Path: path, Users: map[string]*UserSet{}}
	diags = append(diags, c.fill(&fc, reg)...)
	return c, diags
}

func errAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	r := rng
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail, Subject: &r}
}

// ParseDuration parses an optional duration attribute, with def when unset.
func ParseDuration(s *string, rng hcl.Range, def time.Duration) (time.Duration, hcl.Diagnostics) {
	if s == nil {
		return def, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil || d < 0 {
		return def, hcl.Diagnostics{errAt(rng, "Invalid duration", fmt.Sprintf("%q is not a duration such as \"10s\" or \"5m\".", *s))}
	}
	return d, nil
}

// CheckListenAddr validates a host:port listen address with an IP literal.
func CheckListenAddr(s Setting) (netip.AddrPort, hcl.Diagnostics) {
	ap, err := netip.ParseAddrPort(s.Value)
	if err != nil {
		return ap, hcl.Diagnostics{errAt(s.Range, "Invalid listen address",
			fmt.Sprintf("%q must be an IP address and port, such as \"127.0.0.1:1080\" or \"[::1]:1080\".", s.Value))}
	}
	return ap, nil
}

func (c *Config) fill(fc *fileConfig, reg *Registry) hcl.Diagnostics {
	var diags hcl.Diagnostics
	var d hcl.Diagnostics
	c.ShutdownGrace, d = ParseDuration(fc.ShutdownGrace, fc.GraceRange, 30*time.Second)
	diags = append(diags, d...)

	// admin
	c.Admin = AdminConfig{Listen: "127.0.0.1:9090"}
	if fc.Admin != nil {
		c.Admin = *fc.Admin
		if c.Admin.Listen == "" {
			c.Admin.Listen = "127.0.0.1:9090"
		}
		if c.Admin.Listen != "off" {
			ap, d := CheckListenAddr(Setting{c.Admin.Listen, c.Admin.ListenRange})
			diags = append(diags, d...)
			if d == nil && !ap.Addr().IsLoopback() {
				if c.Admin.Pprof {
					diags = append(diags, errAt(c.Admin.PprofRange, "pprof on a public admin listener",
						"pprof may only be enabled when the admin listener is on a loopback address."))
				}
				if c.Admin.LogLevel {
					diags = append(diags, errAt(c.Admin.LogLevelRange, "Log level endpoint on a public admin listener",
						"log_level_endpoint may only be enabled when the admin listener is on a loopback address."))
				}
			}
		}
	}
	if fc.Resolver != nil {
		c.Resolver = *fc.Resolver
		for _, s := range c.Resolver.Servers {
			if _, err := netip.ParseAddrPort(s); err != nil {
				if _, err2 := netip.ParseAddr(s); err2 != nil {
					diags = append(diags, errAt(c.Resolver.ServersRange, "Invalid resolver server",
						fmt.Sprintf("%q must be an IP address, optionally with a port.", s)))
				}
			}
		}
		_, d = ParseDuration(c.Resolver.Timeout, c.Resolver.TimeoutRange, 0)
		diags = append(diags, d...)
		_, d = ParseDuration(c.Resolver.Cache, c.Resolver.CacheRange, 0)
		diags = append(diags, d...)
	}
	if fc.Log != nil {
		c.Log = *fc.Log
		switch strings.ToLower(c.Log.Level) {
		case "", "debug", "info", "warn", "error":
		default:
			diags = append(diags, errAt(c.Log.LevelRange, "Invalid log level", `Use "debug", "info", "warn" or "error".`))
		}
		switch c.Log.Format {
		case "", "text", "json":
		default:
			diags = append(diags, errAt(c.Log.FormatRange, "Invalid log format", `Use "text" or "json".`))
		}
	}
	c.Limits, d = fc.Limits.Compile(DefaultLimits())
	diags = append(diags, d...)

	// users
	for _, ub := range fc.Users {
		if _, dup := c.Users[ub.Name]; dup {
			diags = append(diags, errAt(ub.DefRange, "Duplicate users block", fmt.Sprintf("A users block named %q is already defined.", ub.Name)))
			continue
		}
		seen := map[string]bool{}
		var list []*User
		for _, u := range ub.Users {
			if seen[u.Name] {
				diags = append(diags, errAt(u.DefRange, "Duplicate user", fmt.Sprintf("User %q is already defined in users %q.", u.Name, ub.Name)))
				continue
			}
			seen[u.Name] = true
			usr := &User{Name: u.Name, Password: u.Password}
			n := 0
			if u.Password != "" {
				n++
			}
			if u.PasswordHash != "" {
				n++
				if !strings.HasPrefix(u.PasswordHash, "$2") {
					diags = append(diags, errAt(u.HashRange, "Invalid password hash", "password_hash must be a bcrypt hash ($2a$, $2b$ or $2y$)."))
				}
				usr.PasswordHash = []byte(u.PasswordHash)
			}
			if u.TURNKey != "" {
				k, err := ParseTURNKey(u.TURNKey)
				if err != nil || len(k) != 16 {
					diags = append(diags, errAt(u.KeyRange, "Invalid turn_key", "turn_key must be 32 hex digits: MD5(user:realm:password)."))
				}
				usr.TURNKey = k
			}
			if n != 1 && u.TURNKey == "" {
				diags = append(diags, errAt(u.DefRange, "User needs one secret", fmt.Sprintf("User %q must have exactly one of password or password_hash (or a turn_key).", u.Name)))
			}
			if len(u.Name) > 255 || u.Name == "" {
				diags = append(diags, errAt(u.DefRange, "Invalid user name", "User names are 1 to 255 bytes."))
			}
			list = append(list, usr)
		}
		c.Users[ub.Name] = NewUserSet(ub.Name, list, nil)
	}

	// backends
	backendNames := map[string]bool{}
	via := map[string]Setting{}
	for _, b := range fc.Backends {
		if backendNames[b.Name] {
			diags = append(diags, errAt(b.DefRange, "Duplicate backend", fmt.Sprintf("A backend named %q is already defined.", b.Name)))
			continue
		}
		backendNames[b.Name] = true
		pl, ok := reg.backends[b.Type]
		if !ok {
			diags = append(diags, errAt(b.TypeRange, "Unknown backend type",
				fmt.Sprintf("There is no backend type %q; known types: %s.", b.Type, strings.Join(reg.BackendTypes(), ", "))))
			continue
		}
		cfg := pl.NewConfig()
		if d := gohcl.DecodeBody(b.Body, nil, cfg); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		if bc, ok := cfg.(BackendConfig); ok {
			if v := bc.Via(); v.Value != "" {
				via[b.Name] = v
			}
		}
		c.Backends = append(c.Backends, PluginConfig{Type: b.Type, Name: b.Name, Config: cfg, DefRange: b.DefRange})
	}
	for name, v := range via {
		if !backendNames[v.Value] {
			diags = append(diags, errAt(v.Range, "Unknown backend in via", fmt.Sprintf("Backend %q has via = %q, but no backend has that name.%s", name, v.Value, suggest(v.Value, backendNames))))
		}
	}
	order, cyc := viaOrder(c.Backends, via)
	for _, name := range cyc {
		v := via[name]
		diags = append(diags, errAt(v.Range, "Cycle in via", fmt.Sprintf("Backend %q reaches itself through via = %q.", name, v.Value)))
	}
	c.BackendOrder = order

	vctx := &ValidateContext{Users: c.Users, Backends: backendNames}
	for _, b := range c.Backends {
		if v, ok := b.Config.(Validator); ok {
			vctx.Name, vctx.DefRange = b.Name, b.DefRange
			diags = append(diags, v.Validate(vctx)...)
		}
	}

	// frontends
	feNames := map[string]bool{}
	for _, f := range fc.Frontends {
		if feNames[f.Name] {
			diags = append(diags, errAt(f.DefRange, "Duplicate frontend", fmt.Sprintf("A frontend named %q is already defined.", f.Name)))
			continue
		}
		feNames[f.Name] = true
		pl, ok := reg.frontends[f.Type]
		if !ok {
			diags = append(diags, errAt(f.TypeRange, "Unknown frontend type",
				fmt.Sprintf("There is no frontend type %q; known types: %s.", f.Type, strings.Join(reg.FrontendTypes(), ", "))))
			continue
		}
		cfg := pl.NewConfig()
		if d := gohcl.DecodeBody(f.Body, nil, cfg); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		diags = append(diags, c.checkFrontend(f, cfg)...)
		if v, ok := cfg.(Validator); ok {
			vctx.Name, vctx.DefRange = f.Name, f.DefRange
			diags = append(diags, v.Validate(vctx)...)
		}
		c.Frontends = append(c.Frontends, PluginConfig{Type: f.Type, Name: f.Name, Config: cfg, DefRange: f.DefRange})
	}

	// routes
	c.Routes = fc.Routes
	_, d = CompileRoutes(c.Routes, backendNames, feNames, c.Users)
	diags = append(diags, d...)
	return diags
}

func (c *Config) checkFrontend(f pluginBlock, cfg any) hcl.Diagnostics {
	fcfg, ok := cfg.(FrontendConfig)
	if !ok {
		return nil
	}
	var diags hcl.Diagnostics
	s := fcfg.Settings()
	public := false
	for _, l := range s.Listens {
		if l.Value == "" {
			continue
		}
		ap, d := CheckListenAddr(l)
		diags = append(diags, d...)
		if d == nil && !ap.Addr().IsLoopback() {
			public = true
		}
	}
	if s.Users.Value != "" {
		us, ok := c.Users[s.Users.Value]
		if !ok {
			diags = append(diags, errAt(s.Users.Range, "Unknown users", fmt.Sprintf("No users block is named %q.%s", s.Users.Value, suggestUsers(s.Users.Value, c.Users))))
		} else if s.NeedsTURNKeys {
			if bad := us.TURNCapable(); len(bad) > 0 {
				sort.Strings(bad)
				diags = append(diags, errAt(s.Users.Range, "Users unusable by TURN",
					fmt.Sprintf("TURN needs a plain password or a turn_key; these users of %q have only a bcrypt hash: %s.", s.Users.Value, strings.Join(bad, ", "))))
			}
		}
	} else if s.Proxy && public && !s.AllowAnonymous {
		diags = append(diags, errAt(f.DefRange, "Open proxy refused",
			fmt.Sprintf("Frontend %q listens on a non-loopback address without users; set users, or allow_anonymous = true if an open proxy is really wanted.", f.Name)))
	}
	return diags
}

// viaOrder sorts backends so that via targets come first, and returns the
// backends that are part of a cycle.
func viaOrder(backends []PluginConfig, via map[string]Setting) (order, cycle []string) {
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	inCycle := map[string]bool{}
	var visit func(n string, path []string)
	visit = func(n string, path []string) {
		switch state[n] {
		case 2:
			return
		case 1:
			for i := len(path) - 1; i >= 0; i-- {
				inCycle[path[i]] = true
				if path[i] == n {
					break
				}
			}
			return
		}
		state[n] = 1
		if v, ok := via[n]; ok {
			visit(v.Value, append(path, n))
		}
		state[n] = 2
		order = append(order, n)
	}
	for _, b := range backends {
		visit(b.Name, nil)
	}
	for _, b := range backends {
		if inCycle[b.Name] {
			cycle = append(cycle, b.Name)
		}
	}
	return order, cycle
}

func suggest(name string, set map[string]bool) string {
	best, bestD := "", 4
	for n := range set {
		if d := editDistance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(` Did you mean %q?`, best)
}

func suggestUsers(name string, m map[string]*UserSet) string {
	set := map[string]bool{}
	for n := range m {
		set[n] = true
	}
	return suggest(name, set)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// CompileRoutes turns route blocks into routes (backends left unset) and
// checks them: commands, CIDRs, name patterns, ports, backend and frontend
// names, and that no association's backend depends on its destination.
func CompileRoutes(rcs []RouteConfig, backends, frontends map[string]bool, users map[string]*UserSet) ([]*Route, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	var routes []*Route
	for i, rc := range rcs {
		r := &Route{Index: i, BackendName: rc.Backend}
		for _, s := range rc.Commands {
			c, ok := ParseCommand(s)
			if !ok {
				diags = append(diags, errAt(rc.CommandsRange, "Unknown command", fmt.Sprintf("%q is not a command; use connect, bind, udp or turn-allocate.", s)))
				continue
			}
			r.Commands |= c
		}
		if rc.Users != nil {
			r.Users = map[string]bool{}
			for _, u := range rc.Users {
				r.Users[u] = true
			}
		}
		if rc.Frontends != nil {
			r.Frontends = map[string]bool{}
			for _, f := range rc.Frontends {
				if !frontends[f] {
					diags = append(diags, errAt(rc.FrontRange, "Unknown frontend", fmt.Sprintf("No frontend is named %q.%s", f, suggest(f, frontends))))
				}
				r.Frontends[f] = true
			}
		}
		for _, d := range rc.Destinations {
			if err := r.addDestination(d); err != nil {
				diags = append(diags, errAt(rc.DestRange, "Invalid destination", err.Error()))
			}
		}
		for _, p := range rc.Ports {
			pr, err := ParsePortRange(p)
			if err != nil {
				diags = append(diags, errAt(rc.PortsRange, "Invalid port", err.Error()))
				continue
			}
			r.Ports = append(r.Ports, pr)
		}
		switch rc.Action {
		case "", "allow":
			if rc.Backend == "" {
				diags = append(diags, errAt(rc.DefRange, "Route without backend", `An allow route needs backend = "<name>"; use action = "deny" to refuse.`))
			} else if !backends[rc.Backend] {
				diags = append(diags, errAt(rc.BackendRange, "Unknown backend", fmt.Sprintf("No backend is named %q.%s", rc.Backend, suggest(rc.Backend, backends))))
			}
		case "deny":
			r.Deny = true
			if rc.Backend != "" {
				diags = append(diags, errAt(rc.BackendRange, "Backend on a deny route", "A deny route takes no backend."))
			}
		default:
			diags = append(diags, errAt(rc.ActionRange, "Invalid action", `action is "allow" or "deny".`))
		}
		routes = append(routes, r)
	}
	// An association picks its backend before any destination exists, so an
	// allow route with destination matchers that applies to associations must
	// agree with every later allow route that could serve the same clients.
	for i, a := range routes {
		if a.Deny || !a.HasDestination() || !appliesToAssoc(a) {
			continue
		}
		for _, b := range routes[i+1:] {
			if b.Deny || b.BackendName == a.BackendName || !overlap(a, b) || !appliesToAssoc(b) {
				continue
			}
			diags = append(diags, errAt(rcs[a.Index].DestRange, "Association backend depends on destination",
				fmt.Sprintf("route[%d] sends some destinations to %q and route[%d] others to %q, but BIND, UDP and TURN associations choose their backend before any destination is known; add commands = [\"connect\"] to one of them.",
					a.Index, a.BackendName, b.Index, b.BackendName)))
			break
		}
	}
	return routes, diags
}

func appliesToAssoc(r *Route) bool { return r.Commands == 0 || r.Commands.IsAssociation() }

func overlap(a, b *Route) bool {
	if a.Commands != 0 && b.Commands != 0 && a.Commands&b.Commands&(CmdBind|CmdUDP|CmdTURNAllocate) == 0 {
		return false
	}
	return setsOverlap(a.Users, b.Users) && setsOverlap(a.Frontends, b.Frontends)
}

func setsOverlap(a, b map[string]bool) bool {
	if a == nil || b == nil {
		return true
	}
	for k := range a {
		if b[k] {
			return true
		}
	}
	return false
}

func (r *Route) addDestination(d string) error {
	if strings.Contains(d, "/") {
		p, err := netip.ParsePrefix(d)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as \"10.0.0.0/8\"", d)
		}
		if p.Masked() != p {
			return fmt.Errorf("%q has host bits set; did you mean %q?", d, p.Masked().String())
		}
		r.CIDRs = append(r.CIDRs, p)
		return nil
	}
	if ip, err := netip.ParseAddr(d); err == nil {
		r.CIDRs = append(r.CIDRs, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	if strings.HasPrefix(d, "*.") {
		a, err := NameAddr(d[2:], 0)
		if err != nil || !a.IsName() {
			return fmt.Errorf("%q is not a name pattern such as \"*.example.com\"", d)
		}
		r.Suffixes = append(r.Suffixes, "."+a.Name)
		return nil
	}
	a, err := NameAddr(d, 0)
	if err != nil || strings.ContainsAny(d, "*") {
		return fmt.Errorf("%q is not a CIDR, an IP, a name or a \"*.name\" pattern", d)
	}
	r.Names = append(r.Names, a.Name)
	return nil
}

// ParsePortRange parses "80" or "1000-2000".
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	if err != nil {
		return PortRange{}, fmt.Errorf("%q is not a port or a range such as \"1000-2000\"", s)
	}
	b := a
	if isRange {
		b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
		if err != nil || b < a {
			return PortRange{}, fmt.Errorf("%q is not a port range such as \"1000-2000\"", s)
		}
	}
	return PortRange{uint16(a), uint16(b)}, nil
}

// listenHost returns the host part of a listen address.
func listenHost(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
