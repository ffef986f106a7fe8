package pgaudit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// Health is what `status` reports about a fleet's log, from cheap checks
// in one snapshot (no entry is hashed; O(log n) stored hashes are read):
// the latest checkpoint verifies under verifiers and covers the tree row's
// size, and the stored tree reproduces its root; plus the last
// verification and a failure not yet cleared by a full one
// (auditlog.Health, without the local witness, which a fleet does not
// keep).
func Health(ctx context.Context, db *pgstate.DB, verifiers note.Verifiers) (auditlog.Health, error) {
	var h auditlog.Health
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return h, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var signed []byte
	if err := tx.QueryRow(ctx, `SELECT size, note FROM audit_tree_state WHERE id = 1`).Scan(&h.Size, &signed); err != nil {
		return h, fmt.Errorf("reading the audit log in %s: %w", db.Name, err)
	}
	if h.LastVerification, err = lastVerification(ctx, tx, `SELECT at, mode, size, ok, detail FROM audit_verifications ORDER BY id DESC LIMIT 1`); err != nil {
		return h, err
	}
	if h.FailedVerification, err = lastVerification(ctx, tx, `SELECT at, mode, size, ok, detail FROM audit_verifications
		WHERE NOT ok AND id > coalesce((SELECT max(id) FROM audit_verifications WHERE mode = 'full' AND ok), 0)
		ORDER BY id DESC LIMIT 1`); err != nil {
		return h, err
	}
	if h.Size == 0 {
		return h, nil
	}
	cp, _, err := audit.OpenCheckpoint(signed, verifiers)
	if err != nil {
		h.Kind, h.CheckpointProblem = "signature", "the latest checkpoint: "+err.Error()
		return h, nil
	}
	h.Checkpoint = &auditlog.CheckpointView{Size: cp.Size, Root: cp.Root.String(), Time: cp.Time, Origin: cp.Origin}
	if cp.Size != h.Size {
		h.Kind, h.CheckpointProblem = "size", fmt.Sprintf("the tree row says %d entries, its checkpoint %d", h.Size, cp.Size)
		return h, nil
	}
	f, err := audit.FrontierAt(h.Size, hashReader{ctx, tx})
	switch {
	case err != nil && ctx.Err() != nil:
		return h, fmt.Errorf("reading the audit tree in %s: %w", db.Name, err)
	case err != nil:
		h.Kind, h.CheckpointProblem = "root", fmt.Sprintf("the stored tree of size %d cannot be read back: %v", h.Size, err)
	case f.Root() != cp.Root:
		h.Kind, h.CheckpointProblem = "root", fmt.Sprintf("the stored tree does not reproduce the signed root of tree size %d", h.Size)
	}
	return h, nil
}

func lastVerification(ctx context.Context, tx pgx.Tx, q string) (*auditlog.LastVerification, error) {
	var v auditlog.LastVerification
	err := tx.QueryRow(ctx, q).Scan(&v.At, &v.Mode, &v.Size, &v.OK, &v.Detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading audit verifications: %w", err)
	}
	return &v, nil
}

// RecordVerification stores the outcome of a full verification of the
// log of origin at at: the checkpoint it checked (cp) and, when it failed,
// why. A passing record is signed with signer (auditlog.RecordBody) when
// one is given.
func RecordVerification(ctx context.Context, db *pgstate.DB, origin string, at time.Time, cp audit.Checkpoint, verr error, signer note.Signer) error {
	at = at.UTC().Truncate(time.Microsecond) // what timestamptz keeps, and what is signed
	detail := fmt.Sprintf("root %s", cp.Root)
	var signed []byte
	if verr != nil {
		detail = verr.Error()
	} else if signer != nil {
		var err error
		if signed, err = note.Sign(&note.Note{Text: auditlog.RecordBody(origin, "full", cp.Size, cp.Root, at)}, signer); err != nil {
			return fmt.Errorf("signing the verification record: %w", err)
		}
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO audit_verifications(at, mode, size, root, ok, detail, note) VALUES ($1, 'full', $2, $3, $4, $5, $6)`,
		at, cp.Size, cp.Root[:], verr == nil, detail, signed)
	if err != nil {
		return fmt.Errorf("recording the verification in %s: %w", db.Name, err)
	}
	return nil
}
