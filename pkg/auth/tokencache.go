package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

const (
	// maxCachedTokens bounds the validated-token cache.
	maxCachedTokens = 4096
	// DefaultJWTCacheTTL is how long a verified JWT is reused without
	// checking its signature again (never past its exp): a key removed
	// from the issuer's set stops being honoured within this long.
	DefaultJWTCacheTTL = 5 * time.Minute
)

// tokenCache remembers tokens already validated, keyed by their SHA-256
// (the tokens themselves are not kept), until a deadline no later than
// their expiry. A client sends the same token with every request; the
// signature check is the expensive part, so it is done once. Refusals are
// not cached.
type tokenCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]cachedToken
}

type cachedToken struct {
	who   *caller.Caller
	until time.Time
}

func newTokenCache() *tokenCache {
	return &tokenCache{entries: map[[32]byte]cachedToken{}}
}

func (c *tokenCache) get(token string, now time.Time) *caller.Caller {
	k := sha256.Sum256([]byte(token))
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil
	}
	return e.who
}

func (c *tokenCache) put(token string, who *caller.Caller, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	k := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedTokens {
		for k, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, k)
			}
		}
		// Still full: drop an arbitrary eighth (map order is random), so a
		// burst of distinct valid tokens costs re-validation, not memory.
		for k := range c.entries {
			if len(c.entries) < maxCachedTokens-maxCachedTokens/8 {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[k] = cachedToken{who: who, until: until}
}
