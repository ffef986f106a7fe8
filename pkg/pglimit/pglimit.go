// Package pglimit keeps the exact sliding-window rate-limit counters of
// pkg/ratelimit in a PostgreSQL state database (pkg/pgstate), shared by a
// fleet of replicas. It has the SQLite counter's semantics exactly: one row
// per admitted call, a call counts iff it is younger than the window, only
// the calls decide lets through are recorded, and a key keeps at most
// Limit rows.
//
// # Atomicity across replicas
//
// Each Admit is one transaction that first takes a transaction-scoped
// advisory lock per key (pg_advisory_xact_lock), then counts, lets the
// caller decide and records. Two Admits sharing a key are serialised, in
// any replica; Admits on different keys run in parallel (SQLite serialises
// everything). The locks are taken in ascending order of their ids, so two
// Admits over the same keys in another order cannot deadlock. The lock id
// is hashtextextended(current_schema(), KEYHASH): a collision between two
// keys only serialises them, never miscounts.
package pglimit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
)

// Counter is a ratelimit.Counter in table rate_limit_calls (migration 2).
type Counter struct {
	db *pgstate.DB
	// nextSweep is when (Unix nanoseconds) Admit next deletes the rows of
	// keys nobody uses any more.
	nextSweep atomic.Int64
}

var _ ratelimit.Counter = (*Counter)(nil)

// sweepEvery spaces out the table-wide sweep of dead keys, as in SQLite.
const sweepEvery = 10 * time.Minute

// New returns a Counter over db.
func New(db *pgstate.DB) *Counter { return &Counter{db: db} }

// Admit implements ratelimit.Counter in its own transaction.
func (c *Counter) Admit(ctx context.Context, now time.Time, checks []ratelimit.Check, decide func(used []int) bool) error {
	if len(checks) == 0 {
		decide(nil)
		return nil
	}
	return c.db.Write(ctx, func(tx pgx.Tx) error {
		return c.AdmitTx(ctx, tx, now, checks, decide)
	})
}

// AdmitTx is Admit inside a transaction the caller holds, so that the
// counters commit (or roll back) with other state, such as the audit
// entry of the same call. The key locks are held until tx ends. tx must be
// read committed (as pgstate.DB.Write begins it): each count must see what
// the previous holder of the lock committed.
func (c *Counter) AdmitTx(ctx context.Context, tx pgx.Tx, now time.Time, checks []ratelimit.Check, decide func(used []int) bool) error {
	var b pgx.Batch
	for _, id := range lockIDs(checks) {
		b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended(coalesce(current_schema(), ''), $1))`, id)
	}
	used := make([]int, len(checks))
	for i, chk := range checks {
		k, since := chk.Key, since(now, chk.Window)
		// Expired rows of this key go first, so the count is of live rows.
		b.Queue(`DELETE FROM rate_limit_calls WHERE policy = $1 AND rule = $2 AND agent = $3 AND ts <= $4`,
			k.Policy, k.Rule, k.Agent, since)
		// Rows later than now (a replica whose clock runs ahead) count
		// too: a limiter must never admit more because clocks disagree.
		b.Queue(`SELECT count(*) FROM rate_limit_calls WHERE policy = $1 AND rule = $2 AND agent = $3 AND ts > $4`,
			k.Policy, k.Rule, k.Agent, since).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&used[i]); err != nil {
				return fmt.Errorf("rate limit %s: counting: %w", k, err)
			}
			used[i] = min(used[i], chk.Window.Limit)
			return nil
		})
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	if !decide(used) {
		return nil
	}
	b = pgx.Batch{}
	ts := now.UnixNano()
	for i, chk := range checks {
		k := chk.Key
		b.Queue(`INSERT INTO rate_limit_calls(policy, rule, agent, ts) VALUES ($1, $2, $3, $4)`, k.Policy, k.Rule, k.Agent, ts)
		if used[i]+1 > chk.Window.Limit {
			// Only the newest Limit times decide whether the window is full.
			b.Queue(`DELETE FROM rate_limit_calls WHERE id IN (
				SELECT id FROM rate_limit_calls WHERE policy = $1 AND rule = $2 AND agent = $3
				ORDER BY ts DESC, id DESC OFFSET $4)`, k.Policy, k.Rule, k.Agent, chk.Window.Limit)
		}
	}
	if next := c.nextSweep.Load(); ts >= next && c.nextSweep.CompareAndSwap(next, now.Add(sweepEvery).UnixNano()) {
		// Rows older than the longest window count for no key: the
		// leftovers of agents and rules no longer used.
		b.Queue(`DELETE FROM rate_limit_calls WHERE ts <= $1`, now.Add(-ratelimit.MaxWindow).UnixNano())
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("rate limits: recording a call: %w", err)
	}
	return nil
}

// Usage implements ratelimit.Counter from one snapshot, locking nothing.
func (c *Counter) Usage(ctx context.Context, now time.Time, checks []ratelimit.Check) ([]int, error) {
	used := make([]int, len(checks))
	if len(checks) == 0 {
		return used, nil
	}
	tx, err := c.db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("rate limits in %s: %w", c.db.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var b pgx.Batch
	for i, chk := range checks {
		k := chk.Key
		b.Queue(`SELECT count(*) FROM rate_limit_calls WHERE policy = $1 AND rule = $2 AND agent = $3 AND ts > $4`,
			k.Policy, k.Rule, k.Agent, since(now, chk.Window)).QueryRow(func(r pgx.Row) error {
			if err := r.Scan(&used[i]); err != nil {
				return fmt.Errorf("rate limit %s: counting: %w", k, err)
			}
			used[i] = min(used[i], chk.Window.Limit)
			return nil
		})
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	return used, nil
}

// since is the exclusive lower bound of the window ending at now, in Unix
// nanoseconds (as pkg/ratelimit): a call recorded at ts counts iff ts > since.
func since(now time.Time, w ratelimit.Window) int64 { return now.Add(-w.Per).UnixNano() }

// lockIDs returns the distinct lock seeds of checks' keys, ascending.
func lockIDs(checks []ratelimit.Check) []int64 {
	ids := make([]int64, 0, len(checks))
	for _, chk := range checks {
		ids = append(ids, keyHash(chk.Key))
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// keyHash is 64 bits of SHA-256 over the key's length-prefixed fields, so
// that no two distinct keys share an encoding.
func keyHash(k ratelimit.Key) int64 {
	h := sha256.New()
	for _, f := range []string{k.Policy, k.Rule, k.Agent} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}
