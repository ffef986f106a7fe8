package mcpserver

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// TestIntrospectionSecretByReference: auth.issuers[].introspection.
// client_secret given as ${env:...} reaches the introspection endpoint
// resolved (HTTP Basic), so an opaque token is accepted; the caller's
// configuration keeps the reference.
func TestIntrospectionSecretByReference(t *testing.T) {
	const secret = "intro-s3cret-value"
	t.Setenv("AM_TEST_INTROSPECTION_SECRET", secret)
	var mu sync.Mutex
	var gotUser, gotPass string
	var issuer *httptest.Server
	var resource string // set before any request
	issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server", "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer.URL, "jwks_uri": issuer.URL + "/jwks", "introspection_endpoint": issuer.URL + "/introspect"})
		case "/jwks":
			w.Write([]byte(`{"keys":[]}`))
		case "/introspect":
			user, pass, _ := r.BasicAuth()
			mu.Lock()
			gotUser, gotPass = user, pass
			mu.Unlock()
			if user != "agentmesh" || pass != secret {
				http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"active": true, "iss": issuer.URL, "sub": "bob", "client_id": "bob-app",
				"aud": resource, "scope": "mcp:tools", "exp": time.Now().Add(time.Hour).Unix()})
		default:
			http.NotFound(w, r)
		}
	}))
	defer issuer.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resource = "http://" + ln.Addr().String() + "/mcp"

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Source.StateDir, cfg.Source.File = filepath.Join(dir, "state"), filepath.Join(dir, "agentmesh.yaml")
	cfg.Agent = config.Agent{Name: "intro-test", Sponsor: "me@example.com"}
	cfg.Audit.Witness, cfg.Policies.Paths = false, nil
	cfg.Auth.Resource, cfg.Auth.AllowLoopbackIssuers = resource, true
	cfg.Auth.Issuers = []config.AuthIssuer{{Issuer: issuer.URL,
		Introspection: config.AuthIntrospection{ClientID: "agentmesh", ClientSecret: "${env:AM_TEST_INTROSPECTION_SECRET}"}}}
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if cfg.Auth.Issuers[0].Introspection.ClientSecret != "${env:AM_TEST_INTROSPECTION_SECRET}" {
		t.Errorf("Open changed the caller's configuration: %q", cfg.Auth.Issuers[0].Introspection.ClientSecret)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go rt.ServeHTTP(ctx, HTTPOptions{Listener: ln, Authenticated: true})

	req, _ := http.NewRequest("POST", resource, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer opaque-token-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	if gotUser != "agentmesh" || gotPass != secret {
		t.Errorf("the introspection endpoint got client %q with secret %q, want the resolved one", gotUser, gotPass)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("initialize with an opaque token: %d", resp.StatusCode)
	}
}
