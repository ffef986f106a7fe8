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
	Agent string
	// Caller is a caller's ID (caller.Caller.ID): "oauth:ISS#SUB",
	// "key:NAME", "local:USER", ...
	Caller string
	Tool   string
	Result string
	Since  time.Time
	// AfterSeq lists entries with seq > AfterSeq (-1: all).
	AfterSeq int64
	// Before, when positive, lists only entries with seq < Before (with
	// AfterSeq, a page of the log).
	Before int64
	// Limit keeps the newest Limit entries (0: all).
	Limit int
}

// Stored is an entry as stored: its decoded form and its exact bytes.
type Stored struct {
	Entry audit.Entry
	Raw   []byte
}

// entryField is the SQL expression of an entry's field, read from the
// entry's own bytes (the expression indexes of migration 7 serve the tool
// and timestamp ones): a filter never trusts a column copy that an edit
// could have set apart from the entry.
func entryField(name string) string {
	return "json_extract(CASE WHEN json_valid(CAST(entry AS TEXT)) THEN CAST(entry AS TEXT) END, '$." + name + "')"
}

func (f Filter) where(size int64) (string, []any) {
	var conds []string
	var args []any
	if f.Tool != "" {
		conds, args = append(conds, entryField("tool")+" = ?"), append(args, f.Tool)
	}
	if f.Agent != "" {
		conds, args = append(conds, entryField("agent")+" = ?"), append(args, f.Agent)
	}
	if f.Caller != "" {
		conds, args = append(conds, entryField("caller.id")+" = ?"), append(args, f.Caller)
	}
	if f.Result != "" {
		conds, args = append(conds, entryField("result")+" = ?"), append(args, f.Result)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, entryField("timestamp")+" >= ?"), append(args, audit.FormatTimestamp(f.Since))
	}
	if f.Before > 0 && f.Before < size {
		size = f.Before
	}
	conds, args = append(conds, "seq > ?", "seq < ?"), append(args, f.AfterSeq, size)
	return " WHERE " + strings.Join(conds, " AND "), args
}

// List returns the entries matching f, oldest first (the newest f.Limit
// when a limit is set), from one consistent read. Filters are applied to
// the entries' own bytes, and every entry returned is decoded from them; an
// entry that does not decode, or that sits at another seq than it records,
// is an error naming it, never silently left out.
func (l *Log) List(ctx context.Context, f Filter) ([]Stored, error) {
	var out []Stored
	err := l.read(ctx, func(v *view) error {
		var err error
		out, err = l.list(v, f)
		return err
	})
	return out, err
}

func (l *Log) list(v *view, f Filter) ([]Stored, error) {
	if f.Tool != "" || f.Agent != "" || f.Caller != "" || f.Result != "" || !f.Since.IsZero() {
		// A filter cannot match bytes that are not JSON: say so.
		var seq int64
		err := v.tx.QueryRowContext(v.ctx, `SELECT seq FROM audit_entries WHERE NOT json_valid(CAST(entry AS TEXT)) AND seq > ? AND seq < ? ORDER BY seq LIMIT 1`, f.AfterSeq, v.size).Scan(&seq)
		if err == nil {
			return nil, fmt.Errorf("audit entry %d is damaged (not JSON): run `agentmesh audit verify`", seq)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
	}
	where, args := f.where(v.size)
	q := "SELECT seq, entry FROM audit_entries" + where + " ORDER BY seq DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := v.tx.QueryContext(v.ctx, q, args...)
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
		e, err := DecodeAt(seq, raw)
		if err != nil {
			return nil, err
		}
		if !f.matches(e) {
			return nil, fmt.Errorf("audit entry %d does not say what its bytes were matched on: run `agentmesh audit verify`", seq)
		}
		out = append(out, Stored{Entry: e, Raw: raw})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return out, nil
}

// DecodeAt decodes the entry stored at seq: an entry that does not decode,
// or that records another seq than it is stored at, is an error naming it
// (a listing never leaves it out silently).
func DecodeAt(seq int64, raw []byte) (audit.Entry, error) {
	e, err := audit.Unmarshal(raw)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("audit entry %d is damaged (%v): run `agentmesh audit verify`", seq, err)
	}
	if int64(e.Seq) != seq {
		return audit.Entry{}, fmt.Errorf("the audit entry stored at seq %d records seq %d: the log was tampered with, run `agentmesh audit verify`", seq, e.Seq)
	}
	return e, nil
}

// Matches reports whether e passes f's field filters (not its seq bounds
// or limit): what a store that filters decoded entries applies.
func (f Filter) Matches(e audit.Entry) bool {
	return f.matches(e) && (f.Caller == "" || e.Caller != nil && e.Caller.ID == f.Caller)
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
			var batch []Stored
			var size int64
			err := l.read(ctx, func(v *view) error {
				g := f
				g.AfterSeq, g.Limit = last, 0
				var err error
				batch, err = l.list(v, g)
				size = v.size
				return err
			})
			if err != nil {
				if ctx.Err() == nil {
					yield(Stored{}, err)
				}
				return
			}
			for _, s := range batch {
				if !yield(s, nil) {
					return
				}
			}
			// Move past non-matching entries too.
			last = max(last, size-1)
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
	err := l.db.Reader().QueryRowContext(ctx, sizeQuery).Scan(&n)
	return n, err
}

// ErrNoCheckpoint means the log is empty: nothing was ever signed.
var ErrNoCheckpoint = errors.New("the audit log has no checkpoint yet (no entries)")

// LatestCheckpoint returns the stored signed checkpoint and what it says,
// after checking its signature against the identity's key history.
func (l *Log) LatestCheckpoint(ctx context.Context) ([]byte, audit.Checkpoint, error) {
	var note []byte
	var cp audit.Checkpoint
	err := l.read(ctx, func(v *view) error {
		if !v.hasCP {
			return ErrNoCheckpoint
		}
		var err error
		note = v.note
		cp, err = v.checkpoint()
		return err
	})
	return note, cp, err
}

// Prove returns the inclusion proof of entry seq against the latest
// checkpoint, as a portable JSON document (`audit verify --proof` checks
// it), from one consistent read.
func (l *Log) Prove(ctx context.Context, seq int64) ([]byte, error) {
	var out []byte
	err := l.read(ctx, func(v *view) error {
		if !v.hasCP {
			return ErrNoCheckpoint
		}
		cp, err := v.checkpoint()
		if err != nil {
			return err
		}
		if seq < 0 || seq >= cp.Size {
			return fmt.Errorf("seq %d is not covered by the latest checkpoint (tree size %d)", seq, cp.Size)
		}
		var raw []byte
		err = v.tx.QueryRowContext(v.ctx, `SELECT entry FROM audit_entries WHERE seq = ?`, seq).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("no audit entry with seq %d: run `agentmesh audit verify`", seq)
		}
		if err != nil {
			return err
		}
		p, err := audit.NewInclusionProof(v.note, raw, v.hashes())
		if err != nil {
			return err
		}
		out, err = p.Marshal()
		return err
	})
	return out, err
}

// ScoreBefore returns the trust score recorded by the last entry charging
// agent (audit.Entry.Subject: a caller ID or the server DID)
// before t (looking back at most 16 entries from the last entry before t,
// through the timestamp index), for `status`'s trend.
func (l *Log) ScoreBefore(ctx context.Context, agent string, t time.Time) (score int, ok bool, err error) {
	err = l.read(ctx, func(v *view) error {
		var before int64
		ts := entryField("timestamp")
		err := v.tx.QueryRowContext(v.ctx, `SELECT seq FROM audit_entries WHERE `+ts+` < ? ORDER BY `+ts+` DESC LIMIT 1`, audit.FormatTimestamp(t)).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := v.tx.QueryContext(v.ctx, `SELECT entry FROM audit_entries WHERE seq <= ? ORDER BY seq DESC LIMIT 16`, before)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			if e, err := audit.Unmarshal(raw); err == nil && e.Subject() == agent && e.TrustScore != nil {
				score, ok = *e.TrustScore, true
				return nil
			}
		}
		return rows.Err()
	})
	return score, ok, err
}
