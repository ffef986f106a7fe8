// Package pgtrust keeps trust states (pkg/trust) in a PostgreSQL state
// database (pkg/pgstate), shared by a fleet of replicas. The model is
// pkg/trust's (trust.Model applies events, trust.Model.Stamp stamps audit
// entries); only the storage is here.
//
// As with SQLite, an event is recorded inside the transaction that appends
// its audit entry (Record takes that pgx.Tx; Hook is shaped for it), so an
// entry's trust_score is the score after its call and neither commits
// without the other. Record locks the subject's row (SELECT ... FOR
// UPDATE), so replicas recording events for one subject at once apply
// each of them, in some order, and none is lost.
//
// A revocation or a reset also bumps the subject's change version
// (pkg/pgnotify) in the same transaction, so every replica hears of it
// when it commits.
package pgtrust

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgnotify"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Store keeps trust states in table trust_state (migration 4).
type Store struct {
	DB    *pgstate.DB
	Model trust.Model
	// Now is the clock for reads; time.Now when nil.
	Now func() time.Time
	// Metrics, when set, count revocations.
	Metrics *metrics.Metrics
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Store) load(ctx context.Context, q queryRower, subject, query string) (trust.State, error) {
	var raw []byte
	err := q.QueryRow(ctx, query, subject).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return s.Model.Fresh(), nil
	}
	if err != nil {
		return trust.State{}, fmt.Errorf("reading the trust state of %s: %w", subject, err)
	}
	var st trust.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return trust.State{}, fmt.Errorf("the trust state of %s is damaged: %w", subject, err)
	}
	return st, nil
}

// Get returns a subject's state as of now (recovery credited, not stored).
// It reads the database every time: a revocation by any replica is seen
// on the next call.
func (s *Store) Get(ctx context.Context, subject string) (trust.State, error) {
	st, err := s.load(ctx, s.DB.Pool, subject, `SELECT state FROM trust_state WHERE subject = $1`)
	if err != nil {
		return trust.State{}, err
	}
	return s.Model.At(st, s.now()), nil
}

// Record applies ev to subject's state inside tx (read committed, as
// pgstate.DB.Write begins) and stores the result. The subject's row stays
// locked until tx ends.
func (s *Store) Record(ctx context.Context, tx pgx.Tx, subject string, ev trust.Event) (before, after trust.State, err error) {
	// A subject without a row gets a fresh one first, so that there is a
	// row to lock even when two replicas see it for the first time at once.
	fresh, err := json.Marshal(s.Model.Fresh())
	if err != nil {
		return trust.State{}, trust.State{}, err
	}
	// One round trip: insert a fresh row or, when there is one, lock it
	// (ON CONFLICT DO UPDATE locks the row as FOR UPDATE would) and return
	// its state as committed by whoever held the lock before.
	var raw []byte
	err = tx.QueryRow(ctx, `INSERT INTO trust_state(subject, state) VALUES ($1, $2)
		ON CONFLICT (subject) DO UPDATE SET subject = excluded.subject RETURNING state`, subject, fresh).Scan(&raw)
	if err != nil {
		return trust.State{}, trust.State{}, fmt.Errorf("reading the trust state of %s: %w", subject, err)
	}
	if err := json.Unmarshal(raw, &before); err != nil {
		return trust.State{}, trust.State{}, fmt.Errorf("the trust state of %s is damaged: %w", subject, err)
	}
	before = s.Model.At(before, ev.Time)
	after = s.Model.Apply(before, ev)
	if raw, err = json.Marshal(after); err != nil {
		return trust.State{}, trust.State{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE trust_state SET state = $2 WHERE subject = $1`, subject, raw); err != nil {
		return trust.State{}, trust.State{}, fmt.Errorf("storing the trust state of %s: %w", subject, err)
	}
	if ev.Kind == trust.Reset || after.Revoked != before.Revoked {
		if _, err := pgnotify.Bump(ctx, tx, pgnotify.Trust, subject); err != nil {
			return trust.State{}, trust.State{}, err
		}
	}
	return before, after, nil
}

// Hook returns the audit hook that records ev for the entry's Subject and
// stamps the entry (trust.Model.Stamp), as trust.Store.Hook does.
func (s *Store) Hook(ev trust.Event) pgaudit.Hook {
	return func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
		ev.Time = e.Timestamp
		before, after, err := s.Record(ctx, tx, trust.Subject(e), ev)
		if err != nil {
			return nil, err
		}
		if after.Revoked && !before.Revoked && s.Metrics != nil {
			pgaudit.OnCommit(ctx, s.Metrics.Revoked)
		}
		return s.Model.Stamp(e, ev, before, after)
	}
}

// Subjects lists every subject with a stored trust state, sorted.
func (s *Store) Subjects(ctx context.Context) ([]string, error) {
	rows, err := s.DB.Pool.Query(ctx, `SELECT subject FROM trust_state ORDER BY subject`)
	if err != nil {
		return nil, fmt.Errorf("listing trust states: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing trust states: %w", err)
	}
	return out, nil
}
