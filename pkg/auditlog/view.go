package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// view is one consistent read of the log: everything a reader learns comes
// from a single SQLite read transaction (WAL snapshot), and every scan is
// bounded by size, so entries appended meanwhile are neither half seen nor
// taken for tampering.
type view struct {
	ctx  context.Context
	tx   *sql.Tx
	size int64 // entries: max(seq) + 1
	note []byte
	// hasCP is false when there is no checkpoint row at all.
	hasCP bool
	l     *Log
	// snapshot is the database's change token while this read's WAL
	// snapshot was taken, when snapshotKnown (see twin).
	snapshot      state.ChangeToken
	snapshotKnown bool
	// opened, cp and cpErr cache checkpoint().
	opened bool
	cp     audit.Checkpoint
	cpErr  error
}

// read runs fn on a consistent view of the log.
func (l *Log) read(ctx context.Context, fn func(v *view) error) error {
	return l.db.Read(ctx, func(tx *sql.Tx) error {
		v := &view{ctx: ctx, tx: tx, l: l}
		before, ok := l.db.ChangeToken()
		if err := v.load(l); err != nil {
			return err
		}
		after, ok2 := l.db.ChangeToken()
		v.snapshot, v.snapshotKnown = before, ok && ok2 && before == after
		return fn(v)
	})
}

// load reads the size and the latest checkpoint.
func (v *view) load(l *Log) error {
	if err := v.tx.QueryRowContext(v.ctx, sizeQuery).Scan(&v.size); err != nil {
		return fmt.Errorf("reading the audit log size: %w", err)
	}
	err := v.tx.QueryRowContext(v.ctx, `SELECT note FROM audit_checkpoint WHERE id = 1`).Scan(&v.note)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("reading the audit checkpoint: %w", err)
	}
	v.hasCP, v.l = true, l
	return nil
}

// checkpoint is the latest checkpoint as the row says, after its signature
// was checked (once per view: ~60 µs), or why it could not be opened.
func (v *view) checkpoint() (audit.Checkpoint, error) {
	if !v.opened {
		v.opened = true
		v.cp, v.cpErr = v.l.openNote(v.note, "the checkpoint in the state database")
	}
	return v.cp, v.cpErr
}

// hashes serves stored tree hashes from the view's snapshot.
func (v *view) hashes() hashReader { return hashReader{ctx: v.ctx, q: v.tx} }

// openNote checks a signed checkpoint against the identity's key history
// and this log's origin; where names the checkpoint in errors.
func (l *Log) openNote(note []byte, where string) (audit.Checkpoint, error) {
	cp, _, err := audit.OpenCheckpoint(note, l.verifiers)
	if err != nil {
		var ve *audit.VerifyError
		if errors.As(err, &ve) {
			c := *ve
			c.Detail = where + ": " + c.Detail
			return audit.Checkpoint{}, &c
		}
		return audit.Checkpoint{}, fmt.Errorf("%s: %w", where, err)
	}
	if cp.Origin != l.origin {
		return audit.Checkpoint{}, &audit.VerifyError{Seq: audit.NoSeq, Kind: audit.KindUnknownKey,
			Detail: fmt.Sprintf("%s is for log %q, not this log (%q)", where, cp.Origin, l.origin)}
	}
	return cp, nil
}

// historyMax returns the largest signed checkpoint kept in the history
// (ok false when there is none).
func (v *view) historyMax() (size int64, note []byte, ok bool, err error) {
	err = v.tx.QueryRowContext(v.ctx, `SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("reading the checkpoint history: %w", err)
	}
	return size, note, true, nil
}

// historyNear returns the signed checkpoint of the smallest size in [from,
// to) (asc) or the largest (desc), if any.
func (v *view) historyNear(from, to int64, desc bool) (int64, []byte, bool, error) {
	q := `SELECT size, note FROM audit_checkpoints WHERE size >= ? AND size < ? ORDER BY size LIMIT 1`
	if desc {
		q = `SELECT size, note FROM audit_checkpoints WHERE size >= ? AND size < ? ORDER BY size DESC LIMIT 1`
	}
	var size int64
	var note []byte
	err := v.tx.QueryRowContext(v.ctx, q, from, to).Scan(&size, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, fmt.Errorf("reading the checkpoint history: %w", err)
	}
	return size, note, true, nil
}

// rootAt is the stored tree's root at size n.
func (v *view) rootAt(n int64) (tlog.Hash, error) { return audit.TreeRoot(n, v.hashes()) }
