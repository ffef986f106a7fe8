package pgapikey

import (
	"context"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// BenchmarkLookup is a valid key's Lookup (last_used already current, so
// no write): one indexed read and the hash, as apikey's "uncached" case.
func BenchmarkLookup(b *testing.B) {
	now := t0
	s := open(b, pgtest.URL(b), &now)
	var key string
	for _, name := range []string{"a", "b", "c", "d", "svc"} {
		key, _, _ = create(b, s, name, []string{"mcp:read", "mcp:write"}, t0.AddDate(1, 0, 0))
	}
	ctx := context.Background()
	if _, err := s.Lookup(ctx, key); err != nil {
		b.Fatal(err)
	}
	s.Close()
	now = t0.Add(time.Second)
	for b.Loop() {
		if _, err := s.Lookup(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}
