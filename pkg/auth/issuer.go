package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// issuer is one trusted authorization server: its configuration, its
// metadata (discovered once) and its keys.
type issuer struct {
	cfg       config.AuthIssuer
	audiences []string
	keys      *keySet
	fetch     *fetcher
	now       func() time.Time
	retry     time.Duration

	mu         sync.Mutex
	meta       *metadata
	lastFailed time.Time
	lastErr    error
}

func newIssuer(cfg config.AuthIssuer, resource string, f *fetcher, algs []jose.SignatureAlgorithm, o Options) *issuer {
	is := &issuer{cfg: cfg, audiences: cfg.Audiences, fetch: f, now: o.Now, retry: o.MinRefreshInterval}
	if len(is.audiences) == 0 {
		is.audiences = []string{resource}
	}
	is.keys = &keySet{resolve: is.jwksURI, fetch: f, allowed: algs, now: o.Now,
		minRefresh: o.MinRefreshInterval, maxAge: o.KeysMaxAge}
	return is
}

// metadata returns the issuer's discovered metadata. A success is kept; a
// failure is retried no sooner than the refresh interval.
func (is *issuer) metadata(ctx context.Context) (*metadata, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.meta != nil {
		return is.meta, nil
	}
	if !is.lastFailed.IsZero() && is.now().Sub(is.lastFailed) < is.retry {
		return nil, is.lastErr
	}
	// Not tied to one request: a cancelled request must not count as
	// the issuer failing.
	m, err := is.fetch.discover(context.WithoutCancel(ctx), is.cfg.Issuer)
	if err != nil {
		is.lastFailed, is.lastErr = is.now(), err
		return nil, err
	}
	is.meta = m
	return m, nil
}

func (is *issuer) jwksURI(ctx context.Context) (string, error) {
	if is.cfg.JWKSURI != "" {
		return is.cfg.JWKSURI, nil
	}
	m, err := is.metadata(ctx)
	if err != nil {
		return "", err
	}
	if m.JWKSURI == "" {
		return "", errors.New(is.cfg.Issuer + " publishes no jwks_uri in its metadata")
	}
	return m.JWKSURI, nil
}

func (is *issuer) introspectionURL(ctx context.Context) (string, error) {
	if is.cfg.Introspection.URL != "" {
		return is.cfg.Introspection.URL, nil
	}
	m, err := is.metadata(ctx)
	if err != nil {
		return "", err
	}
	if m.IntrospectionEndpoint == "" {
		return "", errors.New(is.cfg.Issuer + " publishes no introspection_endpoint in its metadata")
	}
	return m.IntrospectionEndpoint, nil
}

// acceptsAudience reports whether any of the token's audiences is one this
// issuer's tokens may carry (RFC 8707: the resource itself by default).
func (is *issuer) acceptsAudience(aud []string) bool {
	for _, a := range aud {
		for _, want := range is.audiences {
			if a == want {
				return true
			}
		}
	}
	return false
}
