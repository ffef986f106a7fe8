package pgtoolpin

import (
	"context"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
)

// BenchmarkApproved is the pin check of every upstream call: one query.
func BenchmarkApproved(b *testing.B) {
	s := open(b, pgtest.URL(b))
	d := def(b, "read", "Reads a file.")
	observe(b, s, toolpin.Strict, seen(d))
	ctx := context.Background()
	for b.Loop() {
		if ok, err := s.Approved(ctx, "up", "read", d.Hash()); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
