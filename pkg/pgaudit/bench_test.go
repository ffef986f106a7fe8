package pgaudit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/internal/latency"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// BenchmarkAppendPG: durable appends (synchronous_commit=on) by one
// appender, each its own commit, and by 8 concurrent appenders sharing
// commits (group commit); compare pkg/auditlog's BenchmarkAppendDurable
// and BenchmarkAppendConcurrent16 on SQLite.
func BenchmarkAppendPG(b *testing.B) {
	b.Run("sequential", func(b *testing.B) { benchAppend(b, 1) })
	b.Run("concurrent8", func(b *testing.B) { benchAppend(b, 8) })
}

func benchAppend(b *testing.B, appenders int) {
	s := openStore(b, pgtest.URL(b), Options{})
	before := s.Stats()
	var next atomic.Int64
	n := int64(b.N)
	b.ResetTimer()
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := s.Append(context.Background(), call("bench", int(i)), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	st := s.Stats()
	if c := st.Commits - before.Commits; c > 0 {
		b.ReportMetric(float64(st.Entries-before.Entries)/float64(c), "entries/commit")
	}
}

// BenchmarkAppendLatency has the shape of pkg/auditlog's
// BenchmarkAppendLatency, so the two backends compare line by line: 1 and
// 16 concurrent appenders in one process, each append waiting for its
// commit (synchronous_commit=on). ns/op is wall time per entry, p50-µs and
// p99-µs what one append waits, entries/commit the group commit's batch.
func BenchmarkAppendLatency(b *testing.B) {
	for _, appenders := range []int{1, 16} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := openStore(b, pgtest.URL(b), Options{})
			before := s.Stats()
			latency.Concurrent(b, appenders, func(i int) error {
				_, err := s.Append(context.Background(), call("bench", i), nil)
				return err
			})
			st := s.Stats()
			if c := st.Commits - before.Commits; c > 0 {
				b.ReportMetric(float64(st.Entries-before.Entries)/float64(c), "entries/commit")
			}
		})
	}
}
