package config

import (
	"strings"
	"testing"
)

func TestAuthDefaultsAreOff(t *testing.T) {
	d := Default()
	if d.Auth.Enabled() {
		t.Fatal("auth is on by default")
	}
	if strings.Join(d.Auth.Algorithms, ",") != "RS256,ES256,EdDSA,PS256" || d.Auth.MaxSkew.D().Seconds() != 60 || d.Auth.Claims.Groups != "groups" {
		t.Errorf("auth defaults: %+v", d.Auth)
	}
}

func TestAuthParses(t *testing.T) {
	y := `auth:
  resource: https://mcp.example.com/mcp
  issuers:
    - issuer: https://login.example.com/realms/mcp
      audiences: [https://mcp.example.com/mcp, agentmesh]
      introspection: {client_id: agentmesh, client_secret: "${env:SECRET}"}
    - issuer: http://127.0.0.1:9000
      jwks_uri: http://127.0.0.1:9000/jwks
  algorithms: [ES256]
  max_skew: 30s
  claims: {groups: roles, extra: [department]}
  scope_map:
    "files:read": [{resources: ["filesystem:/data/*"], actions: [read, list]}]
  required_scopes: ["mcp:tools"]
  allow_loopback_issuers: true
`
	cfg, err := Parse("c.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	if !a.Enabled() || len(a.Issuers) != 2 || a.Issuers[0].Introspection.ClientSecret != "${env:SECRET}" || !a.Issuers[0].Introspection.Enabled() ||
		a.Claims.Groups != "roles" || a.ScopeMap["files:read"][0].Actions[1] != "list" || a.RequiredScopes[0] != "mcp:tools" {
		t.Errorf("parsed %+v", a)
	}
}

func TestAuthErrors(t *testing.T) {
	const base = "auth:\n  resource: https://mcp.example.com/mcp\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"issuers without resource", "auth:\n  issuers: [{issuer: https://as.example.com}]\n", `c.yaml:2:12: auth.issuers is set but auth.resource is empty`},
		{"resource not a URL", "auth:\n  resource: mcp\n", `c.yaml:2:13: want this server's absolute https URI`},
		{"resource with fragment", "auth:\n  resource: https://mcp.example.com/mcp#x\n", `no fragment (RFC 8707 §2)`},
		{"resource over http", "auth:\n  resource: http://mcp.example.com/mcp\n", `http is allowed on loopback only`},
		{"issuer over http", base + "  issuers: [{issuer: http://as.example.com}]\n", `c.yaml:3:22: issuer "http://as.example.com" must use https`},
		{"loopback issuer not allowed", base + "  issuers: [{issuer: http://127.0.0.1:9000}]\n", `set auth.allow_loopback_issuers`},
		{"issuer with query", base + "  issuers: [{issuer: \"https://as.example.com/?tenant=1\"}]\n", `no query or fragment (RFC 8414 §2)`},
		{"issuer twice", base + "  issuers: [{issuer: https://as.example.com}, {issuer: https://as.example.com}]\n", `listed twice`},
		{"jwks over http", base + "  issuers: [{issuer: https://as.example.com, jwks_uri: http://as.example.com/jwks}]\n", `jwks_uri "http://as.example.com/jwks" must use https`},
		{"introspection without client", base + "  issuers: [{issuer: https://as.example.com, introspection: {url: https://as.example.com/introspect}}]\n", `introspection needs the client_id`},
		{"alg none", base + "  algorithms: [ES256, none]\n", `c.yaml:3:23: "none" would accept unsigned tokens`},
		{"alg HS256", base + "  algorithms: [HS256]\n", `HS256 is HMAC`},
		{"alg unknown", base + "  algorithms: [ES999]\n", `unsupported algorithm "ES999"`},
		{"no algs", base + "  algorithms: []\n", `at least one algorithm is needed`},
		{"skew too large", base + "  max_skew: 10m\n", `must be between 0s and 5m0s, got 10m0s`},
		{"bad required scope", base + "  required_scopes: [\"a b\"]\n", `"a b" is not an OAuth scope`},
		{"bad grant resource", base + "  scope_map: {x: [{resources: [\"disk:/\"], actions: [read]}]}\n", `resource "disk:/": unknown kind`},
		{"bad grant action", base + "  scope_map: {x: [{resources: [\"filesystem:/d\"], actions: [delete]}]}\n", `unknown action "delete"`},
		{"empty grant", base + "  scope_map: {x: [{}]}\n", `a grant needs resources and actions`},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestAuthValidateInCode(t *testing.T) {
	a := Default().Auth
	a.Resource = "http://127.0.0.1:8080/mcp"
	a.Issuers = []AuthIssuer{{Issuer: "http://localhost:9000"}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "allow_loopback_issuers") {
		t.Errorf("loopback issuer without the switch: %v", err)
	}
	a.AllowLoopbackIssuers = true
	if err := a.Validate(); err != nil {
		t.Errorf("loopback issuer with the switch: %v", err)
	}
}
