package apikey

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// BenchmarkLookup is a valid key's Lookup (last_used already current, so
// no write):
//
//   - warm: the cache holds the key and nothing was committed since;
//   - cold: the cache misses (as after any commit, which in a busy serve
//     means every call): the change token, one indexed read, the hash;
//   - uncached: no cache (Store.Cache nil): one indexed read, the hash.
func BenchmarkLookup(b *testing.B) {
	for _, mode := range []string{"warm", "cold", "uncached"} {
		b.Run(mode, func(b *testing.B) {
			e := newEnv(b, filepath.Join(b.TempDir(), "state"), mode != "uncached")
			ctx := context.Background()
			var key string
			for _, name := range []string{"a", "b", "c", "d", "svc"} {
				key, _ = mustCreate(b, e.store, name, []string{"mcp:read", "mcp:write"}, t0.AddDate(1, 0, 0))
			}
			if _, err := e.store.Lookup(ctx, key); err != nil { // last_used
				b.Fatal(err)
			}
			e.store.lookup.writes.Wait()
			for b.Loop() {
				if mode == "cold" {
					e.store.Cache.invalidate()
				}
				if _, err := e.store.Lookup(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// invalidate makes the cache miss as a commit elsewhere would.
func (c *Cache) invalidate() {
	c.mu.Lock()
	c.token = state.ChangeToken{}
	c.mu.Unlock()
}
