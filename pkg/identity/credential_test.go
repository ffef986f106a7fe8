package identity

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/scope"
)

const subject = "did:agentmesh:mcp-tool-server"

func testIssuer(key ed25519.PrivateKey) *Issuer {
	return &Issuer{
		Authority: key,
		Subject:   subject,
		Sponsor:   "devops@company.com",
		TTL:       15 * time.Minute,
		Scopes: []ScopeTemplate{
			{Resources: []string{"filesystem:/data/*"}, Actions: []string{"read"}, TTL: 15 * time.Minute},
			{Resources: []string{"database:users"}, Actions: []string{"query"}, TTL: 5 * time.Minute},
		},
	}
}

func testVerifier(key ed25519.PrivateKey) *Verifier {
	return &Verifier{Authority: key.Public().(ed25519.PublicKey), Audience: subject, MaxTTL: time.Hour, Skew: MaxClockSkew}
}

// forge builds a token with arbitrary header and claims, signed by sign.
func forge(t *testing.T, hdr map[string]any, c Claims, sign func([]byte) []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(hdr)
	p, _ := json.Marshal(c)
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	return signing + "." + enc.EncodeToString(sign([]byte(signing)))
}

func TestCredentialRoundTrip(t *testing.T) {
	key := rfc8032Key(t)
	c, err := testIssuer(key).Issue(t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := testVerifier(key).Verify(c.Token, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Claims.Subject != subject || got.Claims.Audience != subject || got.Claims.Lifetime() != 15*time.Minute {
		t.Errorf("claims = %+v", got.Claims)
	}
	if len(got.Claims.ID) != 32 {
		t.Errorf("jti = %q, want 128 random bits in hex", got.Claims.ID)
	}
	now := t0.Add(time.Minute)
	if !got.Scopes.Allows(now, scope.Filesystem, "/data/users.json", scope.Read) {
		t.Error("filesystem scope not granted")
	}
	if got.Scopes.Allows(now, scope.Filesystem, "/etc/hosts", scope.Read) {
		t.Error("scope covers /etc/hosts")
	}
	// The database scope has a 5-minute TTL inside a 15-minute credential.
	if !got.Scopes.Allows(t0.Add(4*time.Minute), scope.Database, "users", scope.Query) {
		t.Error("database scope not granted within its TTL")
	}
	if got.Scopes.Allows(t0.Add(6*time.Minute), scope.Database, "users", scope.Query) {
		t.Error("database scope still granted after its TTL")
	}
}

func TestCredentialRejections(t *testing.T) {
	key := rfc8032Key(t)
	other, _ := GenerateKey()
	v := testVerifier(key)
	good, err := testIssuer(key).Issue(t0)
	if err != nil {
		t.Fatal(err)
	}
	kid := DIDKey(key.Public().(ed25519.PublicKey))
	claims := good.Claims
	edSign := func(k ed25519.PrivateKey) func([]byte) []byte {
		return func(b []byte) []byte { return ed25519.Sign(k, b) }
	}
	parts := strings.Split(good.Token, ".")
	tamperedClaims := claims
	tamperedClaims.Scopes = append(tamperedClaims.Scopes, scope.Grant{Resources: []string{"filesystem:/*"}, Actions: []string{"write"}, Expires: claims.Expires})
	tp, _ := json.Marshal(tamperedClaims)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(tp) + "." + parts[2]

	longClaims := claims
	longClaims.Expires = claims.IssuedAt + int64((2 * time.Hour).Seconds())
	audClaims := claims
	audClaims.Audience = "did:agentmesh:someone-else"

	tests := []struct {
		name  string
		token string
		at    time.Time
		want  error
	}{
		{"tampered payload", tampered, t0, ErrSignature},
		{"wrong key", forge(t, map[string]any{"alg": "EdDSA", "kid": DIDKey(other.Public().(ed25519.PublicKey)), "typ": "JWT"}, claims, edSign(other)), t0, ErrUnknownIssuer},
		{"wrong key claiming the right kid", forge(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}, claims, edSign(other)), t0, ErrSignature},
		{"alg none", forge(t, map[string]any{"alg": "none", "kid": kid}, claims, func([]byte) []byte { return nil }), t0, ErrAlgorithm},
		{"HS256 with the public key as secret", forge(t, map[string]any{"alg": "HS256", "kid": kid}, claims, func(b []byte) []byte {
			m := hmac.New(sha256.New, key.Public().(ed25519.PublicKey))
			m.Write(b)
			return m.Sum(nil)
		}), t0, ErrAlgorithm},
		{"expired", good.Token, t0.Add(15*time.Minute + MaxClockSkew), ErrExpired},
		{"not yet valid", good.Token, t0.Add(-MaxClockSkew - time.Second), ErrNotYetValid},
		{"over-long lifetime", forge(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}, longClaims, edSign(key)), t0, ErrLifetimeTooLong},
		{"wrong audience", forge(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "JWT"}, audClaims, edSign(key)), t0, ErrAudience},
		{"two parts", parts[0] + "." + parts[1], t0, ErrMalformed},
		{"unknown header field", forge(t, map[string]any{"alg": "EdDSA", "kid": kid, "crit": []string{"x"}}, claims, edSign(key)), t0, ErrMalformed},
	}
	seen := map[error]string{}
	for _, tt := range tests {
		_, err := v.Verify(tt.token, tt.at)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify = %v, want %v", tt.name, err, tt.want)
		}
		seen[tt.want] = tt.name
	}
	// Within the allowed skew the credential still verifies.
	if _, err := v.Verify(good.Token, t0.Add(15*time.Minute+MaxClockSkew-time.Second)); err != nil {
		t.Errorf("within skew after expiry: %v", err)
	}
	if _, err := v.Verify(good.Token, t0.Add(-MaxClockSkew)); err != nil {
		t.Errorf("within skew before issue: %v", err)
	}
}

func TestScopeMayNotOutliveCredential(t *testing.T) {
	key := rfc8032Key(t)
	c, _ := testIssuer(key).Issue(t0)
	claims := c.Claims
	claims.Scopes = []scope.Grant{{Resources: []string{"filesystem:/*"}, Actions: []string{"read"}, Expires: claims.Expires + 3600}}
	tok := forge(t, map[string]any{"alg": "EdDSA", "kid": claims.Issuer, "typ": "JWT"}, claims, func(b []byte) []byte { return ed25519.Sign(key, b) })
	if _, err := testVerifier(key).Verify(tok, t0); !errors.Is(err, ErrMalformed) {
		t.Fatalf("scope outliving credential: %v", err)
	}
}

func TestIssuerCapsScopeAtCredential(t *testing.T) {
	is := testIssuer(rfc8032Key(t))
	is.Scopes[0].TTL = 24 * time.Hour
	c, err := is.Issue(t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Claims.Scopes[0].Expires != c.Claims.Expires {
		t.Errorf("scope exp %d, credential exp %d", c.Claims.Scopes[0].Expires, c.Claims.Expires)
	}
}

func TestRotator(t *testing.T) {
	d := newState(t)
	id, err := Create(d, CreateOptions{Name: "mcp-tool-server", Sponsor: "devops@company.com", Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	issued := 0
	r := &Rotator{
		Dir:      d,
		Issuer:   NewIssuer(id, 15*time.Minute, "", nil),
		Verifier: testVerifier(id.Authority),
		RotateAt: 0.5,
		Now:      func() time.Time { return now },
		OnIssue:  func(*Credential) error { issued++; return nil },
	}
	r.jitter = 0.05 // deterministic: renew at 45% of 15 min = 6m45s
	first, err := r.Current()
	if err != nil || issued != 1 {
		t.Fatalf("first Current: %v, issued %d", err, issued)
	}
	now = t0.Add(6 * time.Minute)
	if c, _ := r.Current(); c.Claims.ID != first.Claims.ID || issued != 1 {
		t.Fatal("renewed before the rotation point")
	}
	now = t0.Add(7 * time.Minute)
	second, err := r.Current()
	if err != nil || second.Claims.ID == first.Claims.ID || issued != 2 {
		t.Fatalf("not renewed after the rotation point: %v", err)
	}
	if _, err := r.Valid(first.Token); err != nil {
		t.Errorf("the previous credential was cut off early: %v", err)
	}
	stored, _ := ReadCredential(d)
	if stored != second.Token {
		t.Error("the renewed credential was not stored")
	}
	// A second process adopts the stored credential instead of issuing.
	r2 := &Rotator{Dir: d, Issuer: r.Issuer, Verifier: r.Verifier, RotateAt: 0.5, Now: r.Now, OnIssue: r.OnIssue}
	r2.jitter = 0.05
	if c, err := r2.Current(); err != nil || c.Claims.ID != second.Claims.ID || issued != 2 {
		t.Fatalf("second process issued its own credential: %v", err)
	}
	now = t0.Add(16 * time.Minute)
	if _, err := r.Valid(first.Token); !errors.Is(err, ErrExpired) {
		t.Errorf("the previous credential after expiry: %v", err)
	}
}

func FuzzVerifyCredential(f *testing.F) {
	key := rfc8032Key(f)
	// A fixed credential: Ed25519 is deterministic, so every fuzz worker
	// process computes the same token.
	issued, _ := testIssuer(key).Issue(t0)
	claims := issued.Claims
	claims.ID = "00000000000000000000000000000000"
	token, err := sign(key, claims)
	if err != nil {
		f.Fatal(err)
	}
	c := &Credential{Token: token}
	f.Add(c.Token)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	v := testVerifier(key)
	f.Fuzz(func(t *testing.T, tok string) {
		got, err := v.Verify(tok, t0)
		if err == nil && got.Claims.Issuer != DIDKey(key.Public().(ed25519.PublicKey)) {
			t.Fatalf("accepted a credential from another issuer")
		}
		if err == nil && tok != c.Token {
			// Ed25519 signatures are not malleable: any other accepted
			// token must differ only in an equivalent encoding, which
			// RawURLEncoding rules out.
			t.Fatalf("accepted a token that was never issued: %q", tok)
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	is := testIssuer(rfc8032Key(b))
	for b.Loop() {
		if _, err := is.Issue(t0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	key := rfc8032Key(b)
	c, _ := testIssuer(key).Issue(t0)
	v := testVerifier(key)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(c.Token, t0); err != nil {
			b.Fatal(err)
		}
	}
}
