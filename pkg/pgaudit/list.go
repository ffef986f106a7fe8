package pgaudit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// List returns the entries matching f, oldest first (the newest f.Limit
// when a limit is set), from one snapshot of the signed tree: entries a
// commit added after the tree row was read are not listed. As
// auditlog.Log.List does, it filters on the entries' own bytes, never on
// the column copies, and an entry that does not decode or records another
// seq than it is stored at is an error naming it.
func List(ctx context.Context, db *pgstate.DB, f auditlog.Filter) ([]auditlog.Stored, error) {
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var size int64
	if err := tx.QueryRow(ctx, `SELECT size FROM audit_tree_state WHERE id = 1`).Scan(&size); err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	if f.Before > 0 && f.Before < size {
		size = f.Before
	}
	rows, err := tx.Query(ctx, `SELECT seq, entry FROM audit_entries WHERE seq > $1 AND seq < $2 ORDER BY seq DESC`, f.AfterSeq, size)
	if err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer rows.Close()
	var out []auditlog.Stored
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, err
		}
		e, err := auditlog.DecodeAt(seq, raw)
		if err != nil {
			return nil, err
		}
		if !f.Matches(e) {
			continue
		}
		out = append(out, auditlog.Stored{Entry: e, Raw: raw})
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	slices.Reverse(out)
	return out, nil
}

// Prove returns the inclusion proof of entry seq against the latest
// checkpoint (audit.InclusionProof, as auditlog.Log.Prove writes it),
// read in one snapshot; the checkpoint must verify under verifiers.
func Prove(ctx context.Context, db *pgstate.DB, seq int64, verifiers note.Verifiers) ([]byte, error) {
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var size int64
	var signed []byte
	if err := tx.QueryRow(ctx, `SELECT size, note FROM audit_tree_state WHERE id = 1`).Scan(&size, &signed); err != nil {
		return nil, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	if size == 0 {
		return nil, fmt.Errorf("the audit log in %s has no checkpoint yet", db.Name)
	}
	cp, _, err := audit.OpenCheckpoint(signed, verifiers)
	if err != nil {
		return nil, fmt.Errorf("the latest checkpoint: %w (run `agentmesh audit verify`)", err)
	}
	if seq < 0 || seq >= cp.Size {
		return nil, fmt.Errorf("seq %d is not covered by the latest checkpoint (tree size %d)", seq, cp.Size)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT entry FROM audit_entries WHERE seq = $1`, seq).Scan(&raw); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("no audit entry with seq %d: run `agentmesh audit verify`", seq)
		}
		return nil, err
	}
	p, err := audit.NewInclusionProof(signed, raw, hashReader{ctx, tx})
	if err != nil {
		return nil, err
	}
	return p.Marshal()
}

// Size returns the number of entries under the latest checkpoint.
func Size(ctx context.Context, db *pgstate.DB) (int64, error) {
	var size int64
	if err := db.Pool.QueryRow(ctx, `SELECT size FROM audit_tree_state WHERE id = 1`).Scan(&size); err != nil {
		return 0, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	return size, nil
}

// ScoreBefore returns the trust score recorded by the last entry charging
// subject (audit.Entry.Subject) among the 16 entries up to the last one
// stamped before t, as auditlog.Log.ScoreBefore does, for status's trend.
func ScoreBefore(ctx context.Context, db *pgstate.DB, subject string, t time.Time) (int, bool, error) {
	rows, err := db.Pool.Query(ctx, `SELECT entry FROM audit_entries WHERE seq <= (
		SELECT seq FROM audit_entries WHERE ts < $1 ORDER BY ts DESC LIMIT 1) ORDER BY seq DESC LIMIT 16`, audit.FormatTimestamp(t))
	if err != nil {
		return 0, false, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return 0, false, err
		}
		if e, err := audit.Unmarshal(raw); err == nil && e.Subject() == subject && e.TrustScore != nil {
			return *e.TrustScore, true, nil
		}
	}
	return 0, false, rows.Err()
}
