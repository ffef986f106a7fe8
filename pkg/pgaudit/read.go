package pgaudit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// Entry returns the stored bytes of entry seq.
func Entry(ctx context.Context, db *pgstate.DB, seq int64) ([]byte, error) {
	var b []byte
	err := db.Pool.QueryRow(ctx, `SELECT entry FROM audit_entries WHERE seq = $1`, seq).Scan(&b)
	if err != nil {
		return nil, fmt.Errorf("audit entry %d: %w", seq, err)
	}
	return b, nil
}

// Verify checks the whole log in one snapshot: the latest checkpoint is
// signed by one of verifiers, the entries are seq 0..size-1 with none
// missing or extra, each leaf column is the RFC 6962 leaf hash of its
// entry, and the root recomputed from the entries is the signed root. It
// returns that checkpoint. (The column copies and the checkpoint history
// are `agentmesh audit verify`'s business, still to be ported.)
func Verify(ctx context.Context, db *pgstate.DB, verifiers note.Verifiers) (audit.Checkpoint, error) {
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return audit.Checkpoint{}, err
	}
	defer tx.Rollback(context.Background())
	var size int64
	var signed []byte
	if err := tx.QueryRow(ctx, `SELECT size, note FROM audit_tree_state WHERE id = 1`).Scan(&size, &signed); err != nil {
		return audit.Checkpoint{}, err
	}
	cp := audit.Checkpoint{Size: 0, Root: audit.EmptyRoot}
	if size > 0 {
		if cp, _, err = audit.OpenCheckpoint(signed, verifiers); err != nil {
			return audit.Checkpoint{}, err
		}
		if cp.Size != size {
			return cp, fmt.Errorf("the tree row says %d entries, its checkpoint %d", size, cp.Size)
		}
	}
	rs, err := tx.Query(ctx, `SELECT seq, entry, leaf FROM audit_entries ORDER BY seq`)
	if err != nil {
		return cp, err
	}
	var tree audit.Frontier
	var seq int64
	var entry, leaf []byte
	_, err = pgx.ForEachRow(rs, []any{&seq, &entry, &leaf}, func() error {
		if seq != tree.Size() {
			return fmt.Errorf("entry %d follows %d entries: entries are missing", seq, tree.Size())
		}
		h := audit.LeafHash(entry)
		if string(h[:]) != string(leaf) {
			return fmt.Errorf("entry %d: the stored leaf hash is not its entry's", seq)
		}
		tree.Append(h, nil)
		return nil
	})
	if err != nil {
		return cp, err
	}
	if tree.Size() != cp.Size {
		return cp, fmt.Errorf("%d entries stored, %d signed", tree.Size(), cp.Size)
	}
	if tree.Root() != cp.Root {
		return cp, fmt.Errorf("the entries' root %s is not the signed root %s", tree.Root(), cp.Root)
	}
	return cp, nil
}
