package main

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// stateCopied counts what copySharedState copied, table by table.
type stateCopied struct {
	TrustStates int `json:"trust_states"`
	RateLimits  int `json:"rate_limit_calls"`
	APIKeys     int `json:"api_keys"`
	ToolPins    int `json:"tool_pins"`
}

// copySharedState copies the state replicas share besides the audit log
// (trust states, rate-limit windows, API keys, tool pins) from the SQLite
// state database into PostgreSQL, in one PostgreSQL transaction: all of
// it or none. Values keep their meaning across the two schemas (JSON text
// becomes jsonb, RFC 3339 text timestamptz, an empty approval time NULL).
func copySharedState(ctx context.Context, from *state.DB, to *pgstate.DB) (stateCopied, error) {
	var n stateCopied
	r := from.Reader()
	err := to.Write(ctx, func(tx pgx.Tx) error {
		var err error
		if n.TrustStates, err = copyRows(ctx, r, tx, `SELECT agent, state FROM trust_state`,
			`INSERT INTO trust_state(subject, state) VALUES ($1, $2::jsonb)`, 2); err != nil {
			return fmt.Errorf("trust states: %w", err)
		}
		if n.RateLimits, err = copyRows(ctx, r, tx, `SELECT policy, rule, agent, ts FROM rate_limit_calls`,
			`INSERT INTO rate_limit_calls(policy, rule, agent, ts) VALUES ($1, $2, $3, $4)`, 4); err != nil {
			return fmt.Errorf("rate-limit windows: %w", err)
		}
		if n.APIKeys, err = copyRows(ctx, r, tx, `SELECT id, caller, hash, scopes, created, expires, revoked_at, revoked_reason, last_used FROM api_keys ORDER BY created, id`,
			`INSERT INTO api_keys(id, caller, hash, scopes, created, expires, revoked_at, revoked_reason, last_used)
			 VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, $6::timestamptz, $7::timestamptz, $8, $9::timestamptz)`, 9); err != nil {
			return fmt.Errorf("API keys: %w", err)
		}
		if n.ToolPins, err = copyRows(ctx, r, tx, `SELECT upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, NULLIF(approved_at, ''), approved_by FROM tool_pins`,
			`INSERT INTO tool_pins(upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, approved_at, approved_by)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::timestamptz, $10::timestamptz, $11::timestamptz, $12)`, 12); err != nil {
			return fmt.Errorf("tool pins: %w", err)
		}
		return nil
	})
	return n, err
}

// copyRows runs query on SQLite and insert on PostgreSQL for every row
// (cols columns, scanned as their SQLite values).
func copyRows(ctx context.Context, from *sql.DB, tx pgx.Tx, query, insert string, cols int) (int, error) {
	rows, err := from.QueryContext(ctx, query)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	vals := make([]any, cols)
	ptrs := make([]any, cols)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		if _, err := tx.Exec(ctx, insert, vals...); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}
