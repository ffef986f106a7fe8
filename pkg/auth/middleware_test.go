package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// parseChallenge parses one WWW-Authenticate challenge strictly by RFC 9110
// §11.6.1 (auth-scheme 1*SP #auth-param, each value a token or a
// quoted-string): the tests check that what Wrap writes is well formed,
// not merely that it contains the expected text.
func parseChallenge(h string) (scheme string, params map[string]string, err error) {
	scheme, rest, _ := strings.Cut(h, " ")
	if scheme == "" || strings.ContainsAny(scheme, "\",=") {
		return "", nil, fmt.Errorf("bad scheme in %q", h)
	}
	params = map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ")
		name, after, ok := strings.Cut(rest, "=")
		if !ok || name == "" || strings.ContainsAny(name, " \",") {
			return "", nil, fmt.Errorf("bad parameter name at %q", rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			i := 1
			var b strings.Builder
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' {
					i++
					if i == len(after) {
						break
					}
				}
				if c := after[i]; c < 0x20 && c != '\t' || c == 0x7f {
					return "", nil, fmt.Errorf("control character in %q", after)
				}
				b.WriteByte(after[i])
			}
			if i >= len(after) {
				return "", nil, fmt.Errorf("unterminated quoted-string in %q", after)
			}
			val, rest = b.String(), after[i+1:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
			if rest == "," {
				rest = ""
			}
		}
		if _, dup := params[strings.ToLower(name)]; dup {
			return "", nil, fmt.Errorf("parameter %s twice", name)
		}
		params[strings.ToLower(name)] = val
		rest = strings.TrimLeft(rest, " ")
		if rest != "" {
			if rest[0] != ',' {
				return "", nil, fmt.Errorf("expected a comma at %q", rest)
			}
			rest = rest[1:]
		}
	}
	return scheme, params, nil
}

const testMetadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

// guarded serves a wrapped handler that reports the caller and whether
// the Authorization header reached it.
func guarded(t *testing.T, a *Authenticator) *httptest.Server {
	srv := httptest.NewServer(a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"caller":        caller.FromContext(r.Context()),
			"authorization": r.Header.Get("Authorization"),
		})
	})))
	t.Cleanup(srv.Close)
	return srv
}

type reply struct {
	status    int
	challenge map[string]string
	scheme    string
	body      map[string]any
	header    http.Header
}

func call(t *testing.T, url string, header ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode, header: resp.Header}
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &r.body)
	if h := resp.Header.Values("WWW-Authenticate"); len(h) > 0 {
		if len(h) > 1 {
			t.Errorf("%d WWW-Authenticate headers", len(h))
		}
		if r.scheme, r.challenge, err = parseChallenge(h[0]); err != nil {
			t.Errorf("malformed WWW-Authenticate %q: %v", h[0], err)
		}
	}
	return r
}

func TestWrap(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	cfg := authConfig(ti)
	cfg.RequiredScopes = []string{"mcp:tools"}
	var refused []*Error
	a := newAuth(t, cfg, clk, Options{
		KeyLookup: func(ctx context.Context, token string) (*caller.Caller, error) {
			if token == "amk_good" {
				return caller.ForAPIKey("ci-bot"), nil
			}
			return nil, errors.New("no such key")
		},
		Refused: func(r *http.Request, e *Error) { refused = append(refused, e) },
	})
	srv := guarded(t, a)
	good := ti.sign("es", ti.claims(clk.Now()), "")
	noScope := ti.claims(clk.Now())
	noScope["scope"] = "files:read"
	expired := ti.claims(clk.Now().Add(-10 * time.Minute))

	tests := []struct {
		name        string
		url         string
		header      []string
		status      int
		wantParams  map[string]string // the challenge's parameters, exactly
		wantCallers string            // the caller's ID when it got through
	}{
		{"no Authorization", srv.URL, nil, 401,
			map[string]string{"resource_metadata": testMetadataURL, "scope": "mcp:tools"}, ""},
		{"Basic scheme", srv.URL, []string{"Authorization", "Basic YWxpY2U6cHc="}, 401,
			map[string]string{"resource_metadata": testMetadataURL, "scope": "mcp:tools"}, ""},
		{"garbage token", srv.URL, []string{"Authorization", "Bearer not-a-token"}, 401,
			map[string]string{"error": "invalid_token", "error_description": "the access token is not a JWT and no issuer here introspects tokens", "scope": "mcp:tools", "resource_metadata": testMetadataURL}, ""},
		{"expired token", srv.URL, []string{"Authorization", "Bearer " + ti.sign("es", expired, "")}, 401,
			map[string]string{"error": "invalid_token", "error_description": "the access token has expired", "scope": "mcp:tools", "resource_metadata": testMetadataURL}, ""},
		{"token in the query string", srv.URL + "?access_token=" + good, nil, 400,
			map[string]string{"error": "invalid_request", "error_description": "access tokens are accepted in the Authorization header only, never in the query string", "resource_metadata": testMetadataURL}, ""},
		{"token in the query string and the header", srv.URL + "?x=1&access_token=" + good, []string{"Authorization", "Bearer " + good}, 400, nil, ""},
		{"two Authorization headers", srv.URL, []string{"Authorization", "Bearer " + good, "Authorization", "Bearer " + good}, 400, nil, ""},
		{"token not a b64token", srv.URL, []string{"Authorization", "Bearer a,b"}, 400, nil, ""},
		{"missing scope", srv.URL, []string{"Authorization", "Bearer " + ti.sign("es", noScope, "")}, 403,
			map[string]string{"error": "insufficient_scope", "error_description": "the access token lacks a scope this request needs", "scope": "mcp:tools", "resource_metadata": testMetadataURL}, ""},
		{"unknown API key", srv.URL, []string{"Authorization", "Bearer amk_bad"}, 401, nil, ""},

		{"valid token", srv.URL, []string{"Authorization", "Bearer " + good}, 200, nil, "oauth:" + ti.URL + "#alice"},
		{"scheme in lower case, two spaces", srv.URL, []string{"Authorization", "bearer  " + good}, 200, nil, "oauth:" + ti.URL + "#alice"},
		{"API key", srv.URL, []string{"Authorization", "Bearer amk_good"}, 200, nil, "key:ci-bot"},
		{"query without a token", srv.URL + "?session=1", []string{"Authorization", "Bearer " + good}, 200, nil, "oauth:" + ti.URL + "#alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, tt.url, tt.header...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (body %v)", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				who, _ := r.body["caller"].(map[string]any)
				if who["id"] != tt.wantCallers {
					t.Errorf("caller %v, want %s", r.body["caller"], tt.wantCallers)
				}
				if r.body["authorization"] != "" {
					t.Errorf("the Authorization header reached the handler: %q", r.body["authorization"])
				}
				return
			}
			if r.scheme != "Bearer" || r.challenge["resource_metadata"] != testMetadataURL {
				t.Errorf("challenge %s %v, want Bearer with resource_metadata", r.scheme, r.challenge)
			}
			if tt.wantParams != nil && !reflect.DeepEqual(r.challenge, tt.wantParams) {
				t.Errorf("challenge parameters\n got %v\nwant %v", r.challenge, tt.wantParams)
			}
			if r.header.Get("Cache-Control") != "no-store" || r.body["error"] == nil {
				t.Errorf("refusal without no-store or a JSON error: %v %v", r.header, r.body)
			}
		})
	}
	if len(refused) == 0 {
		t.Error("Options.Refused was never told")
	}
}

func TestWrapUnavailable(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	srv := guarded(t, a)
	tok := ti.sign("es", ti.claims(clk.Now()), "")
	ti.srv.Close()
	r := call(t, srv.URL, "Authorization", "Bearer "+tok)
	if r.status != 503 || r.header.Get("Retry-After") != "15" || r.scheme != "" {
		t.Errorf("issuer down: %d %v, want 503 with Retry-After and no challenge (the token is not at fault)", r.status, r.header)
	}
}

func TestNoKeyLookup(t *testing.T) {
	ti := newTestIssuer(t)
	a := newAuth(t, authConfig(ti), newClock(), Options{})
	r := call(t, guarded(t, a).URL, "Authorization", "Bearer amk_anything")
	if r.status != 401 || r.challenge["error"] != "invalid_token" || r.challenge["error_description"] != "API keys are not accepted here" {
		t.Errorf("API key without a lookup: %d %v", r.status, r.challenge)
	}
}

func TestInsufficientScope(t *testing.T) {
	ti := newTestIssuer(t)
	a := newAuth(t, authConfig(ti), newClock(), Options{})
	w := httptest.NewRecorder()
	a.InsufficientScope(w, "files:write mcp:admin")
	if w.Code != 403 {
		t.Fatalf("status %d", w.Code)
	}
	h := w.Header().Get("WWW-Authenticate")
	want := `Bearer error="insufficient_scope", error_description="the access token lacks a scope this request needs", scope="files:write mcp:admin", resource_metadata="` + testMetadataURL + `"`
	if h != want {
		t.Errorf("WWW-Authenticate\n got %s\nwant %s", h, want)
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	ti := newTestIssuer(t)
	other := newTestIssuer(t)
	cfg := authConfig(ti, other)
	cfg.RequiredScopes = []string{"mcp:tools"}
	cfg.ScopeMap = map[string][]config.AuthGrant{"files:read": {{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read"}}}}
	a := newAuth(t, cfg, newClock(), Options{})
	if got := a.PRMPaths(); !reflect.DeepEqual(got, []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}) {
		t.Fatalf("paths %q", got)
	}
	mux := http.NewServeMux()
	for _, p := range a.PRMPaths() {
		mux.Handle(p, a.PRMHandler())
	}
	mux.Handle("/mcp", a.Wrap(http.NotFoundHandler()))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A client follows the challenge: resource_metadata, with the host
	// replaced by where this test serves it.
	r := call(t, srv.URL+"/mcp")
	mdURL := r.challenge["resource_metadata"]
	if mdURL != testMetadataURL || a.MetadataURL() != testMetadataURL {
		t.Fatalf("challenge names %q", mdURL)
	}
	want := map[string]any{
		"resource":                 testResource,
		"authorization_servers":    []any{ti.URL, other.URL},
		"scopes_supported":         []any{"files:read", "mcp:tools"},
		"bearer_methods_supported": []any{"header"},
	}
	for _, p := range []string{strings.TrimPrefix(mdURL, "https://mcp.example.com"), "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v", p, resp.StatusCode, resp.Header)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", p, got, want)
		}
	}
	resp, _ := http.Post(srv.URL+"/.well-known/oauth-protected-resource", "application/json", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestMetadataLocation(t *testing.T) {
	for _, tt := range []struct{ resource, url string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com/mcp/", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		{"https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"},
		{"https://mcp.example.com:8443/a/b", "https://mcp.example.com:8443/.well-known/oauth-protected-resource/a/b"},
		{"http://127.0.0.1:8080/mcp", "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
	} {
		if got, _ := metadataLocation(tt.resource); got != tt.url {
			t.Errorf("%s: %s, want %s", tt.resource, got, tt.url)
		}
	}
}

func TestGrants(t *testing.T) {
	ti := newTestIssuer(t)
	cfg := authConfig(ti)
	a := newAuth(t, cfg, newClock(), Options{})
	who := caller.ForOAuth(ti.URL, "alice")
	who.Scopes = []string{"files:read", "mcp:tools", "files:read"}
	if g, ok := a.Grants(who); ok || g != nil {
		t.Errorf("no scope map: %v %v, want nothing and false", g, ok)
	}
	read := config.AuthGrant{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read", "list"}}
	tools := config.AuthGrant{Resources: []string{"mcp:*/*"}, Actions: []string{"call"}}
	cfg.ScopeMap = map[string][]config.AuthGrant{"files:read": {read}, "mcp:tools": {tools}, "mcp:admin": {tools, read}}
	a = newAuth(t, cfg, newClock(), Options{})
	g, ok := a.Grants(who)
	if !ok || !reflect.DeepEqual(g, []config.AuthGrant{read, tools}) {
		t.Errorf("grants %v %v", g, ok)
	}
	who.Scopes = []string{"unmapped"}
	if g, ok := a.Grants(who); !ok || len(g) != 0 {
		t.Errorf("unmapped scope grants %v", g)
	}
}

func TestNewRefuses(t *testing.T) {
	ti := newTestIssuer(t)
	for _, tt := range []struct {
		name string
		edit func(*config.Auth)
		want string
	}{
		{"auth off", func(c *config.Auth) { c.Resource = "" }, "authentication is not configured"},
		{"HS256", func(c *config.Auth) { c.Algorithms = []string{"ES256", "HS256"} }, "HS256 is HMAC"},
		{"loopback issuer without the switch", func(c *config.Auth) { c.AllowLoopbackIssuers = false }, "allow_loopback_issuers"},
	} {
		cfg := authConfig(ti)
		tt.edit(&cfg)
		if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestAPIKeysOnly: with auth.api_keys and no auth.resource, API keys
// alone authenticate; OAuth tokens are refused and the challenge names
// no metadata (there is none to discover).
func TestAPIKeysOnly(t *testing.T) {
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	clk := newClock()
	a, err := New(config.Auth{APIKeys: true, Algorithms: []string{"ES256"}}, Options{Now: clk.Now,
		KeyLookup: func(ctx context.Context, token string) (*caller.Caller, error) {
			if token == "amk_good" {
				return caller.ForAPIKey("ci-bot"), nil
			}
			return nil, errors.New("no such key")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.PRMPaths()) != 0 || a.MetadataURL() != "" {
		t.Fatalf("API keys only: PRM paths %v, metadata %q", a.PRMPaths(), a.MetadataURL())
	}
	srv := guarded(t, a)
	if r := call(t, srv.URL, "Authorization", "Bearer amk_good"); r.status != 200 {
		t.Fatalf("good key: %d", r.status)
	}
	for _, tc := range []struct{ header, desc string }{
		{"", ""},
		{"Bearer amk_bad", ""},
		{"Bearer " + ti.sign("es", ti.claims(clk.Now()), ""), "this server accepts agentmesh API keys only (amk_...), not OAuth access tokens"},
	} {
		var r reply
		if tc.header == "" {
			r = call(t, srv.URL)
		} else {
			r = call(t, srv.URL, "Authorization", tc.header)
		}
		if r.status != 401 || r.challenge["resource_metadata"] != "" || (tc.desc != "" && r.challenge["error_description"] != tc.desc) {
			t.Errorf("%.30q: %d %v", tc.header, r.status, r.challenge)
		}
	}
}
