package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// The test issuer is a real HTTP server on loopback publishing real keys
// (generated here by the standard library), discovery documents and an
// introspection endpoint; tokens are signed with go-jose. Only what an
// authorization server's user-facing side does (logins, consent) is
// missing: the end-to-end test (e2e_test.go) runs a real one.

const testResource = "https://mcp.example.com/mcp"

// Keys are slow to make (RSA): make each kind once per test binary.
var (
	rsaKey   = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	rsaKey2  = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	ecKey    = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
	ecKey2   = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
	edKeyVal = sync.OnceValue(func() ed25519.PrivateKey { _, k, _ := ed25519.GenerateKey(rand.Reader); return k })
)

type signingKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

type testIssuer struct {
	t   testing.TB
	srv *httptest.Server
	URL string // the issuer identifier

	mu        sync.Mutex
	published []jose.JSONWebKey // what /jwks serves
	signers   map[string]signingKey
	rawJWKS   []byte // when set, served instead of published
	rfc8414   bool   // serve /.well-known/oauth-authorization-server too
	metaIss   string // issuer named in the metadata; "" = URL
	active    map[string]map[string]any

	jwksFetches, discoveryFetches, introspections atomic.Int32
}

const introspectionSecret = "s3cret with spaces&symbols"

func newTestIssuer(t testing.TB) *testIssuer {
	ti := &testIssuer{t: t, signers: map[string]signingKey{}, active: map[string]map[string]any{}}
	mux := http.NewServeMux()
	meta := func(w http.ResponseWriter, r *http.Request) {
		ti.discoveryFetches.Add(1)
		ti.mu.Lock()
		iss := ti.metaIss
		ti.mu.Unlock()
		if iss == "" {
			iss = ti.URL
		}
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": ti.URL + "/jwks", "introspection_endpoint": ti.URL + "/introspect"})
	}
	mux.HandleFunc("/.well-known/openid-configuration", meta)
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		ti.mu.Lock()
		on := ti.rfc8414
		ti.mu.Unlock()
		if !on {
			ti.discoveryFetches.Add(1)
			http.NotFound(w, r)
			return
		}
		meta(w, r)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		ti.jwksFetches.Add(1)
		ti.mu.Lock()
		defer ti.mu.Unlock()
		w.Header().Set("Content-Type", "application/jwk-set+json")
		if ti.rawJWKS != nil {
			w.Write(ti.rawJWKS)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: ti.published})
	})
	mux.HandleFunc("/introspect", func(w http.ResponseWriter, r *http.Request) {
		ti.introspections.Add(1)
		// RFC 6749 §2.3.1: the credentials are form-urlencoded inside Basic.
		id, secret, ok := r.BasicAuth()
		secret, _ = url.QueryUnescape(secret)
		if r.Method != http.MethodPost || !ok || id != "agentmesh" || secret != introspectionSecret {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		ti.mu.Lock()
		resp, ok := ti.active[r.PostFormValue("token")]
		ti.mu.Unlock()
		if !ok {
			resp = map[string]any{"active": false}
		}
		json.NewEncoder(w).Encode(resp)
	})
	ti.srv = httptest.NewServer(mux)
	ti.URL = ti.srv.URL
	t.Cleanup(ti.srv.Close)
	return ti
}

// addKey publishes key under kid and remembers it for signing.
func (ti *testIssuer) addKey(kid string, alg jose.SignatureAlgorithm, key crypto.Signer) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.published = append(ti.published, jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: string(alg), Use: "sig"})
	ti.signers[kid] = signingKey{alg, key}
}

// removeKeys stops publishing every key (rotation).
func (ti *testIssuer) removeKeys() {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.published = nil
}

// claims are a valid access token's for the test resource at now.
func (ti *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": ti.URL, "sub": "alice", "aud": testResource, "client_id": "alice-app",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "scope": "mcp:tools files:read",
		"groups": []string{"eng", "oncall"}, "department": "platform", "jti": fmt.Sprint(now.UnixNano()),
	}
}

// sign makes a token with the key published under kid (or, when kid is
// not published, the signer registered under it), typ "at+jwt" unless
// typ says otherwise ("-" for none).
func (ti *testIssuer) sign(kid string, claims map[string]any, typ string) string {
	ti.mu.Lock()
	sk, ok := ti.signers[kid]
	ti.mu.Unlock()
	if !ok {
		ti.t.Fatalf("no signer %q", kid)
	}
	return signWith(ti.t, sk.alg, jose.JSONWebKey{Key: sk.key, KeyID: kid}, claims, typ)
}

func signWith(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any, typ string) string {
	opts := &jose.SignerOptions{}
	switch typ {
	case "":
		opts.WithType("at+jwt")
	case "-":
	default:
		opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// activate makes the introspection endpoint answer resp for token.
func (ti *testIssuer) activate(token string, resp map[string]any) {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	ti.active[token] = resp
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_900_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// authConfig trusts the issuers, with the defaults of config.Default.
func authConfig(issuers ...*testIssuer) config.Auth {
	a := config.Default().Auth
	a.Resource = testResource
	a.AllowLoopbackIssuers = true
	a.Claims.Extra = []string{"department"}
	for _, ti := range issuers {
		a.Issuers = append(a.Issuers, config.AuthIssuer{Issuer: ti.URL})
	}
	return a
}

func newAuth(t testing.TB, cfg config.Auth, clk *clock, opts Options) *Authenticator {
	t.Helper()
	if clk != nil {
		opts.Now = clk.Now
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
