package pgtrust

import (
	"context"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// BenchmarkGet is the trust read of every call: one query.
func BenchmarkGet(b *testing.B) {
	s := open(b, pgtest.URL(b))
	record(b, s, "key:ci", trust.Event{Kind: trust.Allowed, Time: t0})
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Get(ctx, "key:ci"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecord is a call's trust update in a transaction of its own
// (in serve it shares the audit append's).
func BenchmarkRecord(b *testing.B) {
	s := open(b, pgtest.URL(b))
	b.ResetTimer()
	for range b.N {
		record(b, s, "key:ci", trust.Event{Kind: trust.Allowed, Time: t0})
	}
}
