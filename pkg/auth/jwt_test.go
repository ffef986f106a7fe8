package auth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// b64 is base64url without padding (RFC 7515 §2).
func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestValidateJWT(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("rs", jose.RS256, rsaKey())
	ti.addKey("ps", jose.PS256, rsaKey2())
	ti.addKey("es", jose.ES256, ecKey())
	ti.addKey("ed", jose.EdDSA, edKeyVal())
	other := newTestIssuer(t) // trusted too, with its own key
	other.addKey("other", jose.ES256, ecKey2())
	stranger := newTestIssuer(t) // not trusted
	stranger.addKey("es", jose.ES256, ecKey2())
	a := newAuth(t, authConfig(ti, other), clk, Options{JWTCacheTTL: -1})
	now := clk.Now()

	with := func(edit func(c map[string]any)) map[string]any {
		c := ti.claims(now)
		edit(c)
		return c
	}
	rsaPub, _ := x509.MarshalPKIXPublicKey(rsaKey().Public())
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})
	rsaJWK, _ := json.Marshal(jose.JSONWebKey{Key: rsaKey().Public(), KeyID: "rs"})

	tests := []struct {
		name  string
		token string
		want  string // "" = accepted; else a fragment of the error
	}{
		{"ES256 at+jwt", ti.sign("es", ti.claims(now), ""), ""},
		{"RS256", ti.sign("rs", ti.claims(now), ""), ""},
		{"PS256", ti.sign("ps", ti.claims(now), ""), ""},
		{"EdDSA", ti.sign("ed", ti.claims(now), ""), ""},
		{"typ application/at+jwt", ti.sign("es", ti.claims(now), "application/at+JWT"), ""},
		{"typ JWT", ti.sign("es", ti.claims(now), "JWT"), ""},
		{"no typ", ti.sign("es", ti.claims(now), "-"), ""},
		{"aud list containing the resource", ti.sign("es", with(func(c map[string]any) { c["aud"] = []string{"https://other.example", testResource} }), ""), ""},
		{"scp list instead of scope", ti.sign("es", with(func(c map[string]any) { delete(c, "scope"); c["scp"] = []string{"mcp:tools"} }), ""), ""},
		{"azp instead of client_id", ti.sign("es", with(func(c map[string]any) { delete(c, "client_id"); c["azp"] = "alice-app" }), ""), ""},
		{"expired within skew", ti.sign("es", with(func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }), ""), ""},
		{"nbf within skew", ti.sign("es", with(func(c map[string]any) { c["nbf"] = now.Add(30 * time.Second).Unix() }), ""), ""},
		{"second trusted issuer", other.sign("other", with(func(c map[string]any) { c["iss"] = other.URL }), ""), ""},

		{"expired", ti.sign("es", with(func(c map[string]any) { c["exp"] = now.Add(-61 * time.Second).Unix() }), ""), "has expired"},
		{"no exp", ti.sign("es", with(func(c map[string]any) { delete(c, "exp") }), ""), "no expiry"},
		{"nbf in the future", ti.sign("es", with(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }), ""), "not valid yet"},
		{"iat in the future", ti.sign("es", with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }), ""), "issued in the future"},
		{"exp not a number", ti.sign("es", with(func(c map[string]any) { c["exp"] = "tomorrow" }), ""), "malformed"},
		{"wrong aud", ti.sign("es", with(func(c map[string]any) { c["aud"] = "https://other.example/mcp" }), ""), "not meant for this resource"},
		{"resource with a trailing slash is another audience", ti.sign("es", with(func(c map[string]any) { c["aud"] = testResource + "/" }), ""), "not meant for this resource"},
		{"no aud", ti.sign("es", with(func(c map[string]any) { delete(c, "aud") }), ""), "not meant for this resource"},
		{"untrusted issuer", stranger.sign("es", with(func(c map[string]any) { c["iss"] = stranger.URL }), ""), "issuer is not trusted"},
		{"issuer differing by a slash", ti.sign("es", with(func(c map[string]any) { c["iss"] = ti.URL + "/" }), ""), "issuer is not trusted"},
		{"no iss", ti.sign("es", with(func(c map[string]any) { delete(c, "iss") }), ""), "issuer is not trusted"},
		{"trusted iss, another trusted issuer's key", other.sign("other", ti.claims(now), ""), "unknown key"},
		{"trusted iss and kid, attacker's key", stranger.sign("es", ti.claims(now), ""), "signature does not verify"},
		{"missing sub", ti.sign("es", with(func(c map[string]any) { delete(c, "sub") }), ""), "no subject"},
		{"empty sub", ti.sign("es", with(func(c map[string]any) { c["sub"] = "" }), ""), "no subject"},
		{"groups not strings", ti.sign("es", with(func(c map[string]any) { c["groups"] = map[string]any{"admin": true} }), ""), "malformed"},
		{"typ of an ID token", ti.sign("es", ti.claims(now), "id_token+jwt"), "not an access token"},
		{"typ of a DPoP proof", ti.sign("es", ti.claims(now), "dpop+jwt"), "not an access token"},
		{"alg none", b64(map[string]string{"alg": "none", "typ": "at+jwt"}) + "." + b64(ti.claims(now)) + ".", "algorithm not accepted"},
		{"alg none with a signature", b64(map[string]string{"alg": "none", "kid": "es"}) + "." + b64(ti.claims(now)) + ".c2ln", "algorithm not accepted"},
		{"HS256 with the RSA public key (PEM) as secret", signWith(t, jose.HS256, jose.JSONWebKey{Key: rsaPEM, KeyID: "rs"}, ti.claims(now), ""), "algorithm not accepted"},
		{"HS256 with the RSA JWK as secret", signWith(t, jose.HS256, jose.JSONWebKey{Key: rsaJWK, KeyID: "rs"}, ti.claims(now), ""), "algorithm not accepted"},
		{"ES256 header on the RSA key's kid", signWith(t, jose.ES256, jose.JSONWebKey{Key: ecKey(), KeyID: "rs"}, ti.claims(now), ""), "unknown key"},
		{"RS384 not in the allowlist", signWith(t, jose.RS384, jose.JSONWebKey{Key: rsaKey(), KeyID: "rs"}, ti.claims(now), ""), "algorithm not accepted"},
		{"signature of another token", func() string {
			a := strings.Split(ti.sign("es", ti.claims(now), ""), ".")
			b := strings.Split(ti.sign("es", with(func(c map[string]any) { c["sub"] = "mallory" }), ""), ".")
			return a[0] + "." + b[1] + "." + a[2]
		}(), "signature does not verify"},
		{"crit header", func() string {
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: ecKey(), KeyID: "es"}},
				(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("x-new", true).WithCritical("x-new"))
			b, _ := json.Marshal(ti.claims(now))
			o, _ := s.Sign(b)
			tok, _ := o.CompactSerialize()
			return tok
		}(), "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, err := a.ValidateToken(context.Background(), tt.token)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if who.Kind != caller.OAuth || who.Subject != "alice" || who.ClientID != "alice-app" || len(who.Scopes) == 0 {
					t.Errorf("caller %+v", who)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v, want %q", who, tt.want)
			}
			e := AsError(err)
			if e.Status != http.StatusUnauthorized || e.Code != CodeInvalidToken || !strings.Contains(e.Description, tt.want) {
				t.Errorf("got %d %s %q (%v), want 401 invalid_token %q", e.Status, e.Code, e.Description, e.Err, tt.want)
			}
		})
	}
}

func TestCallerFromJWT(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	who, err := a.ValidateToken(context.Background(), ti.sign("es", ti.claims(clk.Now()), ""))
	if err != nil {
		t.Fatal(err)
	}
	want := caller.ForOAuth(ti.URL, "alice")
	want.ClientID = "alice-app"
	want.Scopes = []string{"mcp:tools", "files:read"}
	want.Groups = []string{"eng", "oncall"}
	want.Claims = map[string]any{"department": "platform"}
	if !reflect.DeepEqual(who, want) {
		t.Errorf("caller\n got %+v\nwant %+v", who, want)
	}
	if who.ID != "oauth:"+ti.URL+"#alice" {
		t.Errorf("ID %q", who.ID)
	}
}

func TestRequiredScopes(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	cfg := authConfig(ti)
	cfg.RequiredScopes = []string{"mcp:tools", "mcp:admin"}
	a := newAuth(t, cfg, clk, Options{})
	_, err := a.ValidateToken(context.Background(), ti.sign("es", ti.claims(clk.Now()), ""))
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Code != CodeInsufficientScope || e.Scope != "mcp:tools mcp:admin" {
		t.Fatalf("got %v, want 403 insufficient_scope naming both scopes", err)
	}
	c := ti.claims(clk.Now())
	c["scope"] = "mcp:admin mcp:tools extra"
	if _, err := a.ValidateToken(context.Background(), ti.sign("es", c, "")); err != nil {
		t.Fatalf("token with the scopes: %v", err)
	}
}

func TestTokenCacheNeverOutlivesExpiry(t *testing.T) {
	clk := newClock()
	ti := newTestIssuer(t)
	ti.addKey("es", jose.ES256, ecKey())
	a := newAuth(t, authConfig(ti), clk, Options{})
	c := ti.claims(clk.Now())
	c["exp"] = clk.Now().Add(10 * time.Second).Unix()
	tok := ti.sign("es", c, "")
	for i := 0; i < 3; i++ {
		if _, err := a.ValidateToken(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(10*time.Second + config60s)
	if _, err := a.ValidateToken(context.Background(), tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token served from the cache: %v", err)
	}
}

const config60s = 60 * time.Second // the default max_skew
