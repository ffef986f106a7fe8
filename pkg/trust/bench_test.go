package trust

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// BenchmarkApply is the pure model step.
func BenchmarkApply(b *testing.B) {
	m := testModel()
	s := m.Fresh()
	i := 0
	for b.Loop() {
		s = m.Apply(s, Event{Kind: Allowed, Time: t0.Add(time.Duration(i) * time.Second)})
		i++
	}
}

// BenchmarkRecordInTx is the trust update on the call path: read the state,
// apply the event, write it back, inside an open write transaction (the
// audit commit it shares is excluded: the transaction is rolled back).
func BenchmarkRecordInTx(b *testing.B) {
	e := openEnv(b, b.TempDir(), true)
	ctx := context.Background()
	err := e.db.Write(ctx, func(tx *sql.Tx) error {
		i := 0
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := e.store.Record(ctx, tx, e.id.DID(), Event{Kind: Allowed, Time: t0.Add(time.Duration(i) * time.Second)}); err != nil {
				return err
			}
			i++
		}
		b.StopTimer()
		return errRollback
	})
	if err != errRollback {
		b.Fatal(err)
	}
}

var errRollback = sqlRollback{}

type sqlRollback struct{}

func (sqlRollback) Error() string { return "rollback" }
