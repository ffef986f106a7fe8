package pglimit

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// BenchmarkAdmit is one call's rate-limit step (one "100/minute" rule, the
// call admitted), on PostgreSQL and, beside it, on SQLite with the
// synchronous setting serve uses by default (FULL). "parallel" runs
// GOMAXPROCS×4 callers, each its own key, as a busy replica's callers do.
func BenchmarkAdmit(b *testing.B) {
	counters := map[string]func(b *testing.B) ratelimit.Counter{
		"postgres": func(b *testing.B) ratelimit.Counter { return New(open(b, pgtest.URL(b))) },
		"sqlite": func(b *testing.B) ratelimit.Counter {
			db, err := state.OpenDB(context.Background(), filepath.Join(b.TempDir(), "state.db"), state.SyncFull)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			return ratelimit.NewSQLite(db)
		},
	}
	for _, name := range []string{"sqlite", "postgres"} {
		b.Run(name+"/serial", func(b *testing.B) {
			c := counters[name](b)
			chk := Check{Key: Key{Policy: "p", Rule: "r", Agent: "a"}, Window: Window{Limit: 100, Per: time.Minute, Unit: "minute"}}
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if err := c.Admit(ctx, t0.Add(time.Duration(i)*time.Second), []Check{chk}, func([]int) bool { return true }); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/parallel", func(b *testing.B) {
			c := counters[name](b)
			ctx := context.Background()
			var next atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				chk := Check{Key: Key{Policy: "p", Rule: "r", Agent: "a" + strconv.FormatInt(next.Add(1), 10)}, Window: Window{Limit: 100, Per: time.Minute, Unit: "minute"}}
				for i := 0; pb.Next(); i++ {
					if err := c.Admit(ctx, t0.Add(time.Duration(i)*time.Second), []Check{chk}, func([]int) bool { return true }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
