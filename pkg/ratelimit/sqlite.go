package ratelimit

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// SQLite is a Counter in the state database (table rate_limit_calls,
// migration 3), shared by every process using the state directory and kept
// across restarts.
//
// Each Admit is one BEGIN IMMEDIATE transaction: the count, the caller's
// decision and the record happen under SQLite's write lock, so processes
// racing for the last slot of a window are serialised and exactly Limit
// calls get through.
type SQLite struct {
	db *state.DB
	// nextSweep is when (Unix nanoseconds) Admit next deletes rows older
	// than MaxWindow for keys nobody uses any more.
	nextSweep atomic.Int64
}

// sweepEvery spaces out the table-wide sweep of dead keys.
const sweepEvery = 10 * time.Minute

// NewSQLite returns a Counter over db.
func NewSQLite(db *state.DB) *SQLite {
	return &SQLite{db: db}
}

// Admit implements Counter in its own write transaction.
func (s *SQLite) Admit(ctx context.Context, now time.Time, checks []Check, decide func(used []int) bool) error {
	if len(checks) == 0 {
		decide(nil)
		return nil
	}
	return s.db.Write(ctx, func(tx *sql.Tx) error {
		return s.AdmitTx(ctx, tx, now, checks, decide)
	})
}

// AdmitTx is Admit inside a write transaction the caller already holds
// (state.DB.Write), so that a caller can commit the counters together with
// other state, such as the audit entry of the same call.
func (s *SQLite) AdmitTx(ctx context.Context, tx *sql.Tx, now time.Time, checks []Check, decide func(used []int) bool) error {
	used := make([]int, len(checks))
	for i, c := range checks {
		// Expired rows of this key go first, so the count is of live rows.
		if _, err := tx.ExecContext(ctx, `DELETE FROM rate_limit_calls
			WHERE policy = ? AND rule = ? AND agent = ? AND ts <= ?`,
			c.Key.Policy, c.Key.Rule, c.Key.Agent, since(now, c.Window)); err != nil {
			return fmt.Errorf("rate limit %s: %w", c.Key, err)
		}
		n, err := countLive(ctx, tx, now, c)
		if err != nil {
			return err
		}
		used[i] = min(n, c.Window.Limit)
	}
	if !decide(used) {
		return nil
	}
	ts := now.UnixNano()
	for i, c := range checks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rate_limit_calls(policy, rule, agent, ts) VALUES (?, ?, ?, ?)`,
			c.Key.Policy, c.Key.Rule, c.Key.Agent, ts); err != nil {
			return fmt.Errorf("rate limit %s: recording a call: %w", c.Key, err)
		}
		if used[i]+1 > c.Window.Limit {
			// Only the newest Limit times decide whether the window is full.
			if _, err := tx.ExecContext(ctx, `DELETE FROM rate_limit_calls WHERE rowid IN (
				SELECT rowid FROM rate_limit_calls WHERE policy = ? AND rule = ? AND agent = ?
				ORDER BY ts DESC LIMIT -1 OFFSET ?)`,
				c.Key.Policy, c.Key.Rule, c.Key.Agent, c.Window.Limit); err != nil {
				return fmt.Errorf("rate limit %s: trimming: %w", c.Key, err)
			}
		}
	}
	return s.sweep(ctx, tx, now)
}

// Usage implements Counter from a read snapshot.
func (s *SQLite) Usage(ctx context.Context, now time.Time, checks []Check) ([]int, error) {
	used := make([]int, len(checks))
	err := s.db.Read(ctx, func(tx *sql.Tx) error {
		for i, c := range checks {
			n, err := countLive(ctx, tx, now, c)
			if err != nil {
				return err
			}
			used[i] = min(n, c.Window.Limit)
		}
		return nil
	})
	return used, err
}

// countLive counts the calls of c's key in the window ending at now. Rows
// later than now (another process's clock running ahead) count too: a
// limiter must never admit more because clocks disagree.
func countLive(ctx context.Context, tx *sql.Tx, now time.Time, c Check) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rate_limit_calls
		WHERE policy = ? AND rule = ? AND agent = ? AND ts > ?`,
		c.Key.Policy, c.Key.Rule, c.Key.Agent, since(now, c.Window)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("rate limit %s: counting: %w", c.Key, err)
	}
	return n, nil
}

// sweep deletes, at most every sweepEvery, rows older than the longest
// window: the leftovers of keys (agents, renamed rules) no longer used.
func (s *SQLite) sweep(ctx context.Context, tx *sql.Tx, now time.Time) error {
	next := s.nextSweep.Load()
	if now.UnixNano() < next || !s.nextSweep.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM rate_limit_calls WHERE ts <= ?`, now.Add(-MaxWindow).UnixNano()); err != nil {
		return fmt.Errorf("rate limits: sweeping expired rows: %w", err)
	}
	return nil
}
