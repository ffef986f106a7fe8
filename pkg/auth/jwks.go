package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// maxJWKSKeys: a key set with more keys is refused whole.
	maxJWKSKeys = 64
	// minRSABits: smaller RSA keys in a key set are ignored.
	minRSABits = 2048
	// DefaultMinRefreshInterval is the least time between two fetches of
	// one issuer's key set: a flood of tokens with unknown key ids costs
	// the authorization server at most one request per interval.
	DefaultMinRefreshInterval = 15 * time.Second
	// DefaultKeysMaxAge: an older key set is refreshed in the background
	// on its next use, so removed keys stop being accepted.
	DefaultKeysMaxAge = 15 * time.Minute
)

// verifyKey is one usable public key of a key set.
type verifyKey struct {
	kid string
	alg string // the key's "alg", or "" (any compatible algorithm)
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

type keySnapshot struct {
	byKID   map[string][]verifyKey
	all     []verifyKey
	fetched time.Time
}

// keySet is one issuer's JWKS (RFC 7517 §5), cached. Lookups read a
// snapshot without locking; fetches are single-flight and rate limited
// (at most one per minRefresh, whatever asks for it).
type keySet struct {
	resolve    func(context.Context) (string, error) // the jwks_uri
	fetch      *fetcher
	allowed    []jose.SignatureAlgorithm
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration

	cur atomic.Pointer[keySnapshot]

	mu          sync.Mutex
	lastAttempt time.Time
	lastErr     error
	inflight    chan struct{}
}

// errNoKeys: no key set could be obtained yet.
var errNoKeys = errors.New("the issuer's signing keys could not be fetched")

// lookup returns the keys that may have signed a token with this kid and
// alg. An unknown kid triggers a refresh (rate limited) and a second look.
func (s *keySet) lookup(ctx context.Context, kid, alg string) ([]verifyKey, error) {
	if snap := s.cur.Load(); snap != nil {
		if s.now().Sub(snap.fetched) > s.maxAge {
			s.refreshInBackground()
		}
		if ks := snap.find(kid, alg); len(ks) > 0 {
			return ks, nil
		}
	}
	snap, err := s.refresh(ctx)
	if snap == nil {
		if err == nil {
			err = errNoKeys
		}
		return nil, err
	}
	return snap.find(kid, alg), nil
}

func (snap *keySnapshot) find(kid, alg string) []verifyKey {
	cands := snap.all
	if kid != "" {
		cands = snap.byKID[kid]
	}
	var out []verifyKey
	for _, k := range cands {
		if (k.alg == "" || k.alg == alg) && keyFitsAlg(k.key, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keyFitsAlg: the key's type (and curve) is the one the algorithm needs
// (RFC 7518 §3, RFC 8037 §3.1). go-jose checks this too; checking first
// means a mismatched key is never even tried.
func keyFitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return k.Curve == elliptic.P256()
		case "ES384":
			return k.Curve == elliptic.P384()
		case "ES512":
			return k.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// begin starts a fetch unless one is running or the last began less than
// minRefresh ago. It returns the channel closed when the running or new
// fetch ends, and whether the caller must run the fetch.
func (s *keySet) begin() (done chan struct{}, mine bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight != nil {
		return s.inflight, false
	}
	now := s.now()
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minRefresh {
		return nil, false
	}
	s.lastAttempt = now
	s.inflight = make(chan struct{})
	return s.inflight, true
}

func (s *keySet) end(snap *keySnapshot, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.cur.Store(snap)
	}
	s.lastErr = err
	close(s.inflight)
	s.inflight = nil
}

// refresh fetches the key set now if allowed, or waits for the fetch
// already running, and returns the current snapshot. The fetch is not
// tied to ctx: other requests may be waiting on it.
func (s *keySet) refresh(ctx context.Context) (*keySnapshot, error) {
	done, mine := s.begin()
	switch {
	case mine:
		snap, err := s.load(context.WithoutCancel(ctx))
		s.end(snap, err)
	case done != nil:
		select {
		case <-done:
		case <-ctx.Done():
			return s.cur.Load(), ctx.Err()
		}
	}
	s.mu.Lock()
	err := s.lastErr
	s.mu.Unlock()
	return s.cur.Load(), err
}

func (s *keySet) refreshInBackground() {
	if _, mine := s.begin(); mine {
		go func() {
			snap, err := s.load(context.Background())
			s.end(snap, err)
		}()
	}
}

// load fetches and parses the key set.
func (s *keySet) load(ctx context.Context) (*keySnapshot, error) {
	uri, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := s.fetch.getJSON(ctx, uri, maxJWKSBytes, &raw); err != nil {
		return nil, err
	}
	snap, err := parseKeySet(raw.Keys, s.allowed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", uri, err)
	}
	snap.fetched = s.now()
	return snap, nil
}

// parseKeySet keeps the keys a resource server may verify with: public
// signature keys of an allowed algorithm's type. A key it cannot parse
// (a kty this library does not know) is skipped, not fatal, so one new
// key type at the issuer does not lock every token out. Symmetric keys
// are never kept: HMAC is not accepted, whatever a key set says.
func parseKeySet(raw []json.RawMessage, allowed []jose.SignatureAlgorithm) (*keySnapshot, error) {
	if len(raw) > maxJWKSKeys {
		return nil, fmt.Errorf("the key set has %d keys, more than %d", len(raw), maxJWKSKeys)
	}
	snap := &keySnapshot{byKID: map[string][]verifyKey{}}
	for _, r := range raw {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			k = k.Public() // a private key published by mistake: use its public half
		}
		if !k.Valid() {
			continue
		}
		if k.Algorithm != "" && !algAllowed(allowed, k.Algorithm) {
			continue
		}
		switch pk := k.Key.(type) {
		case *rsa.PublicKey:
			if pk.N.BitLen() < minRSABits {
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default: // []byte (oct), or anything new
			continue
		}
		vk := verifyKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key}
		snap.all = append(snap.all, vk)
		snap.byKID[vk.kid] = append(snap.byKID[vk.kid], vk)
	}
	if len(snap.all) == 0 {
		return nil, errors.New("the key set has no usable signature key")
	}
	return snap, nil
}

func algAllowed(allowed []jose.SignatureAlgorithm, alg string) bool {
	for _, a := range allowed {
		if string(a) == alg {
			return true
		}
	}
	return false
}
