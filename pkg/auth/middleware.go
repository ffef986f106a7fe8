package auth

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// Wrap guards next: a request reaches it only with a valid bearer token,
// its caller in the request context (caller.FromContext), and without its
// Authorization header, so the client's token can never be relayed
// upstream (MCP "Access Token Privilege Restriction": no token
// passthrough).
//
// Refusals follow RFC 6750 §3 and RFC 9728 §5.1: 401 with
// `WWW-Authenticate: Bearer resource_metadata="…"` when there is no token,
// plus error="invalid_token" and error_description when the token is
// bad; 400 invalid_request for a token in the query string or a repeated
// Authorization header; 403 insufficient_scope naming the scopes to ask
// for; 503 when the issuer cannot be reached to check a token.
//
// CORS preflight requests carry no token: answer them outside Wrap.
func (a *Authenticator) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tokenInQuery(r) {
			a.refuse(w, r, invalidRequest("access tokens are accepted in the Authorization header only, never in the query string"))
			return
		}
		token, e := bearerToken(r.Header.Values("Authorization"))
		if e != nil {
			a.refuse(w, r, e)
			return
		}
		who, err := a.ValidateToken(r.Context(), token)
		if err != nil {
			a.refuse(w, r, AsError(err))
			return
		}
		r = r.Clone(caller.NewContext(r.Context(), who)) // Clone copies the header
		r.Header.Del("Authorization")
		next.ServeHTTP(w, r)
	})
}

// InsufficientScope answers 403 with error="insufficient_scope" and the
// scope the request needs (RFC 6750 §3.1; MCP "Scope Challenge
// Handling"): the client may obtain a token with it and retry (step-up).
// scope is space separated when several are needed.
func (a *Authenticator) InsufficientScope(w http.ResponseWriter, scope string) {
	a.writeRefusal(w, insufficientScope(scope))
}

// MetadataURL is the absolute URL of this resource's protected resource
// metadata, the one named in every challenge.
func (a *Authenticator) MetadataURL() string { return a.metadataURL }

func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, e *Error) {
	if a.opts.Refused != nil {
		a.opts.Refused(r, e)
	}
	a.writeRefusal(w, e)
}

func (a *Authenticator) writeRefusal(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "application/json")
	if e.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", strconv.Itoa(int(a.opts.MinRefreshInterval.Seconds())))
	} else {
		c := *e
		if c.Status == http.StatusUnauthorized && c.Scope == "" {
			// The scopes to ask for in the first place (MCP "Scope
			// Selection Strategy").
			c.Scope = strings.Join(a.cfg.RequiredScopes, " ")
		}
		h.Set("WWW-Authenticate", challenge(&c, a.metadataURL))
	}
	w.WriteHeader(e.Status)
	code := e.Code
	if code == "" && e.Status == http.StatusUnauthorized {
		code = "unauthorized"
	} else if code == "" {
		code = "temporarily_unavailable"
	}
	json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{code, e.Description})
}
