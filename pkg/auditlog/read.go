package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Filter selects entries for listing and export.
type Filter struct {
	Agent  string
	Tool   string
	Result string
	Since  time.Time
	// AfterSeq lists entries with seq > AfterSeq (-1: all).
	AfterSeq int64
	// Limit keeps the newest Limit entries (0: all).
	Limit int
}

// Stored is an entry as stored: its decoded form and its exact bytes.
type Stored struct {
	Entry audit.Entry
	Raw   []byte
}

func (f Filter) where() (string, []any) {
	var conds []string
	var args []any
	if f.Agent != "" {
		conds, args = append(conds, "agent = ?"), append(args, f.Agent)
	}
	if f.Tool != "" {
		conds, args = append(conds, "tool = ?"), append(args, f.Tool)
	}
	if f.Result != "" {
		conds, args = append(conds, "result = ?"), append(args, f.Result)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "ts >= ?"), append(args, audit.FormatTimestamp(f.Since))
	}
	conds, args = append(conds, "seq > ?"), append(args, f.AfterSeq)
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the entries matching f, oldest first (the newest f.Limit
// when a limit is set). Each entry is decoded from its stored bytes, which
// are the truth; the indexed columns only find candidates, so a row whose
// columns disagree with its entry is skipped here and reported by Verify.
func (l *Log) List(ctx context.Context, f Filter) ([]Stored, error) {
	where, args := f.where()
	q := "SELECT seq, entry FROM audit_entries" + where + " ORDER BY seq DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := l.db.Reader().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	defer rows.Close()
	var out []Stored
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			return nil, err
		}
		e, err := audit.Unmarshal(raw)
		if err != nil {
			return nil, fmt.Errorf("audit entry %d is damaged (%v): run `agentmesh audit verify`", seq, err)
		}
		if !f.matches(e) || int64(e.Seq) != seq {
			continue
		}
		out = append(out, Stored{Entry: e, Raw: raw})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

func (f Filter) matches(e audit.Entry) bool {
	return (f.Agent == "" || e.Agent == f.Agent) && (f.Tool == "" || e.Tool == f.Tool) &&
		(f.Result == "" || string(e.Result) == f.Result) && (f.Since.IsZero() || !e.Timestamp.Before(f.Since))
}

// Follow yields entries matching f as other processes append them, polling
// every interval until ctx ends. It starts after the last entry List would
// return for f.
func (l *Log) Follow(ctx context.Context, f Filter, interval time.Duration) iter.Seq2[Stored, error] {
	return func(yield func(Stored, error) bool) {
		last := f.AfterSeq
		for {
			g := f
			g.AfterSeq, g.Limit = last, 0
			batch, err := l.List(ctx, g)
			if err != nil {
				yield(Stored{}, err)
				return
			}
			for _, s := range batch {
				last = int64(s.Entry.Seq)
				if !yield(s, nil) {
					return
				}
			}
			if len(batch) == 0 {
				// Move past non-matching entries too.
				if size, err := l.Size(ctx); err == nil {
					last = max(last, size-1)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}
}

// Size is the number of entries.
func (l *Log) Size(ctx context.Context) (int64, error) {
	var n int64
	err := l.db.Reader().QueryRowContext(ctx, `SELECT coalesce(max(seq) + 1, 0) FROM audit_entries`).Scan(&n)
	return n, err
}

// ErrNoCheckpoint means the log is empty: nothing was ever signed.
var ErrNoCheckpoint = errors.New("the audit log has no checkpoint yet (no entries)")

// LatestCheckpoint returns the stored signed checkpoint and what it says,
// after checking its signature against the identity's key history.
func (l *Log) LatestCheckpoint(ctx context.Context) ([]byte, audit.Checkpoint, error) {
	var note []byte
	err := l.db.Reader().QueryRowContext(ctx, `SELECT note FROM audit_checkpoint WHERE id = 1`).Scan(&note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, audit.Checkpoint{}, ErrNoCheckpoint
	}
	if err != nil {
		return nil, audit.Checkpoint{}, err
	}
	cp, _, err := audit.OpenCheckpoint(note, l.verifiers)
	if err != nil {
		return note, audit.Checkpoint{}, err
	}
	if cp.Origin != l.origin {
		return note, audit.Checkpoint{}, fmt.Errorf("checkpoint origin %q is not this log's (%q)", cp.Origin, l.origin)
	}
	return note, cp, nil
}

// entryAt returns the stored bytes of entry seq.
func (l *Log) entryAt(ctx context.Context, seq int64) ([]byte, error) {
	var raw []byte
	err := l.db.Reader().QueryRowContext(ctx, `SELECT entry FROM audit_entries WHERE seq = ?`, seq).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("no audit entry with seq %d", seq)
	}
	return raw, err
}

// Prove returns the inclusion proof of entry seq against the latest
// checkpoint, as a portable JSON document (`audit verify --proof` checks it).
func (l *Log) Prove(ctx context.Context, seq int64) ([]byte, error) {
	note, cp, err := l.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if seq < 0 || seq >= cp.Size {
		return nil, fmt.Errorf("seq %d is not covered by the latest checkpoint (tree size %d)", seq, cp.Size)
	}
	raw, err := l.entryAt(ctx, seq)
	if err != nil {
		return nil, err
	}
	p, err := audit.NewInclusionProof(note, raw, hashReader{ctx: ctx, q: l.db.Reader()})
	if err != nil {
		return nil, err
	}
	return p.Marshal()
}
