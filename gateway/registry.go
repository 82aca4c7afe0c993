package gateway

import (
	"sort"
)

// FrontendPlugin builds one frontend type.
type FrontendPlugin struct {
	// NewConfig returns a pointer to a new, gohcl-tagged config struct that
	// implements FrontendConfig.
	NewConfig func() any
	// New builds the frontend from its decoded config.
	New func(env *Env, name string, cfg any) (Frontend, error)
	// Sibling, when set, builds this protocol's handler on another
	// frontend's port (a SOCKS 5 handler beside SOCKS 6), as that frontend's
	// configuration asks with a SiblingSpec.
	Sibling func(env *Env, spec SiblingSpec) (Frontend, error)
}

// SiblingSpec asks for a frontend of another protocol sharing a frontend's
// TCP port, dispatched by the first byte.
type SiblingSpec struct {
	// Type is the sibling's frontend type ("socks5").
	Type string
	// Name is the frontend name it reports (the owner's name).
	Name string
	// Listen is the shared TCP address.
	Listen string
	// FirstBytes are the bytes the sibling claims.
	FirstBytes []byte
	// Users and AllowAnonymous are the owner's settings.
	Users          string
	AllowAnonymous bool
	// Limits are the owner's effective limits.
	Limits Limits
}

// SiblingRequester is implemented by frontend configs that want siblings.
type SiblingRequester interface {
	Siblings(name string) []SiblingSpec
}

// BackendPlugin builds one backend type.
type BackendPlugin struct {
	// NewConfig returns a pointer to a new, gohcl-tagged config struct.
	NewConfig func() any
	// New builds the backend. env.Via is the backend named by `via`, if any.
	New func(env *Env, name string, cfg any) (Backend, error)
}

// Registry maps HCL block types (`frontend "socks6"`, `backend "direct"`) to
// plugins. cmd/sixgate fills it explicitly; nothing registers itself.
type Registry struct {
	frontends map[string]FrontendPlugin
	backends  map[string]BackendPlugin
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{frontends: map[string]FrontendPlugin{}, backends: map[string]BackendPlugin{}}
}

// Frontend registers a frontend type.
func (r *Registry) Frontend(typ string, p FrontendPlugin) { r.frontends[typ] = p }

// Backend registers a backend type.
func (r *Registry) Backend(typ string, p BackendPlugin) { r.backends[typ] = p }

// FrontendTypes lists the registered frontend types.
func (r *Registry) FrontendTypes() []string { return sortedKeys(r.frontends) }

// BackendTypes lists the registered backend types.
func (r *Registry) BackendTypes() []string { return sortedKeys(r.backends) }

// FrontendPluginFor returns the plugin for a frontend type.
func (r *Registry) FrontendPluginFor(typ string) (FrontendPlugin, bool) {
	p, ok := r.frontends[typ]
	return p, ok
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
