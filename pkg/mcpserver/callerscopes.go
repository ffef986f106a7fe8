package mcpserver

import (
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/scope"
)

// callerScopes maps the OAuth scopes of a token, or the scopes of an API
// key, to the capability scopes they grant (auth.scope_map); the pipeline
// then needs both the server credential's scope and one of these
// (governance.Options.CallerScopes). Without a scope map, or for callers
// that carry no scopes of their kind (the local user, client
// certificates), ok is false and the credential's scopes alone apply. The
// grants do not expire here: the token's own expiry bounds the caller.
func callerScopes(a config.Auth) (func(*caller.Caller) (scope.Set, bool), error) {
	if len(a.ScopeMap) == 0 {
		return nil, nil
	}
	never := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	grants := map[string]scope.Set{}
	for name, gs := range a.ScopeMap {
		for _, g := range gs {
			s, err := scope.Grant{Resources: g.Resources, Actions: g.Actions, Expires: never}.Parse()
			if err != nil {
				return nil, err // validated with the configuration: not reached
			}
			grants[name] = append(grants[name], s)
		}
	}
	return func(c *caller.Caller) (scope.Set, bool) {
		if c.Kind != caller.OAuth && c.Kind != caller.APIKey {
			return nil, false
		}
		set := scope.Set{}
		for _, s := range c.Scopes {
			set = append(set, grants[s]...)
		}
		return set, true
	}, nil
}
