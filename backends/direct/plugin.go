package direct

import "github.com/sixgate/sixgate/gateway"

// Plugin returns the backend plug-in for the registry.
func Plugin() gateway.BackendPlugin {
	return gateway.BackendPlugin{
		NewConfig: func() any { return &Config{} },
		New: func(env *gateway.Env, name string, cfg any) (gateway.Backend, error) {
			return New(name, *cfg.(*Config), Options{
				Logger:   env.Log,
				Resolver: env.Resolver,
				Own:      env.Own,
				Clock:    env.Clock,
			})
		},
	}
}
