package identity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/scope"
)

// Credentials are short-lived JSON Web Tokens (RFC 7519) in JWS compact
// serialization (RFC 7515), signed with EdDSA/Ed25519 (RFC 8037).
//
// Who issues them: a dedicated authority key (keys/authority.pem), not the
// identity key. The identity key signs audit checkpoints and key hand-overs
// and is what the DID names; the authority decides what the server may do.
// Keeping them apart means rotating the identity key does not invalidate
// credentials, the verifier pins one issuer key that never signs anything
// else (so no other signed object can be replayed as a credential), and the
// authority can later move off the serving host (an operator's machine, a
// KMS) without changing the format: `serve` then only needs the public key.

// Verification errors: each rejection has its own sentinel so callers and
// audit entries can say exactly why a credential was refused.
var (
	ErrMalformed       = errors.New("credential is malformed")
	ErrAlgorithm       = errors.New("credential algorithm is not EdDSA")
	ErrUnknownIssuer   = errors.New("credential was signed by an unknown key")
	ErrSignature       = errors.New("credential signature is invalid")
	ErrExpired         = errors.New("credential has expired")
	ErrNotYetValid     = errors.New("credential is not yet valid")
	ErrLifetimeTooLong = errors.New("credential lifetime exceeds the allowed maximum")
	ErrAudience        = errors.New("credential audience does not match")
	ErrNoCredential    = errors.New("no credential")
)

// MaxClockSkew is the most clock difference a verifier tolerates.
const MaxClockSkew = 60 * time.Second

// maxTokenLen bounds the work done on untrusted input.
const maxTokenLen = 16 << 10

// Claims is the credential payload.
type Claims struct {
	Issuer    string        `json:"iss"`
	Subject   string        `json:"sub"`
	Audience  string        `json:"aud"`
	IssuedAt  int64         `json:"iat"`
	NotBefore int64         `json:"nbf"`
	Expires   int64         `json:"exp"`
	ID        string        `json:"jti"`
	Sponsor   string        `json:"sponsor,omitempty"`
	Scopes    []scope.Grant `json:"scopes"`
}

// Lifetime is exp - iat.
func (c Claims) Lifetime() time.Duration { return time.Duration(c.Expires-c.IssuedAt) * time.Second }

// ExpiresAt returns exp as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0).UTC() }

// IssuedAtTime returns iat as a time.
func (c Claims) IssuedAtTime() time.Time { return time.Unix(c.IssuedAt, 0).UTC() }

// Credential is a verified (or freshly issued) credential.
type Credential struct {
	Token  string
	Claims Claims
	Scopes scope.Set
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// ScopeTemplate is a configured capability scope to grant.
type ScopeTemplate struct {
	Resources []string
	Actions   []string
	TTL       time.Duration
}

// Issuer mints credentials.
type Issuer struct {
	Authority ed25519.PrivateKey
	Subject   string // did:agentmesh:NAME
	Sponsor   string
	Audience  string // defaults to Subject
	TTL       time.Duration
	Scopes    []ScopeTemplate
}

// NewIssuer returns the issuer for an identity.
func NewIssuer(id *Identity, ttl time.Duration, audience string, scopes []ScopeTemplate) *Issuer {
	return &Issuer{Authority: id.Authority, Subject: id.DID(), Sponsor: id.Doc.Sponsor, Audience: audience, TTL: ttl, Scopes: scopes}
}

// Grants reports whether c grants exactly the scopes (resources and
// actions, in order) this issuer grants, whatever their expiries: a
// credential issued before the configuration changed does not.
func (is *Issuer) Grants(c *Credential) bool {
	if len(c.Claims.Scopes) != len(is.Scopes) {
		return false
	}
	for i, t := range is.Scopes {
		g := c.Claims.Scopes[i]
		if !slices.Equal(g.Resources, t.Resources) || !slices.Equal(g.Actions, t.Actions) {
			return false
		}
	}
	return true
}

// Issue mints a credential valid from now for the issuer's TTL. Each scope
// expires at issue time plus its own TTL, never after the credential.
func (is *Issuer) Issue(now time.Time) (*Credential, error) {
	if is.TTL <= 0 {
		return nil, fmt.Errorf("issuing a credential: TTL must be positive")
	}
	iat := now.Unix()
	exp := now.Add(is.TTL).Unix()
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return nil, err
	}
	c := Claims{
		Issuer:    DIDKey(is.Authority.Public().(ed25519.PublicKey)),
		Subject:   is.Subject,
		Audience:  is.Audience,
		IssuedAt:  iat,
		NotBefore: iat,
		Expires:   exp,
		ID:        hex.EncodeToString(jti[:]),
		Sponsor:   is.Sponsor,
		Scopes:    []scope.Grant{},
	}
	if c.Audience == "" {
		c.Audience = is.Subject
	}
	for _, t := range is.Scopes {
		sexp := min(now.Add(t.TTL).Unix(), exp)
		g := scope.Grant{Resources: t.Resources, Actions: t.Actions, Expires: sexp}
		if _, err := g.Parse(); err != nil {
			return nil, fmt.Errorf("issuing a credential: %w", err)
		}
		c.Scopes = append(c.Scopes, g)
	}
	token, err := sign(is.Authority, c)
	if err != nil {
		return nil, err
	}
	set, err := parseGrants(c)
	if err != nil {
		return nil, err
	}
	return &Credential{Token: token, Claims: c, Scopes: set}, nil
}

func sign(key ed25519.PrivateKey, c Claims) (string, error) {
	h, err := json.Marshal(header{Alg: "EdDSA", Kid: c.Issuer, Typ: "JWT"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	sig := ed25519.Sign(key, []byte(signing))
	return signing + "." + enc.EncodeToString(sig), nil
}

// Verifier checks credentials.
type Verifier struct {
	// Authority is the only key credentials may be signed with.
	Authority ed25519.PublicKey
	// Audience is the expected aud claim.
	Audience string
	// MaxTTL rejects credentials claiming a longer lifetime.
	MaxTTL time.Duration
	// Skew is the tolerated clock difference, at most MaxClockSkew.
	Skew time.Duration

	authorityDID string // DIDKey(Authority), computed once
}

func (v *Verifier) authority() string {
	if v.authorityDID == "" {
		v.authorityDID = DIDKey(v.Authority)
	}
	return v.authorityDID
}

// Verify parses and checks a credential at time now. The algorithm is
// pinned to EdDSA and the key to the authority: the header's alg and kid are
// checked, never trusted to choose how to verify.
func (v *Verifier) Verify(token string, now time.Time) (*Credential, error) {
	if len(token) > maxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxTokenLen)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want three dot-separated parts, got %d", ErrMalformed, len(parts))
	}
	enc := base64.RawURLEncoding
	hb, err := enc.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %v", ErrMalformed, err)
	}
	var h header
	if err := strictJSON(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if h.Alg != "EdDSA" {
		return nil, fmt.Errorf("%w: header says %q", ErrAlgorithm, h.Alg)
	}
	authority := v.authority()
	if h.Kid != authority {
		return nil, fmt.Errorf("%w: %s (trusted authority: %s)", ErrUnknownIssuer, h.Kid, authority)
	}
	sig, err := enc.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is not a base64url Ed25519 signature", ErrMalformed)
	}
	if !ed25519.Verify(v.Authority, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, ErrSignature
	}
	pb, err := enc.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload is not base64url: %v", ErrMalformed, err)
	}
	var c Claims
	if err := strictJSON(pb, &c); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if c.Issuer != authority {
		return nil, fmt.Errorf("%w: iss %s", ErrUnknownIssuer, c.Issuer)
	}
	if err := v.checkTimes(c, now); err != nil {
		return nil, err
	}
	if c.Audience != v.Audience {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrAudience, c.Audience, v.Audience)
	}
	set, err := parseGrants(c)
	if err != nil {
		return nil, err
	}
	return &Credential{Token: token, Claims: c, Scopes: set}, nil
}

func (v *Verifier) checkTimes(c Claims, now time.Time) error {
	skew := min(max(v.Skew, 0), MaxClockSkew)
	if c.Expires <= c.IssuedAt || c.NotBefore < c.IssuedAt || c.NotBefore >= c.Expires {
		return fmt.Errorf("%w: inconsistent times (iat %d, nbf %d, exp %d)", ErrMalformed, c.IssuedAt, c.NotBefore, c.Expires)
	}
	if v.MaxTTL > 0 && c.Lifetime() > v.MaxTTL {
		return fmt.Errorf("%w: %s claimed, at most %s allowed", ErrLifetimeTooLong, c.Lifetime(), v.MaxTTL)
	}
	n := now.Unix()
	s := int64(skew / time.Second)
	if n+s < c.NotBefore || n+s < c.IssuedAt {
		return fmt.Errorf("%w: valid from %s", ErrNotYetValid, time.Unix(c.NotBefore, 0).UTC().Format(time.RFC3339))
	}
	if n-s >= c.Expires {
		return fmt.Errorf("%w at %s", ErrExpired, c.ExpiresAt().Format(time.RFC3339))
	}
	return nil
}

// parseGrants turns the claims' grants into scopes. A scope may not outlive
// its credential: the credential's expiry bounds every grant.
func parseGrants(c Claims) (scope.Set, error) {
	set := make(scope.Set, 0, len(c.Scopes))
	for i, g := range c.Scopes {
		if g.Expires > c.Expires {
			return nil, fmt.Errorf("%w: scope %d expires after the credential", ErrMalformed, i+1)
		}
		s, err := g.Parse()
		if err != nil {
			return nil, fmt.Errorf("%w: scope %d: %v", ErrMalformed, i+1, err)
		}
		set = append(set, s)
	}
	return set, nil
}

// strictJSON decodes exactly one JSON object with no unknown fields.
func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}
