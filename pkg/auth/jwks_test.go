package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func randomKID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func TestJWKSRotation(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("old", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	ctx := context.Background()
	if _, err := a.ValidateToken(ctx, ti.sign("old", ti.claims(clk.Now()), "")); err != nil {
		t.Fatal(err)
	}
	// The issuer rotates to a new key; its first token arrives later
	// than the refresh interval: one fetch picks the key up.
	ti.removeKeys()
	ti.addKey("new", jose.RS256, rsaKey())
	clk.Advance(DefaultMinRefreshInterval)
	if _, err := a.ValidateToken(ctx, ti.sign("new", ti.claims(clk.Now()), "")); err != nil {
		t.Fatalf("token signed with the rotated-in key: %v", err)
	}
	if n := ti.jwksFetches.Load(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2", n)
	}
	// A token under the old key, not seen before, is refused once the
	// set no longer has it...
	if _, err := a.ValidateToken(ctx, ti.sign("old", ti.claims(clk.Now()), "")); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("token signed with the rotated-out key: %v", err)
	}
	// ...and discovery happened once: RFC 8414 first (404 here), then
	// OpenID Connect.
	if n := ti.discoveryFetches.Load(); n != 2 {
		t.Errorf("%d discovery fetches, want 2", n)
	}
}

func TestJWKSStaleSetRefreshedInBackground(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{JWTCacheTTL: -1})
	ctx := context.Background()
	c := ti.claims(clk.Now())
	c["exp"] = clk.Now().Add(time.Hour).Unix()
	tok := ti.sign("es", c, "")
	if _, err := a.ValidateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// The key is withdrawn; once the set is older than its max age, the
	// next use still succeeds (no waiting on the network) and triggers a
	// refresh, after which the key is gone.
	ti.removeKeys()
	ti.addKey("other", jose.ES256, ecKey2())
	clk.Advance(DefaultKeysMaxAge + time.Second)
	if _, err := a.ValidateToken(ctx, tok); err != nil {
		t.Fatalf("stale set not used while refreshing: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ti.jwksFetches.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for time.Now().Before(deadline) {
		if _, err := a.ValidateToken(ctx, tok); err != nil {
			return // withdrawn key no longer accepted
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("a key withdrawn from the set is still accepted after the background refresh")
}

func TestRandomKIDsDoNotHammerTheIssuer(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	ctx := context.Background()

	// A burst: 200 tokens with random kids at the same instant.
	for i := 0; i < 200; i++ {
		tok := signWith(t, jose.ES256, jose.JSONWebKey{Key: ecKey2(), KeyID: randomKID()}, ti.claims(clk.Now()), "")
		if _, err := a.ValidateToken(ctx, tok); err == nil {
			t.Fatal("token with a random kid accepted")
		}
	}
	if n := ti.jwksFetches.Load(); n != 1 {
		t.Fatalf("a burst of random kids caused %d JWKS fetches, want 1", n)
	}

	// Two minutes of one random kid a second: at most one fetch per
	// refresh interval.
	for i := 0; i < 120; i++ {
		clk.Advance(time.Second)
		tok := signWith(t, jose.ES256, jose.JSONWebKey{Key: ecKey2(), KeyID: randomKID()}, ti.claims(clk.Now()), "")
		a.ValidateToken(ctx, tok)
	}
	perMinute := int(time.Minute / DefaultMinRefreshInterval)
	if n := int(ti.jwksFetches.Load()) - 1; n > 2*perMinute {
		t.Errorf("%d fetches in two minutes of random kids, want at most %d", n, 2*perMinute)
	}
	// The real key still works throughout.
	if _, err := a.ValidateToken(ctx, ti.sign("es", ti.claims(clk.Now()), "")); err != nil {
		t.Errorf("valid token refused after the flood: %v", err)
	}
}

func TestConcurrentUnknownKIDsShareOneFetch(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ti.claims(clk.Now())
			c["jti"] = randomKID()
			if _, err := a.ValidateToken(context.Background(), ti.sign("es", c, "")); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := ti.jwksFetches.Load(); n != 1 {
		t.Errorf("%d JWKS fetches for 32 concurrent first requests, want 1", n)
	}
}

func TestKeySetBounds(t *testing.T) {
	pub := func(kid string) jose.JSONWebKey {
		return jose.JSONWebKey{Key: ecKey().Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}
	}
	many := jose.JSONWebKeySet{}
	for i := 0; i <= maxJWKSKeys; i++ {
		many.Keys = append(many.Keys, pub(fmt.Sprint(i)))
	}
	tooMany, _ := json.Marshal(many)
	big, _ := json.Marshal(map[string]any{"keys": []any{pub("es")}, "padding": strings.Repeat("x", maxJWKSBytes)})
	octOnly := []byte(`{"keys":[{"kty":"oct","kid":"es","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256"}]}`)
	withUnknown, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{"kty": "ML-DSA", "kid": "pq"}, pub("es")}})
	encOnly, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ecKey().Public(), KeyID: "es", Use: "enc"}}})
	small, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: ecKey().Public(), KeyID: "es", Algorithm: "ES512"}}})

	tests := []struct {
		name string
		jwks []byte
		want string // "" = the token verifies
	}{
		{"more keys than allowed", tooMany, "could not be fetched"},
		{"response too large", big, "could not be fetched"},
		{"only an HMAC key", octOnly, "could not be fetched"},
		{"a key type go-jose does not know is skipped", withUnknown, ""},
		{"encryption key", encOnly, "could not be fetched"},
		{"key's alg not allowed", small, "could not be fetched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			ti := newTestIssuer(t)
			ti.addKey("es", jose.ES256, ecKey())
			ti.rawJWKS = tt.jwks
			a := newAuth(t, authConfig(ti), clk, Options{})
			_, err := a.ValidateToken(context.Background(), ti.sign("es", ti.claims(clk.Now()), ""))
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || AsError(err).Status != http.StatusServiceUnavailable || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want 503 %q", err, tt.want)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	urls, _ := discoveryURLs("https://as.example.com/tenant/1/")
	want := []string{
		"https://as.example.com/.well-known/oauth-authorization-server/tenant/1",
		"https://as.example.com/.well-known/openid-configuration/tenant/1",
		"https://as.example.com/tenant/1/.well-known/openid-configuration",
	}
	if !reflect.DeepEqual(urls, want) {
		t.Errorf("with a path:\n got %q\nwant %q", urls, want)
	}
	urls, _ = discoveryURLs("https://as.example.com")
	want = []string{"https://as.example.com/.well-known/oauth-authorization-server", "https://as.example.com/.well-known/openid-configuration"}
	if !reflect.DeepEqual(urls, want) {
		t.Errorf("without a path:\n got %q\nwant %q", urls, want)
	}

	ctx := context.Background()
	t.Run("RFC 8414 first", func(t *testing.T) {
		clk := newClock()
		ti := newTestIssuer(t)
		ti.addKey("es", jose.ES256, ecKey())
		ti.rfc8414 = true
		a := newAuth(t, authConfig(ti), clk, Options{})
		if _, err := a.ValidateToken(ctx, ti.sign("es", ti.claims(clk.Now()), "")); err != nil {
			t.Fatal(err)
		}
		if n := ti.discoveryFetches.Load(); n != 1 {
			t.Errorf("%d discovery fetches, want 1", n)
		}
	})
	t.Run("metadata naming another issuer is not used", func(t *testing.T) {
		clk := newClock()
		ti := newTestIssuer(t)
		ti.addKey("es", jose.ES256, ecKey())
		ti.metaIss = "https://evil.example.com"
		a := newAuth(t, authConfig(ti), clk, Options{})
		_, err := a.ValidateToken(ctx, ti.sign("es", ti.claims(clk.Now()), ""))
		if err == nil || !strings.Contains(err.Error(), `names issuer "https://evil.example.com"`) {
			t.Fatalf("got %v", err)
		}
		if n := ti.jwksFetches.Load(); n != 0 {
			t.Errorf("fetched the keys of an impersonating metadata document")
		}
	})
	t.Run("configured jwks_uri skips discovery", func(t *testing.T) {
		clk := newClock()
		ti := newTestIssuer(t)
		ti.addKey("es", jose.ES256, ecKey())
		cfg := authConfig(ti)
		cfg.Issuers[0].JWKSURI = ti.URL + "/jwks"
		a := newAuth(t, cfg, clk, Options{})
		if _, err := a.ValidateToken(ctx, ti.sign("es", ti.claims(clk.Now()), "")); err != nil {
			t.Fatal(err)
		}
		if n := ti.discoveryFetches.Load(); n != 0 {
			t.Errorf("%d discovery fetches, want 0", n)
		}
	})
	t.Run("redirect to plain http off loopback is refused", func(t *testing.T) {
		f := newFetcher(nil, true)
		srv := newTestIssuer(t)
		srv.srv.Config.Handler = http.RedirectHandler("http://as.example.com/jwks", http.StatusFound)
		var v any
		if err := f.getJSON(ctx, srv.URL+"/jwks", 1024, &v); err == nil || !strings.Contains(err.Error(), "must use https") {
			t.Fatalf("got %v", err)
		}
	})
}
