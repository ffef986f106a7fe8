package auditlog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// EvidenceReader reads what a compliance report cites (pkg/compliance):
// the entries of a period, the signed checkpoints that cover them, the
// recorded verification runs and inclusion proofs, all from one consistent
// read of the log, bounded by the size it reports. Its methods are valid
// only inside the ReadEvidence callback.
type EvidenceReader struct {
	l *Log
	v *view
}

// ReadEvidence runs fn on one consistent read of the log.
func (l *Log) ReadEvidence(ctx context.Context, fn func(r *EvidenceReader) error) error {
	return l.read(ctx, func(v *view) error { return fn(&EvidenceReader{l: l, v: v}) })
}

// Size is the number of entries in this read.
func (r *EvidenceReader) Size() int64 { return r.v.size }

// Origin is the log's checkpoint origin.
func (r *EvidenceReader) Origin() string { return r.l.origin }

// Latest returns the latest signed checkpoint, its signature checked
// (ErrNoCheckpoint for an empty log).
func (r *EvidenceReader) Latest() ([]byte, audit.Checkpoint, error) {
	if !r.v.hasCP {
		return nil, audit.Checkpoint{}, ErrNoCheckpoint
	}
	cp, err := r.v.checkpoint()
	return r.v.note, cp, err
}

// Entries yields the entries whose timestamp is in [since, until], in seq
// order, decoded from their own bytes; a damaged entry is an error naming
// it.
func (r *EvidenceReader) Entries(since, until time.Time) iter.Seq2[Stored, error] {
	return func(yield func(Stored, error) bool) {
		v := r.v
		var bad int64
		err := v.tx.QueryRowContext(v.ctx, `SELECT seq FROM audit_entries WHERE NOT json_valid(CAST(entry AS TEXT)) AND seq < ? ORDER BY seq LIMIT 1`, v.size).Scan(&bad)
		if err == nil {
			yield(Stored{}, fmt.Errorf("audit entry %d is damaged (not JSON): run `agentmesh audit verify`", bad))
			return
		}
		if !errors.Is(err, sql.ErrNoRows) {
			yield(Stored{}, fmt.Errorf("reading the audit log: %w", err))
			return
		}
		ts := entryField("timestamp")
		rows, err := v.tx.QueryContext(v.ctx, `SELECT seq, entry FROM audit_entries WHERE `+ts+` >= ? AND `+ts+` <= ? AND seq < ? ORDER BY seq`,
			audit.FormatTimestamp(since), audit.FormatTimestamp(until), v.size)
		if err != nil {
			yield(Stored{}, fmt.Errorf("reading the audit log: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			s, err := scanStored(rows)
			if err == nil && (s.Entry.Timestamp.Before(since) || s.Entry.Timestamp.After(until)) {
				err = fmt.Errorf("audit entry %d does not say what its bytes were matched on: run `agentmesh audit verify`", s.Entry.Seq)
			}
			if !yield(s, err) || err != nil {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Stored{}, err)
		}
	}
}

// LastBefore returns the newest entry with one of the actions and a
// timestamp before t (nil when there is none): what was in force when a
// period began (the policy loaded, the identity key).
func (r *EvidenceReader) LastBefore(t time.Time, actions ...audit.Action) (*Stored, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	v := r.v
	args := []any{audit.FormatTimestamp(t), v.size}
	marks := make([]string, len(actions))
	for i, a := range actions {
		marks[i] = "?"
		args = append(args, string(a))
	}
	row := v.tx.QueryRowContext(v.ctx, `SELECT seq, entry FROM audit_entries WHERE json_valid(CAST(entry AS TEXT)) AND `+entryField("timestamp")+` < ? AND seq < ? AND `+
		entryField("action")+` IN (`+strings.Join(marks, ",")+`) ORDER BY seq DESC LIMIT 1`, args...)
	s, err := scanStored(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.Entry.Timestamp.Before(t) {
		return nil, fmt.Errorf("audit entry %d does not say what its bytes were matched on: run `agentmesh audit verify`", s.Entry.Seq)
	}
	return &s, nil
}

// Entry returns entry seq.
func (r *EvidenceReader) Entry(seq int64) (Stored, error) {
	if seq < 0 || seq >= r.v.size {
		return Stored{}, fmt.Errorf("no audit entry %d in a log of %d entries", seq, r.v.size)
	}
	s, err := scanStored(r.v.tx.QueryRowContext(r.v.ctx, `SELECT seq, entry FROM audit_entries WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return Stored{}, fmt.Errorf("no audit entry with seq %d: run `agentmesh audit verify`", seq)
	}
	return s, err
}

type rowScanner interface{ Scan(dest ...any) error }

func scanStored(row rowScanner) (Stored, error) {
	var seq int64
	var raw []byte
	if err := row.Scan(&seq, &raw); err != nil {
		return Stored{}, err
	}
	e, err := audit.Unmarshal(raw)
	if err != nil {
		return Stored{}, fmt.Errorf("audit entry %d is damaged (%v): run `agentmesh audit verify`", seq, err)
	}
	if int64(e.Seq) != seq {
		return Stored{}, fmt.Errorf("the audit entry stored at seq %d records seq %d: the log was tampered with, run `agentmesh audit verify`", seq, e.Seq)
	}
	return Stored{Entry: e, Raw: raw}, nil
}

// Covering returns the first signed checkpoint that covers entry seq (the
// smallest tree size above seq kept in the checkpoint history), its
// signature checked: the first signed statement that the entry is in the
// log.
func (r *EvidenceReader) Covering(seq int64) ([]byte, audit.Checkpoint, error) {
	v := r.v
	size, signed, ok, err := v.historyNear(seq+1, v.size+1, false)
	if err != nil {
		return nil, audit.Checkpoint{}, err
	}
	if !ok {
		return nil, audit.Checkpoint{}, fmt.Errorf("no signed checkpoint covers entry %d", seq)
	}
	return r.opened(size, signed)
}

// CheckpointAt returns the signed checkpoint of a tree size from the
// history (ok false when none was kept for that size).
func (r *EvidenceReader) CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error) {
	got, signed, ok, err := r.v.historyNear(size, size+1, false)
	if err != nil || !ok {
		return nil, audit.Checkpoint{}, false, err
	}
	n, cp, err := r.opened(got, signed)
	return n, cp, err == nil, err
}

func (r *EvidenceReader) opened(size int64, signed []byte) ([]byte, audit.Checkpoint, error) {
	cp, err := r.l.openNote(signed, fmt.Sprintf("the signed checkpoint of size %d in the history", size))
	if err != nil {
		return nil, audit.Checkpoint{}, err
	}
	if cp.Size != size {
		return nil, audit.Checkpoint{}, fmt.Errorf("the checkpoint history row of size %d holds a checkpoint of size %d: run `agentmesh audit verify`", size, cp.Size)
	}
	return signed, cp, nil
}

// Prove returns the inclusion proof of entry seq against the signed
// checkpoint of the given tree size from the history (`audit verify
// --proof` checks it).
func (r *EvidenceReader) Prove(seq, size int64) ([]byte, error) {
	signed, _, ok, err := r.CheckpointAt(size)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no signed checkpoint of size %d is kept", size)
	}
	s, err := r.Entry(seq)
	if err != nil {
		return nil, err
	}
	p, err := audit.NewInclusionProof(signed, s.Raw, r.v.hashes())
	if err != nil {
		return nil, err
	}
	return p.Marshal()
}

// VerificationRecord is one recorded run of `audit verify`.
type VerificationRecord struct {
	At     time.Time
	Mode   string // full | incremental
	Size   int64
	Root   string // base64, empty when the run failed
	OK     bool
	Detail string
	// Note is the record signed with the identity key (nil when the
	// verifier could not read the key); Signed reports whether it
	// verifies against the identity's keys and says what the row says.
	Note   []byte
	Signed bool
}

// Verifications returns the verification runs recorded in [since, until],
// oldest first.
func (r *EvidenceReader) Verifications(since, until time.Time) ([]VerificationRecord, error) {
	v := r.v
	rows, err := v.tx.QueryContext(v.ctx, `SELECT at, mode, size, root, ok, detail, note FROM audit_verifications WHERE at >= ? AND at <= ? ORDER BY id`,
		audit.FormatTimestamp(since), audit.FormatTimestamp(until))
	if err != nil {
		return nil, fmt.Errorf("reading the verification records: %w", err)
	}
	defer rows.Close()
	var out []VerificationRecord
	for rows.Next() {
		var rec VerificationRecord
		var at string
		var root []byte
		if err := rows.Scan(&at, &rec.Mode, &rec.Size, &root, &rec.OK, &rec.Detail, &rec.Note); err != nil {
			return nil, err
		}
		rec.At, _ = audit.ParseTimestamp(at)
		if len(root) == len(tlog.Hash{}) {
			var h tlog.Hash
			copy(h[:], root)
			rec.Root = base64.StdEncoding.EncodeToString(h[:])
			if rec.Note != nil {
				n, err := note.Open(rec.Note, r.l.verifiers)
				rec.Signed = err == nil && n.Text == r.l.recordBody(rec.Mode, rec.Size, h, rec.At)
			}
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
