package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/internal/latency"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// BenchmarkAppendDurable: one appender, each append its own durable commit
// (synchronous=FULL).
func BenchmarkAppendDurable(b *testing.B) {
	f := newFixture(b, b.TempDir())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendNormal: one appender, each append its own commit with
// synchronous=NORMAL (no fsync): the commit path's own cost.
func BenchmarkAppendNormal(b *testing.B) {
	f := newFixture(b, b.TempDir())
	f.log.Close()
	f.db.Close()
	db, err := f.dir.OpenDB(context.Background(), state.SyncNormal)
	if err != nil {
		b.Fatal(err)
	}
	f.db = db
	f.log, err = Open(context.Background(), db, f.id, Options{WitnessDir: f.witness})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendConcurrent16: 16 appenders in one process share commits
// (group commit).
func BenchmarkAppendConcurrent16(b *testing.B) {
	f := newFixture(b, b.TempDir())
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 goroutines here
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkAppendLatency has the shape of pkg/pgaudit's
// BenchmarkAppendLatency, so the two backends compare line by line: 1 and
// 16 concurrent appenders in one process, each append waiting for its
// durable commit (synchronous=FULL, witness written as serve does).
// ns/op is wall time per entry, p50-µs and p99-µs what one append waits,
// entries/commit the group commit's batch (every commit stores one row of
// the checkpoint history).
func BenchmarkAppendLatency(b *testing.B) {
	for _, appenders := range []int{1, 16} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			f := newFixture(b, b.TempDir())
			entries0, commits0 := f.counts(b)
			latency.Concurrent(b, appenders, func(i int) error {
				_, err := f.log.Append(context.Background(), call(i), nil)
				return err
			})
			entries, commits := f.counts(b)
			if c := commits - commits0; c > 0 {
				b.ReportMetric(float64(entries-entries0)/float64(c), "entries/commit")
			}
		})
	}
}

// counts are the log's entries and stored checkpoints (one per commit).
func (f *fixture) counts(b *testing.B) (entries, commits int64) {
	b.Helper()
	err := f.db.Reader().QueryRowContext(context.Background(),
		`SELECT (SELECT count(*) FROM audit_entries), (SELECT count(*) FROM audit_checkpoints)`).Scan(&entries, &commits)
	if err != nil {
		b.Fatal(err)
	}
	return entries, commits
}

// bulkLog fills a fresh fixture's log with n entries in large
// transactions, computing the stored hashes with a Frontier and signing
// every 4096th size and the last (as the checkpoint history would hold),
// then reopens it: the writer's open check passes on it.
func bulkLog(b testing.TB, n int64) *fixture {
	b.Helper()
	f := newFixture(b, b.TempDir())
	f.log.Close()
	signer, _ := audit.NewSigner(f.log.Origin(), f.id.Key)
	var tree audit.Frontier
	ctx := context.Background()
	var last []byte
	for start := int64(0); start < n; start += 50_000 {
		err := f.db.Write(ctx, func(tx *sql.Tx) error {
			for i := start; i < min(start+50_000, n); i++ {
				e := call(int(i))
				e.Seq = uint64(i)
				raw, err := audit.Marshal(e)
				if err != nil {
					return err
				}
				base := tlog.StoredHashIndex(0, i)
				for j, h := range tree.Append(audit.LeafHash(raw), nil) {
					if _, err := tx.Exec(insertHashQuery, base+int64(j), h[:]); err != nil {
						return err
					}
				}
				if _, err := tx.Exec(insertEntryQuery, i, raw, audit.FormatTimestamp(e.Timestamp), e.Agent, string(e.Action), e.Tool, string(e.Result)); err != nil {
					return err
				}
				if size := i + 1; size%4096 == 0 || size == n {
					last, err = audit.SignCheckpoint(audit.Checkpoint{Origin: f.log.Origin(), Size: size, Root: tree.Root(), Time: t0}, signer)
					if err != nil {
						return err
					}
					if _, err := tx.Exec(historyQuery, size, last); err != nil {
						return err
					}
				}
			}
			_, err := tx.Exec(checkpointQuery, tree.Size(), last)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := os.MkdirAll(f.witness, 0o700); err != nil {
		b.Fatal(err)
	}
	os.WriteFile(witnessPath(f.witness, f.log.Origin()), last, 0o600)
	l, err := Open(ctx, f.db, f.id, Options{WitnessDir: f.witness})
	if err != nil {
		b.Fatal(err)
	}
	f.log = l
	return f
}

// BenchmarkCatchUp is the writer's check before each commit, on logs of
// growing size (it must stay O(log n)):
//   - quiet: nothing else committed since the writer's own last commit
//     (the change token it left is unchanged);
//   - rechecked: another process committed something else, so the stored
//     tree's right edge is read back and compared with the frontier;
//   - extended: another process appended one entry, so the new signed
//     checkpoint is authenticated and a consistency proof from the
//     writer's own root is checked before the frontier moves.
func BenchmarkCatchUp(b *testing.B) {
	for _, n := range []int64{1 << 10, 1 << 15, 1 << 20} {
		f := bulkLog(b, n-1)
		prev := *f.log.tree
		if _, err := f.log.Append(context.Background(), call(int(n)), nil); err != nil {
			b.Fatal(err)
		}
		grown := *f.log.tree
		for _, mode := range []string{"quiet", "rechecked", "extended"} {
			b.Run(fmt.Sprintf("%s/n=%d", mode, n), func(b *testing.B) {
				rollback := errors.New("rolled back")
				err := f.db.Write(context.Background(), func(tx *sql.Tx) error {
					*f.log.tree = grown
					if err := f.log.catchUp(context.Background(), tx); err != nil {
						return err
					}
					for b.Loop() {
						switch mode {
						case "rechecked":
							f.log.tree.dataVersion, f.log.tree.tokenValid = -1, false
						case "extended":
							*f.log.tree = prev
							f.log.tree.f = prev.f.Clone()
							f.log.tree.dataVersion, f.log.tree.tokenValid = -1, false
						}
						if err := f.log.catchUp(context.Background(), tx); err != nil {
							return err
						}
					}
					return rollback
				})
				if err != rollback {
					b.Fatal(err)
				}
				if f.log.tree.f.Size() != n {
					b.Fatalf("frontier at %d after catching up, want %d", f.log.tree.f.Size(), n)
				}
			})
		}
		f.close()
	}
}
