package auth

import (
	"encoding/json"
	"net/http"
	"sort"
)

// ProtectedResourceMetadata is this server's OAuth 2.0 Protected Resource
// Metadata (RFC 9728 §2), which MCP clients read to find the
// authorization servers to ask for a token (MCP "Authorization Server
// Discovery").
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
}

// Metadata returns the protected resource metadata: the resource, the
// configured issuers in order, the scopes a token may need (the required
// ones and those of the scope map), and the header as the only way to
// present a token.
func (a *Authenticator) Metadata() ProtectedResourceMetadata {
	m := ProtectedResourceMetadata{Resource: a.cfg.Resource, BearerMethodsSupported: []string{"header"}}
	for _, is := range a.order {
		m.AuthorizationServers = append(m.AuthorizationServers, is.cfg.Issuer)
	}
	seen := map[string]bool{}
	for _, s := range a.cfg.RequiredScopes {
		seen[s] = true
	}
	for s := range a.cfg.ScopeMap {
		seen[s] = true
	}
	for s := range seen {
		m.ScopesSupported = append(m.ScopesSupported, s)
	}
	sort.Strings(m.ScopesSupported)
	return m
}

// PRMPaths are the paths PRMHandler answers: /.well-known/oauth-protected-resource
// followed by the resource's path (RFC 9728 §3.1, the URL challenges
// name), and the bare well-known path clients fall back to.
func (a *Authenticator) PRMPaths() []string { return append([]string(nil), a.prmPaths...) }

// PRMHandler serves the protected resource metadata at PRMPaths, without
// authentication and to any origin (it is public, and browser-based
// clients read it). Mount it beside the wrapped MCP handler:
//
//	for _, p := range a.PRMPaths() {
//		mux.Handle(p, a.PRMHandler())
//	}
func (a *Authenticator) PRMHandler() http.Handler {
	body, _ := json.Marshal(a.Metadata())
	paths := map[string]bool{}
	for _, p := range a.prmPaths {
		paths[p] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !paths[r.URL.Path] {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
}
