package config

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// Auth configures the OAuth 2.1 resource server in front of `serve --http`
// (MCP 2025-11-25 and 2026-07-28, "Authorization"; pkg/auth implements it).
// It is off while Resource is empty.
type Auth struct {
	// Resource is this server's canonical resource URI (RFC 8707 §2,
	// RFC 9728 §1.2), such as https://mcp.example.com/mcp: tokens must
	// name it in aud, and the protected resource metadata is published
	// under its origin.
	Resource string `yaml:"resource"`
	// Issuers are the authorization servers whose tokens are accepted.
	Issuers []AuthIssuer `yaml:"issuers"`
	// Algorithms are the JWS algorithms accepted on access tokens. none
	// and the HMAC algorithms are refused: a resource server has no
	// business sharing a secret with the authorization server.
	Algorithms []string `yaml:"algorithms"`
	// MaxSkew is the clock skew tolerated on exp, nbf and iat (at most 5m).
	MaxSkew Duration `yaml:"max_skew"`
	// Claims names the token claims copied into the caller.
	Claims AuthClaims `yaml:"claims"`
	// ScopeMap maps an OAuth scope a token carries to the capability
	// scopes it grants (resources and actions as in `scopes`).
	ScopeMap map[string][]AuthGrant `yaml:"scope_map"`
	// RequiredScopes are OAuth scopes every token must carry; a token
	// lacking one is refused with 403 insufficient_scope (RFC 6750 §3.1).
	RequiredScopes []string `yaml:"required_scopes"`
	// AllowLoopbackIssuers permits http:// issuer, JWKS and introspection
	// URLs on loopback addresses (tests, development); https otherwise.
	AllowLoopbackIssuers bool `yaml:"allow_loopback_issuers"`
	// APIKeys accepts agentmesh API keys (`agentmesh keys create`) as
	// bearer tokens, beside OAuth tokens or, with Resource empty, alone.
	APIKeys bool `yaml:"api_keys"`
}

// AuthIssuer is one trusted authorization server.
type AuthIssuer struct {
	// Issuer is its issuer identifier, compared exactly with iss
	// (RFC 8414 §2).
	Issuer string `yaml:"issuer"`
	// JWKSURI is where its signing keys are; empty: discovered from its
	// metadata (RFC 8414 /.well-known/oauth-authorization-server, then
	// OpenID Connect /.well-known/openid-configuration).
	JWKSURI string `yaml:"jwks_uri"`
	// Audiences are the aud values accepted from this issuer; empty:
	// the resource alone.
	Audiences []string `yaml:"audiences"`
	// Introspection validates opaque (non-JWT) tokens (RFC 7662).
	Introspection AuthIntrospection `yaml:"introspection"`
}

// AuthIntrospection is a token introspection endpoint and the client
// credentials agentmesh authenticates to it with.
type AuthIntrospection struct {
	// URL is the endpoint; empty: the introspection_endpoint of the
	// issuer's metadata, when ClientID is set.
	URL      string `yaml:"url"`
	ClientID string `yaml:"client_id"`
	// ClientSecret is sent with HTTP Basic (RFC 6749 §2.3.1).
	ClientSecret string `yaml:"client_secret"`
}

// Enabled reports whether introspection is configured.
func (i AuthIntrospection) Enabled() bool { return i.ClientID != "" }

// AuthClaims names the claims copied from a token into the caller.
type AuthClaims struct {
	// Groups is the claim holding the caller's groups (a list of strings).
	Groups string `yaml:"groups"`
	// Extra are other claims kept as the token carried them.
	Extra []string `yaml:"extra"`
}

// AuthGrant is what one OAuth scope grants: actions on resources, as in a
// capability scope.
type AuthGrant struct {
	Resources []string `yaml:"resources"`
	Actions   []string `yaml:"actions"`
}

// Enabled reports whether HTTP callers must authenticate: with OAuth
// access tokens, API keys or both.
func (a Auth) Enabled() bool { return a.OAuth() || a.APIKeys }

// OAuth reports whether OAuth access tokens are accepted (auth.resource
// is set): the MCP authorization flow, with protected resource metadata.
func (a Auth) OAuth() bool { return a.Resource != "" }

// Defaults of the auth section (also in Default).
var (
	DefaultAuthAlgorithms = []string{"RS256", "ES256", "EdDSA", "PS256"}
	// SupportedAuthAlgorithms are the asymmetric JWS algorithms
	// (RFC 7518 §3.1, RFC 8037) that auth.algorithms may name.
	SupportedAuthAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// MaxAuthSkew bounds auth.max_skew.
const MaxAuthSkew = 5 * time.Minute

func defaultAuth() Auth {
	return Auth{
		Algorithms: append([]string(nil), DefaultAuthAlgorithms...),
		MaxSkew:    Duration(60 * time.Second),
		Claims:     AuthClaims{Groups: "groups"},
	}
}

// Validate checks an auth section built in code (pkg/auth.New calls it);
// errors carry no positions.
func (a Auth) Validate() error {
	v := validator{file: "(auth configuration)", pos: yamlpos.Positions{}}
	v.checkAuth(a)
	return v.errs.Err()
}

func (v *validator) checkAuth(a Auth) {
	if a.Resource == "" {
		if len(a.Issuers) > 0 {
			v.errorf("auth.issuers", "auth.issuers is set but auth.resource is empty: name this server's resource URI (such as https://mcp.example.com/mcp)")
		}
		return
	}
	if err := checkResourceURI(a.Resource); err != nil {
		v.errorf("auth.resource", "%v", err)
	}
	seen := map[string]bool{}
	for i, is := range a.Issuers {
		p := fmt.Sprintf("auth.issuers[%d]", i)
		if err := CheckIssuerURL(is.Issuer, a.AllowLoopbackIssuers); err != nil {
			v.errorf(p+".issuer", "issuer %v", err)
		} else if u, _ := url.Parse(is.Issuer); u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			v.errorf(p+".issuer", "an issuer has no query or fragment (RFC 8414 §2), got %q", is.Issuer)
		}
		if seen[is.Issuer] {
			v.errorf(p+".issuer", "issuer %q is listed twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if is.JWKSURI != "" {
			if err := CheckIssuerURL(is.JWKSURI, a.AllowLoopbackIssuers); err != nil {
				v.errorf(p+".jwks_uri", "jwks_uri %v", err)
			}
		}
		for j, aud := range is.Audiences {
			if strings.TrimSpace(aud) == "" {
				v.errorf(fmt.Sprintf("%s.audiences[%d]", p, j), "empty audience")
			}
		}
		in := is.Introspection
		if in.URL != "" {
			if err := CheckIssuerURL(in.URL, a.AllowLoopbackIssuers); err != nil {
				v.errorf(p+".introspection.url", "introspection url %v", err)
			}
			if in.ClientID == "" {
				v.errorf(p+".introspection.client_id", "introspection needs the client_id agentmesh authenticates with")
			}
		}
		if in.ClientSecret != "" && in.ClientID == "" {
			v.errorf(p+".introspection.client_id", "client_secret is set without client_id")
		}
	}
	if len(a.Algorithms) == 0 {
		v.errorf("auth.algorithms", "at least one algorithm is needed (default %s)", strings.Join(DefaultAuthAlgorithms, ", "))
	}
	for i, alg := range a.Algorithms {
		p := fmt.Sprintf("auth.algorithms[%d]", i)
		switch {
		case strings.EqualFold(alg, "none"):
			v.errorf(p, "\"none\" would accept unsigned tokens: it is never allowed")
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.errorf(p, "%s is HMAC: it needs a secret shared with the authorization server, and a public key could be used as that secret; use an asymmetric algorithm (%s)", alg, strings.Join(SupportedAuthAlgorithms, ", "))
		case !contains(SupportedAuthAlgorithms, alg):
			v.errorf(p, "unsupported algorithm %q (want one of %s)", alg, strings.Join(SupportedAuthAlgorithms, ", "))
		}
	}
	if a.MaxSkew < 0 || a.MaxSkew.D() > MaxAuthSkew {
		v.errorf("auth.max_skew", "must be between 0s and %s, got %s", Duration(MaxAuthSkew), a.MaxSkew)
	}
	if strings.TrimSpace(a.Claims.Groups) == "" {
		v.errorf("auth.claims.groups", "name the groups claim (default \"groups\")")
	}
	for i, c := range a.Claims.Extra {
		if strings.TrimSpace(c) == "" {
			v.errorf(fmt.Sprintf("auth.claims.extra[%d]", i), "empty claim name")
		}
	}
	for i, s := range a.RequiredScopes {
		if !validScopeToken(s) {
			v.errorf(fmt.Sprintf("auth.required_scopes[%d]", i), "%q is not an OAuth scope (RFC 6749 §3.3: printable ASCII without spaces, quotes or backslashes)", s)
		}
	}
	names := make([]string, 0, len(a.ScopeMap))
	for name := range a.ScopeMap {
		names = append(names, name)
	}
	sort.Strings(names) // errors in a stable order
	for _, name := range names {
		p := "auth.scope_map." + name
		if !validScopeToken(name) {
			v.errorf(p, "%q is not an OAuth scope (RFC 6749 §3.3)", name)
		}
		for i, g := range a.ScopeMap[name] {
			gp := fmt.Sprintf("%s[%d]", p, i)
			if len(g.Resources) == 0 || len(g.Actions) == 0 {
				v.errorf(gp, "a grant needs resources and actions")
			}
			for j, r := range g.Resources {
				if _, err := scope.ParseResource(r); err != nil {
					v.errorf(fmt.Sprintf("%s.resources[%d]", gp, j), "%v", err)
				}
			}
			for j, act := range g.Actions {
				if _, err := scope.ParseAction(act); err != nil {
					v.errorf(fmt.Sprintf("%s.actions[%d]", gp, j), "%v", err)
				}
			}
		}
	}
}

// checkResourceURI checks a resource indicator: an absolute URI without a
// fragment (RFC 8707 §2), https unless it is on loopback.
func checkResourceURI(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("want this server's absolute https URI such as https://mcp.example.com/mcp, got %q", s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("a resource URI has no fragment (RFC 8707 §2), got %q", s)
	}
	if u.Scheme == "http" && !IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("%q: http is allowed on loopback only; use https", s)
	}
	return nil
}

// CheckIssuerURL checks a URL agentmesh fetches from or trusts as an
// issuer: https, or http on a loopback host when allowLoopback is set.
func CheckIssuerURL(s string, allowLoopback bool) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%q must use https", s)
		}
		if !allowLoopback {
			return fmt.Errorf("%q uses http: set auth.allow_loopback_issuers (tests and development only) or use https", s)
		}
		return nil
	}
	return fmt.Errorf("%q must use https", s)
}

// IsLoopbackHost reports whether host is localhost or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validScopeToken is RFC 6749 §3.3's scope-token: %x21 / %x23-5B / %x5D-7E.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
