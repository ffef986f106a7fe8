package ratelimit_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/ratelimit/ratelimittest"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// TestCounterSuite: the in-memory and SQLite counters behave alike
// (ratelimittest, which the PostgreSQL counter runs too).
func TestCounterSuite(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		ratelimittest.Run(t, func(*testing.T) ratelimit.Counter { return ratelimit.NewMemory() })
	})
	t.Run("sqlite", func(t *testing.T) {
		ratelimittest.Run(t, func(t *testing.T) ratelimit.Counter {
			db, err := state.OpenDB(context.Background(), filepath.Join(t.TempDir(), "state.db"), state.SyncNormal)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return ratelimit.NewSQLite(db)
		})
	})
}
