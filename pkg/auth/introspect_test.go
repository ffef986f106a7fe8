package auth

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

func introspectionConfig(ti *testIssuer, secret string) config.Auth {
	cfg := authConfig(ti)
	cfg.Issuers[0].Introspection = config.AuthIntrospection{ClientID: "agentmesh", ClientSecret: secret}
	return cfg
}

func TestIntrospection(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	now := clk.Now()
	activeFor := func(edit func(map[string]any)) map[string]any {
		r := map[string]any{"active": true, "iss": ti.URL, "sub": "bob", "aud": testResource, "client_id": "bob-app",
			"scope": "mcp:tools", "exp": now.Add(time.Hour).Unix(), "groups": []string{"ops"}}
		if edit != nil {
			edit(r)
		}
		return r
	}
	tests := []struct {
		name string
		resp map[string]any // nil: the endpoint does not know the token
		want string         // "" = accepted
	}{
		{"active", activeFor(nil), ""},
		{"active without iss (the endpoint's issuer)", activeFor(func(r map[string]any) { delete(r, "iss") }), ""},
		{"active without exp", activeFor(func(r map[string]any) { delete(r, "exp") }), ""},
		{"client credentials: no sub, the client is the subject", activeFor(func(r map[string]any) { delete(r, "sub"); r["client_id"] = "bob" }), ""},
		{"aud as a list", activeFor(func(r map[string]any) { r["aud"] = []string{"x", testResource} }), ""},
		{"unknown token", nil, "not active"},
		{"active false", map[string]any{"active": false}, "not active"},
		{"active as a string", activeFor(func(r map[string]any) { r["active"] = "true" }), "not active"},
		{"another resource's token", activeFor(func(r map[string]any) { r["aud"] = "https://other.example/mcp" }), "not meant for this resource"},
		{"no aud", activeFor(func(r map[string]any) { delete(r, "aud") }), "not meant for this resource"},
		{"another issuer", activeFor(func(r map[string]any) { r["iss"] = "https://evil.example.com" }), "issuer is not trusted"},
		{"expired", activeFor(func(r map[string]any) { r["exp"] = now.Add(-time.Hour).Unix() }), "has expired"},
		{"no sub nor client", activeFor(func(r map[string]any) { delete(r, "sub"); delete(r, "client_id") }), "no subject"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAuth(t, introspectionConfig(ti, introspectionSecret), clk, Options{})
			token := "opaque-" + strings.Repeat("x", i+1)
			if tt.resp != nil {
				ti.activate(token, tt.resp)
			}
			who, err := a.ValidateToken(context.Background(), token)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if who.ID != "oauth:"+ti.URL+"#bob" || who.ClientID == "" || !who.HasScope("mcp:tools") || len(who.Groups) != 1 {
					t.Errorf("caller %+v", who)
				}
				return
			}
			if err == nil || AsError(err).Code != CodeInvalidToken || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want invalid_token %q", err, tt.want)
			}
		})
	}
}

func TestIntrospectionCache(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	a := newAuth(t, introspectionConfig(ti, introspectionSecret), clk, Options{})
	ctx := context.Background()
	ti.activate("long", map[string]any{"active": true, "sub": "bob", "aud": testResource, "exp": clk.Now().Add(time.Hour).Unix()})
	ti.activate("short", map[string]any{"active": true, "sub": "bob", "aud": testResource, "exp": clk.Now().Add(5 * time.Second).Unix()})
	for i := 0; i < 5; i++ {
		if _, err := a.ValidateToken(ctx, "long"); err != nil {
			t.Fatal(err)
		}
	}
	if n := ti.introspections.Load(); n != 1 {
		t.Fatalf("%d introspections for five uses, want 1 (cached)", n)
	}
	// The cache lasts DefaultIntrospectionCacheTTL: a revoked token is
	// refused once it ends.
	ti.activate("long", map[string]any{"active": false})
	clk.Advance(DefaultIntrospectionCacheTTL)
	if _, err := a.ValidateToken(ctx, "long"); err == nil {
		t.Fatal("revoked token accepted after the cache period")
	}
	// Never past exp.
	if _, err := a.ValidateToken(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	before := ti.introspections.Load()
	clk.Advance(6 * time.Second)
	a.ValidateToken(ctx, "short")
	if ti.introspections.Load() == before {
		t.Error("a cached introspection answer outlived the token's exp")
	}
	// Refusals are not cached: an inactive token is asked about again.
	before = ti.introspections.Load()
	a.ValidateToken(ctx, "never-seen")
	a.ValidateToken(ctx, "never-seen")
	if n := ti.introspections.Load() - before; n != 2 {
		t.Errorf("%d introspections for two uses of an unknown token, want 2", n)
	}
}

func TestIntrospectionFailures(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ctx := context.Background()
	ti.activate("tok", map[string]any{"active": true, "sub": "bob", "aud": testResource})

	a := newAuth(t, introspectionConfig(ti, "wrong secret"), clk, Options{})
	_, err := a.ValidateToken(ctx, "tok")
	if e := AsError(err); e.Status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("bad client credentials: got %v, want 503 naming the endpoint's 401", err)
	}

	a = newAuth(t, authConfig(ti), clk, Options{}) // no introspection configured
	_, err = a.ValidateToken(ctx, "tok")
	if e := AsError(err); e.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "no issuer here introspects") {
		t.Errorf("opaque token without introspection: %v", err)
	}

	cfg := introspectionConfig(ti, introspectionSecret)
	cfg.Issuers[0].Introspection.URL = ti.URL + "/introspect"
	ti.srv.Close() // the endpoint is down
	a = newAuth(t, cfg, clk, Options{})
	_, err = a.ValidateToken(ctx, "tok")
	if e := AsError(err); e.Status != http.StatusServiceUnavailable {
		t.Errorf("endpoint down: got %v, want 503", err)
	}
}
