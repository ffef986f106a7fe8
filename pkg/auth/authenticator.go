package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// APIKeyPrefix starts every agentmesh API key (pkg/apikey); a bearer token
// with it goes to Options.KeyLookup, never to an authorization server.
const APIKeyPrefix = "amk_"

// KeyLookup resolves an agentmesh API key to its caller. It returns an
// error for an unknown, revoked or expired key.
type KeyLookup func(ctx context.Context, token string) (*caller.Caller, error)

// Options are what New needs besides the configuration. The zero value
// is usable.
type Options struct {
	// KeyLookup resolves "amk_" API keys; nil: API keys are refused (401).
	KeyLookup KeyLookup
	// HTTPClient makes the requests to authorization servers (discovery,
	// JWKS, introspection). nil: a client with DefaultHTTPTimeout.
	// Redirects are limited and checked like configured URLs either way.
	HTTPClient *http.Client
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
	// MinRefreshInterval is the least time between two fetches of one
	// issuer's keys or metadata; 0: DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// KeysMaxAge; 0: DefaultKeysMaxAge.
	KeysMaxAge time.Duration
	// JWTCacheTTL; 0: DefaultJWTCacheTTL; negative: no cache.
	JWTCacheTTL time.Duration
	// IntrospectionCacheTTL; 0: DefaultIntrospectionCacheTTL; negative:
	// no cache.
	IntrospectionCacheTTL time.Duration
	// Refused, when set, is told of every refused request, with the
	// detail the client is not shown (for the server's log).
	Refused func(r *http.Request, e *Error)
}

// Authenticator is the resource server of one agentmesh endpoint: it
// validates bearer tokens (ValidateToken), guards an HTTP handler (Wrap)
// and publishes the metadata clients discover it by (PRMHandler). It is
// safe for concurrent use.
type Authenticator struct {
	cfg     config.Auth
	opts    Options
	algs    []jose.SignatureAlgorithm
	skew    time.Duration
	issuers map[string]*issuer
	order   []*issuer
	fetch   *fetcher
	cache   *tokenCache

	metadataURL string
	prmPaths    []string
}

// New checks cfg (config.Auth.Validate) and returns its Authenticator.
// Nothing is fetched yet: issuers are discovered and their keys fetched
// on first use, so a server starts while its authorization server is
// still coming up.
func New(cfg config.Auth, opts Options) (*Authenticator, error) {
	if !cfg.Enabled() {
		return nil, errors.New("auth: authentication is not configured: set auth.resource (OAuth) or auth.api_keys")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MinRefreshInterval <= 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if opts.KeysMaxAge <= 0 {
		opts.KeysMaxAge = DefaultKeysMaxAge
	}
	if opts.JWTCacheTTL == 0 {
		opts.JWTCacheTTL = DefaultJWTCacheTTL
	}
	if opts.IntrospectionCacheTTL == 0 {
		opts.IntrospectionCacheTTL = DefaultIntrospectionCacheTTL
	}
	a := &Authenticator{
		cfg:     cfg,
		opts:    opts,
		skew:    cfg.MaxSkew.D(),
		issuers: map[string]*issuer{},
		fetch:   newFetcher(opts.HTTPClient, cfg.AllowLoopbackIssuers),
		cache:   newTokenCache(),
	}
	for _, alg := range cfg.Algorithms {
		a.algs = append(a.algs, jose.SignatureAlgorithm(alg))
	}
	for _, ic := range cfg.Issuers {
		is := newIssuer(ic, cfg.Resource, a.fetch, a.algs, opts)
		a.issuers[ic.Issuer] = is
		a.order = append(a.order, is)
	}
	if cfg.OAuth() {
		a.metadataURL, a.prmPaths = metadataLocation(cfg.Resource)
	}
	return a, nil
}

// ValidateToken authenticates a bearer token and returns its caller, or an
// *Error saying how to answer (401 invalid_token, 403 insufficient_scope,
// 503 when the issuer cannot be reached). Tokens starting with "amk_" are
// API keys (Options.KeyLookup); tokens shaped as a JWS are verified
// locally (RFC 9068); anything else is introspected (RFC 7662). An OAuth
// token must carry auth.required_scopes.
//
// The caller returned may be shared with other requests bearing the same
// token: treat it as read-only.
func (a *Authenticator) ValidateToken(ctx context.Context, token string) (*caller.Caller, error) {
	switch {
	case token == "":
		return nil, errNoToken
	case len(token) > MaxTokenBytes:
		return nil, invalidToken("the access token is too long", nil)
	case strings.HasPrefix(token, APIKeyPrefix):
		return a.lookupKey(ctx, token)
	case !a.cfg.OAuth():
		return nil, invalidToken("this server accepts agentmesh API keys only (amk_...), not OAuth access tokens", nil)
	}
	now := a.opts.Now()
	who := a.cache.get(token, now)
	if who == nil {
		var until time.Time
		var e *Error
		jwt := looksLikeJWT(token)
		if jwt {
			who, until, e = a.validateJWT(ctx, token)
		} else {
			who, until, e = a.introspect(ctx, token)
		}
		if e != nil {
			return nil, e
		}
		ttl := a.opts.JWTCacheTTL
		if !jwt {
			ttl = a.opts.IntrospectionCacheTTL
		}
		if ttl > 0 {
			if lim := now.Add(ttl); lim.Before(until) {
				until = lim
			}
			a.cache.put(token, who, until, now)
		}
	}
	if missing := a.missingScopes(who); missing != "" {
		return nil, insufficientScope(missing)
	}
	return who, nil
}

func (a *Authenticator) lookupKey(ctx context.Context, token string) (*caller.Caller, error) {
	if a.opts.KeyLookup == nil {
		return nil, invalidToken("API keys are not accepted here", nil)
	}
	who, err := a.opts.KeyLookup(ctx, token)
	if err != nil || who == nil {
		if err == nil {
			err = errors.New("no caller for the key")
		}
		return nil, invalidToken("unknown, revoked or expired API key", err)
	}
	return who, nil
}

// missingScopes returns the required scopes the caller's token lacks, as
// a scope parameter ("a b"), or "" when it has them all. The required
// scopes apply to OAuth tokens; an API key carries its own grants.
func (a *Authenticator) missingScopes(who *caller.Caller) string {
	if who.Kind != caller.OAuth {
		return ""
	}
	for _, s := range a.cfg.RequiredScopes {
		if !who.HasScope(s) {
			// Name every required scope: the client asks for all of them
			// at once (MCP "Scope Selection Strategy").
			return strings.Join(a.cfg.RequiredScopes, " ")
		}
	}
	return ""
}

// Grants returns the capability scopes the caller's OAuth scopes map to
// (auth.scope_map), in a stable order. ok is false when no scope map is
// configured: the server's own scopes then apply.
func (a *Authenticator) Grants(who *caller.Caller) (grants []config.AuthGrant, ok bool) {
	if len(a.cfg.ScopeMap) == 0 {
		return nil, false
	}
	scopes := append([]string(nil), who.Scopes...)
	sort.Strings(scopes)
	for i, s := range scopes {
		if i > 0 && scopes[i-1] == s {
			continue
		}
		grants = append(grants, a.cfg.ScopeMap[s]...)
	}
	return grants, true
}

// metadataLocation derives, from the resource URI, the URL of its
// protected resource metadata (RFC 9728 §3.1: the well-known path
// inserted between the host and the resource's path) and the paths this
// server answers it on: that one, and the bare well-known path that MCP
// clients fall back to.
func metadataLocation(resource string) (string, []string) {
	u, _ := url.Parse(resource) // checked by Validate
	root := "/.well-known/oauth-protected-resource"
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	paths := []string{root}
	if p != "" {
		paths = append(paths, root+p)
	}
	return u.Scheme + "://" + u.Host + root + p, paths
}
