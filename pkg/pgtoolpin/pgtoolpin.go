// Package pgtoolpin keeps upstream tool pins (pkg/toolpin) in a PostgreSQL
// state database (pkg/pgstate), shared by a fleet of replicas. What a
// change is and how a pin's status follows from its hashes is
// pkg/toolpin's (toolpin.Changes, toolpin.StatusOf); only the storage is
// here.
//
// Every change to pins is recorded in the audit log in the same
// transaction, so Observe and Approve take the audit append's pgx.Tx and
// the entry being appended, and set its details as pkg/toolpin's Store
// does. Both lock the upstream's pins (an advisory transaction lock per
// upstream), so replicas observing one upstream at once record each
// change once. An approval bumps the tool's change version (pkg/pgnotify).
// Approved reads the database on every call.
package pgtoolpin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgnotify"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
)

// Store keeps pins in table tool_pins (migration 6).
type Store struct {
	DB *pgstate.DB
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) rows(ctx context.Context, q querier, upstream string) (map[string]toolpin.Stored, error) {
	rs, err := q.Query(ctx, `SELECT tool, pinned_hash, current_hash, exposed FROM tool_pins WHERE upstream = $1`, upstream)
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	m := map[string]toolpin.Stored{}
	var tool string
	var pinned *string
	var r toolpin.Stored
	_, err = pgx.ForEachRow(rs, []any{&tool, &pinned, &r.Current, &r.Exposed}, func() error {
		r.Pinned = nullString(pinned)
		m[tool] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	return m, nil
}

func nullString(p *string) sql.NullString {
	if p == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *p, Valid: true}
}

// lockUpstream serialises the pin changes of one upstream across replicas.
func lockUpstream(ctx context.Context, tx pgx.Tx, upstream string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('agentmesh.tool_pins:' || coalesce(current_schema(), '')), hashtext($1))`, upstream)
	if err != nil {
		return fmt.Errorf("locking the tool pins of upstream %s: %w", upstream, err)
	}
	return nil
}

// Changes returns the changes Observe would record, reading only: a
// replica calls it first and appends an audit entry only when there are
// some, as toolpin.Store.Observe does.
func (s *Store) Changes(ctx context.Context, upstream string, mode toolpin.Mode, seen []toolpin.Seen, others []string) ([]toolpin.Change, error) {
	rows, err := s.rows(ctx, s.DB.Pool, upstream)
	if err != nil {
		return nil, err
	}
	return toolpin.Changes(rows, mode, seen, others), nil
}

// Observe records what an upstream lists now against its pins, inside tx,
// the transaction appending e, the upstream's tool_definition_changed
// entry, whose details it sets (toolpin.ObservedDetails). It returns the
// changes; with none, it changes nothing (the caller may roll back).
func (s *Store) Observe(ctx context.Context, tx pgx.Tx, e *audit.Entry, upstream string, mode toolpin.Mode, seen []toolpin.Seen, others []string) ([]toolpin.Change, error) {
	if err := lockUpstream(ctx, tx, upstream); err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, tx, upstream)
	if err != nil {
		return nil, err
	}
	cs := toolpin.Changes(rows, mode, seen, others)
	if len(cs) == 0 {
		return nil, nil
	}
	if err := s.apply(ctx, tx, upstream, seen, cs); err != nil {
		return nil, err
	}
	if e.Details, err = toolpin.ObservedDetails(upstream, mode, cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// apply stores changes cs, as toolpin.Store's apply does.
func (s *Store) apply(ctx context.Context, tx pgx.Tx, upstream string, seen []toolpin.Seen, cs []toolpin.Change) error {
	defs := map[string]toolpin.Seen{}
	for _, t := range seen {
		defs[t.Def.Name] = t
	}
	now := s.now()
	var b pgx.Batch
	for _, c := range cs {
		findings := c.Findings
		if findings == nil {
			findings = []toolpin.Finding{}
		}
		switch c.Kind {
		case "pinned", "new-pinned", "new":
			def := defs[c.Tool].Def.Canonical()
			var pinned *string
			var pinnedDef []byte
			var approvedAt *time.Time
			approvedBy := ""
			if c.Kind != "new" {
				pinned, pinnedDef, approvedAt, approvedBy = &c.CurrentHash, def, &now, "first sight"
			}
			b.Queue(`INSERT INTO tool_pins(upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, approved_at, approved_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)
				ON CONFLICT (upstream, tool) DO UPDATE SET exposed = excluded.exposed, current_hash = excluded.current_hash,
					current_def = excluded.current_def, findings = excluded.findings, changed_at = excluded.changed_at`,
				upstream, c.Tool, c.Exposed, pinned, pinnedDef, c.CurrentHash, def, findings, now, approvedAt, approvedBy)
		case "removed":
			b.Queue(`UPDATE tool_pins SET current_hash = '', current_def = NULL, findings = '[]', changed_at = $3 WHERE upstream = $1 AND tool = $2`,
				upstream, c.Tool, now)
		default: // changed, restored, renamed
			b.Queue(`UPDATE tool_pins SET exposed = $3, current_hash = $4, current_def = $5, findings = $6, changed_at = $7 WHERE upstream = $1 AND tool = $2`,
				upstream, c.Tool, c.Exposed, c.CurrentHash, defs[c.Tool].Def.Canonical(), findings, now)
		}
	}
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return fmt.Errorf("updating the pins of upstream %s: %w", upstream, err)
	}
	return nil
}

// Approved reports whether the definition with hash is the approved one
// for upstream's tool: a tool may be called only then.
func (s *Store) Approved(ctx context.Context, upstream, tool, hash string) (bool, error) {
	var pinned *string
	err := s.DB.Pool.QueryRow(ctx, `SELECT pinned_hash FROM tool_pins WHERE upstream = $1 AND tool = $2`, upstream, tool).Scan(&pinned)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the pin of %s/%s: %w", upstream, tool, err)
	}
	return pinned != nil && *pinned == hash, nil
}

// List returns every pin, by upstream and tool; upstream "" for all.
func (s *Store) List(ctx context.Context, upstream string) ([]toolpin.Pin, error) {
	q := `SELECT upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, approved_at, approved_by FROM tool_pins`
	var args []any
	if upstream != "" {
		q += ` WHERE upstream = $1`
		args = append(args, upstream)
	}
	rs, err := s.DB.Pool.Query(ctx, q+` ORDER BY upstream, tool`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	var out []toolpin.Pin
	var p toolpin.Pin
	var pinned *string
	var findings []byte
	var approved *time.Time
	_, err = pgx.ForEachRow(rs, []any{&p.Upstream, &p.Tool, &p.Exposed, &pinned, &p.PinnedDef, &p.CurrentHash, &p.CurrentDef, &findings, &p.FirstSeen, &p.ChangedAt, &approved, &p.ApprovedBy}, func() error {
		q := p
		q.PinnedHash = ""
		if pinned != nil {
			q.PinnedHash = *pinned
		}
		q.Status = toolpin.StatusOf(nullString(pinned), q.CurrentHash)
		q.Findings = []toolpin.Finding{}
		if err := json.Unmarshal(findings, &q.Findings); err != nil {
			// Never show a damaged row as a tool without flags.
			return fmt.Errorf("the pin of %s/%s is damaged (findings: %v)", q.Upstream, q.Tool, err)
		}
		q.FirstSeen, q.ChangedAt = q.FirstSeen.UTC(), q.ChangedAt.UTC()
		q.ApprovedAt = time.Time{}
		if approved != nil {
			q.ApprovedAt = approved.UTC()
		}
		out = append(out, q)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	return out, nil
}

// Find returns the pin named name: the exposed name ("files__read"), or
// "upstream/tool".
func (s *Store) Find(ctx context.Context, name string) (toolpin.Pin, error) {
	pins, err := s.List(ctx, "")
	if err != nil {
		return toolpin.Pin{}, err
	}
	return toolpin.FindIn(pins, name)
}

// Approve makes a pin's current definition the approved one (or, for a
// removed tool, forgets the pin), inside tx, the transaction appending e,
// the tool_approved entry, whose details it sets. hash, when not empty,
// must be the current hash: an operator approves what they reviewed. The
// tool's change version is bumped (pgnotify.ToolPin, "upstream/tool").
func (s *Store) Approve(ctx context.Context, tx pgx.Tx, e *audit.Entry, p toolpin.Pin, hash, by string) error {
	if p.Status == toolpin.Approved {
		return fmt.Errorf("%s is already approved (%s); nothing to do", p.Exposed, p.PinnedHash)
	}
	if hash != "" && hash != p.CurrentHash {
		return fmt.Errorf("%s: the current definition is %s, not %s; review `agentmesh tools diff %s` again", p.Exposed, p.CurrentHash, hash, p.Exposed)
	}
	if err := lockUpstream(ctx, tx, p.Upstream); err != nil {
		return err
	}
	var tag interface{ RowsAffected() int64 }
	var err error
	if p.Status == toolpin.Removed {
		tag, err = tx.Exec(ctx, `DELETE FROM tool_pins WHERE upstream = $1 AND tool = $2 AND current_hash = ''`, p.Upstream, p.Tool)
	} else {
		tag, err = tx.Exec(ctx, `UPDATE tool_pins SET pinned_hash = current_hash, pinned_def = current_def, approved_at = $4, approved_by = $5
			WHERE upstream = $1 AND tool = $2 AND current_hash = $3`, p.Upstream, p.Tool, p.CurrentHash, s.now(), by)
	}
	if err != nil {
		return fmt.Errorf("approving %s: %w", p.Exposed, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("%s changed while it was being approved; look at `agentmesh tools diff %s` again", p.Exposed, p.Exposed)
	}
	if _, err := pgnotify.Bump(ctx, tx, pgnotify.ToolPin, p.Upstream+"/"+p.Tool); err != nil {
		return err
	}
	e.Details, err = toolpin.ApprovedDetails(p, by)
	return err
}
