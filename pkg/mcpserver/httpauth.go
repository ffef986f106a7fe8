package mcpserver

import (
	"net/http"

	"github.com/agentmesh/agentmesh/pkg/auth"
	"github.com/agentmesh/agentmesh/pkg/caller"
)

// authenticate puts who calls in every request's context before next
// (DESIGN.md, "Who calls"):
//   - a caller the TLS layer already named (a mapped client certificate,
//     httpguard) is kept;
//   - with auth configured (auth.resource, auth.api_keys), a request needs
//     a valid bearer token: an OAuth access token (pkg/auth, MCP
//     "Authorization") or an agentmesh API key, checked against the state
//     database on every request so a revocation applies to the next call;
//     the protected resource metadata is published on mux;
//   - without auth (loopback only, or the loudly named flag), the caller
//     is "anonymous", and charges the server's own trust and limits.
//
// The Authorization header never reaches the MCP handler, so no client
// token can be relayed upstream.
func (rt *Runtime) authenticate(next http.Handler, mux *http.ServeMux) (http.Handler, func(), error) {
	a := rt.Cfg.Auth
	if !a.Enabled() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Header.Del("Authorization")
			if caller.FromContext(r.Context()) == nil {
				r = r.WithContext(caller.NewContext(r.Context(), caller.ForAnonymous()))
			}
			next.ServeHTTP(w, r)
		}), func() {}, nil
	}
	opts := auth.Options{Refused: func(r *http.Request, e *auth.Error) {
		if e.Status == http.StatusServiceUnavailable {
			rt.warnf("authentication unavailable: %v", e)
		}
	}}
	closeKeys := func() {}
	if a.APIKeys {
		opts.KeyLookup, closeKeys = rt.store.keyLookup()
	}
	authn, err := auth.New(a, opts)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range authn.PRMPaths() {
		mux.Handle(p, authn.PRMHandler())
	}
	wrapped := authn.Wrap(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := caller.FromContext(r.Context()); c != nil && c.Kind == caller.MTLS {
			r.Header.Del("Authorization")
			next.ServeHTTP(w, r)
			return
		}
		wrapped.ServeHTTP(w, r)
	}), closeKeys, nil
}
