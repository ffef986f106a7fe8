package pgaudit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// A hook's writes commit with its entry; its follow-ups get the seqs right
// after it; a failing hook drops only its own entry and writes, even when
// it shares a transaction with others.
func TestHookCommitsWithItsEntry(t *testing.T) {
	url := pgtest.URL(t)
	s := openStore(t, url, Options{})
	ctx := context.Background()
	if _, err := s.db.Pool.Exec(ctx, `CREATE TABLE hook_writes(seq bigint PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	record := func(fail, followUp bool) Hook {
		return func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
			if _, err := tx.Exec(ctx, `INSERT INTO hook_writes(seq) VALUES ($1)`, int64(e.Seq)); err != nil {
				return nil, err
			}
			if !OnCommit(ctx, func() { committed.Add(1) }) {
				return nil, errors.New("a hook's context does not take OnCommit callbacks")
			}
			score := 700
			e.TrustScore = &score
			e.Seq = 999 // a hook may not move its entry
			if fail {
				return nil, errors.New("hook refused")
			}
			if followUp {
				return []audit.Entry{{Agent: e.Agent, Action: audit.ActionTrustChanged, Reason: "follow-up"}}, nil
			}
			return nil, nil
		}
	}
	// Many appends at once so that they share transactions; every third
	// hook fails, every fifth returns a follow-up.
	const n = 60
	type outcome struct {
		e   audit.Entry
		err error
	}
	out := make([]outcome, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := s.Append(ctx, call("hook", i), record(i%3 == 0, i%5 == 0))
			out[i] = outcome{e, err}
		}()
	}
	wg.Wait()
	acked := map[int64]string{}
	followUps := 0
	for i, o := range out {
		if i%3 == 0 {
			if o.err == nil {
				t.Fatalf("append %d: its hook failed, but the entry was acknowledged at seq %d", i, o.e.Seq)
			}
			continue
		}
		if o.err != nil {
			t.Fatalf("append %d: %v", i, o.err)
		}
		if o.e.TrustScore == nil || *o.e.TrustScore != 700 {
			t.Fatalf("append %d: the hook's change to the entry was lost: trust score %v", i, o.e.TrustScore)
		}
		acked[int64(o.e.Seq)] = digest(o.e)
		if i%5 == 0 {
			followUps++
			b, err := Entry(ctx, s.db, int64(o.e.Seq)+1)
			if err != nil {
				t.Fatalf("follow-up of seq %d: %v", o.e.Seq, err)
			}
			f, err := audit.Unmarshal(b)
			if err != nil || f.Action != audit.ActionTrustChanged || f.Timestamp != o.e.Timestamp {
				t.Fatalf("seq %d after append %d is %+v (%v), want its follow-up with its timestamp", o.e.Seq+1, i, f, err)
			}
		}
	}
	want := int64(len(acked) + followUps)
	checkLog(t, s, acked, want)
	var writes int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM hook_writes`).Scan(&writes); err != nil {
		t.Fatal(err)
	}
	if n := committed.Load(); n != int64(len(acked)) {
		t.Fatalf("OnCommit callbacks ran %d times, want %d (once per committed entry, never for a failed hook)", n, len(acked))
	}
	if writes != int64(len(acked)) {
		t.Fatalf("%d hook writes committed, want %d (one per acknowledged entry; failed hooks roll theirs back)", writes, len(acked))
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT seq FROM hook_writes`)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range seqs {
		if _, ok := acked[seq]; !ok {
			t.Fatalf("hook write for seq %d, which is not an acknowledged entry", seq)
		}
	}
}
