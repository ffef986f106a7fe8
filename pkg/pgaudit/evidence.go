package pgaudit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// EvidenceReader reads what a compliance report cites (pkg/compliance)
// from a fleet's log, as auditlog.EvidenceReader does from SQLite: the
// entries of a period, the signed checkpoints covering them, inclusion
// proofs and the recorded verification runs, all from one repeatable-read
// snapshot bounded by the tree size it reports. Entries are filtered on
// their own bytes, never on the column copies. Its methods are valid only
// inside the ReadEvidence callback.
type EvidenceReader struct {
	ctx       context.Context
	tx        pgx.Tx
	origin    string
	verifiers note.Verifiers
	size      int64
	note      []byte
}

// ReadEvidence runs fn on one snapshot of the log of origin in db, whose
// checkpoints must verify under verifiers.
func ReadEvidence(ctx context.Context, db *pgstate.DB, origin string, verifiers note.Verifiers, fn func(r *EvidenceReader) error) error {
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	r := &EvidenceReader{ctx: ctx, tx: tx, origin: origin, verifiers: verifiers}
	if err := tx.QueryRow(ctx, `SELECT size, note FROM audit_tree_state WHERE id = 1`).Scan(&r.size, &r.note); err != nil {
		return fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	return fn(r)
}

// Size is the number of entries in this snapshot.
func (r *EvidenceReader) Size() int64 { return r.size }

// Origin is the log's checkpoint origin.
func (r *EvidenceReader) Origin() string { return r.origin }

// Latest returns the latest signed checkpoint, its signature checked.
func (r *EvidenceReader) Latest() ([]byte, audit.Checkpoint, error) {
	if r.size == 0 {
		return nil, audit.Checkpoint{}, auditlog.ErrNoCheckpoint
	}
	return r.opened(r.size, r.note)
}

// entries yields the snapshot's entries in seq order (descending when
// newestFirst), decoded from their own bytes.
func (r *EvidenceReader) entries(newestFirst bool) iter.Seq2[auditlog.Stored, error] {
	return func(yield func(auditlog.Stored, error) bool) {
		order := "ASC"
		if newestFirst {
			order = "DESC"
		}
		rows, err := r.tx.Query(r.ctx, `SELECT seq, entry FROM audit_entries WHERE seq < $1 ORDER BY seq `+order, r.size)
		if err != nil {
			yield(auditlog.Stored{}, fmt.Errorf("reading the audit log: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var raw []byte
			if err := rows.Scan(&seq, &raw); err != nil {
				yield(auditlog.Stored{}, err)
				return
			}
			e, err := auditlog.DecodeAt(seq, raw)
			if !yield(auditlog.Stored{Entry: e, Raw: raw}, err) || err != nil {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(auditlog.Stored{}, err)
		}
	}
}

// Entries yields the entries whose timestamp is in [since, until], in seq
// order; a damaged entry is an error naming it.
func (r *EvidenceReader) Entries(since, until time.Time) iter.Seq2[auditlog.Stored, error] {
	return func(yield func(auditlog.Stored, error) bool) {
		for s, err := range r.entries(false) {
			if err != nil {
				yield(s, err)
				return
			}
			if s.Entry.Timestamp.Before(since) || s.Entry.Timestamp.After(until) {
				continue
			}
			if !yield(s, nil) {
				return
			}
		}
	}
}

// LastBefore returns the newest entry with one of the actions and a
// timestamp before t (nil when there is none).
func (r *EvidenceReader) LastBefore(t time.Time, actions ...audit.Action) (*auditlog.Stored, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	for s, err := range r.entries(true) {
		if err != nil {
			return nil, err
		}
		if s.Entry.Timestamp.Before(t) && slices.Contains(actions, s.Entry.Action) {
			return &s, nil
		}
	}
	return nil, nil
}

// Entry returns entry seq.
func (r *EvidenceReader) Entry(seq int64) (auditlog.Stored, error) {
	if seq < 0 || seq >= r.size {
		return auditlog.Stored{}, fmt.Errorf("no audit entry %d in a log of %d entries", seq, r.size)
	}
	var raw []byte
	err := r.tx.QueryRow(r.ctx, `SELECT entry FROM audit_entries WHERE seq = $1`, seq).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return auditlog.Stored{}, fmt.Errorf("no audit entry with seq %d: run `agentmesh audit verify`", seq)
	}
	if err != nil {
		return auditlog.Stored{}, err
	}
	e, err := auditlog.DecodeAt(seq, raw)
	return auditlog.Stored{Entry: e, Raw: raw}, err
}

// Covering returns the first signed checkpoint that covers entry seq (the
// smallest tree size above seq in the checkpoint history), its signature
// checked.
func (r *EvidenceReader) Covering(seq int64) ([]byte, audit.Checkpoint, error) {
	var size int64
	var signed []byte
	err := r.tx.QueryRow(r.ctx, `SELECT size, note FROM audit_checkpoints WHERE size > $1 AND size <= $2 ORDER BY size LIMIT 1`, seq, r.size).Scan(&size, &signed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, audit.Checkpoint{}, fmt.Errorf("no signed checkpoint covers entry %d", seq)
	}
	if err != nil {
		return nil, audit.Checkpoint{}, err
	}
	return r.opened(size, signed)
}

// CheckpointAt returns the signed checkpoint of a tree size from the
// history (ok false when none was kept for that size).
func (r *EvidenceReader) CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error) {
	var signed []byte
	err := r.tx.QueryRow(r.ctx, `SELECT note FROM audit_checkpoints WHERE size = $1 AND size <= $2`, size, r.size).Scan(&signed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, audit.Checkpoint{}, false, nil
	}
	if err != nil {
		return nil, audit.Checkpoint{}, false, err
	}
	n, cp, err := r.opened(size, signed)
	return n, cp, err == nil, err
}

func (r *EvidenceReader) opened(size int64, signed []byte) ([]byte, audit.Checkpoint, error) {
	cp, _, err := audit.OpenCheckpoint(signed, r.verifiers)
	if err != nil {
		return nil, audit.Checkpoint{}, fmt.Errorf("the signed checkpoint of size %d: %w (run `agentmesh audit verify`)", size, err)
	}
	if cp.Origin != r.origin || cp.Size != size {
		return nil, audit.Checkpoint{}, fmt.Errorf("the checkpoint history row of size %d holds a checkpoint of %s at size %d: run `agentmesh audit verify`", size, cp.Origin, cp.Size)
	}
	return signed, cp, nil
}

// Prove returns the inclusion proof of entry seq against the signed
// checkpoint of the given tree size (`audit verify --proof` checks it).
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
	p, err := audit.NewInclusionProof(signed, s.Raw, hashReader{r.ctx, r.tx})
	if err != nil {
		return nil, err
	}
	return p.Marshal()
}

// Verifications returns the verification runs recorded in [since, until],
// oldest first; Signed says whether a record's note verifies under the
// identity's keys and says what its row says.
func (r *EvidenceReader) Verifications(since, until time.Time) ([]auditlog.VerificationRecord, error) {
	rows, err := r.tx.Query(r.ctx, `SELECT at, mode, size, root, ok, detail, note FROM audit_verifications WHERE at >= $1 AND at <= $2 ORDER BY id`, since, until)
	if err != nil {
		return nil, fmt.Errorf("reading the verification records: %w", err)
	}
	defer rows.Close()
	var out []auditlog.VerificationRecord
	for rows.Next() {
		var rec auditlog.VerificationRecord
		var root []byte
		if err := rows.Scan(&rec.At, &rec.Mode, &rec.Size, &root, &rec.OK, &rec.Detail, &rec.Note); err != nil {
			return nil, err
		}
		rec.At = rec.At.UTC()
		if rec.OK && len(root) == tlog.HashSize {
			h := tlog.Hash(root)
			rec.Root = base64.StdEncoding.EncodeToString(h[:])
			if rec.Note != nil {
				n, err := note.Open(rec.Note, r.verifiers)
				rec.Signed = err == nil && n.Text == auditlog.RecordBody(r.origin, rec.Mode, rec.Size, h, rec.At)
			}
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}
