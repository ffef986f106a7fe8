package auditlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Backups (`agentmesh state backup` and `state restore`) need a few things
// of a log beyond Verify: to verify a copy on its own signed checkpoints
// without reading or writing the live log's witness, to compare a log with
// a checkpoint signed elsewhere (the witness, another copy), and, when an
// operator accepts a rollback, to move the witness back to the restored
// log.

// VerifyCopy verifies a copy of a log (a backup) in full, in one read, as
// Verify does, but on its own signed checkpoints alone: the witness is
// neither read nor written, and no verification is recorded, so the copy
// may be opened read-only. Compare it with the witness using Relate.
func (l *Log) VerifyCopy(ctx context.Context) (Report, error) {
	start := time.Now()
	var rep Report
	var verr error
	err := l.read(ctx, func(v *view) error {
		rep, verr = l.verifyView(v, nil, VerifyOptions{NoWitness: true})
		return nil
	})
	if err == nil {
		err = verr
	}
	rep.WitnessPath, rep.Witness = "", nil
	rep.Duration = time.Since(start)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		rep.Problem = ve
	}
	return rep, err
}

// Head is what a log's database says of its tree, cheaply: no entry is
// hashed.
type Head struct {
	// Size is the number of entries.
	Size int64
	// Checkpoint is the latest signed checkpoint, its signature checked
	// (nil when the log has none).
	Checkpoint *audit.Checkpoint
	// History is the largest checkpoint in the checkpoint history, its
	// signature checked, when it is larger than Checkpoint: the log was
	// cut back to an older checkpoint.
	History *audit.Checkpoint
}

// Head reads the log's size and latest signed checkpoints in one read.
func (l *Log) Head(ctx context.Context) (Head, error) {
	var h Head
	err := l.read(ctx, func(v *view) error {
		h.Size = v.size
		if v.hasCP {
			cp, err := v.checkpoint()
			if err != nil {
				return err
			}
			h.Checkpoint = &cp
		}
		size, note, ok, err := v.historyMax()
		if err != nil || !ok || h.Checkpoint != nil && size <= h.Checkpoint.Size {
			return err
		}
		cp, err := l.openNote(note, fmt.Sprintf("the checkpoint history's tree size %d", size))
		if err != nil {
			return err
		}
		h.History = &cp
		return nil
	})
	return h, err
}

// RootAt is the root of the stored tree at size n (at most the log's
// size), read in one view. It trusts the stored hashes: use it on a log
// that verified, or to compare.
func (l *Log) RootAt(ctx context.Context, n int64) (tlog.Hash, error) {
	if n == 0 {
		return audit.EmptyRoot, nil
	}
	var root tlog.Hash
	err := l.read(ctx, func(v *view) error {
		if n > v.size {
			return fmt.Errorf("the log has %d entries, fewer than %d", v.size, n)
		}
		var err error
		root, err = v.rootAt(n)
		return err
	})
	return root, err
}

// Relation is how a log's tree stands to a signed checkpoint of the same
// log.
type Relation int

const (
	// Extends: the checkpoint's tree is this tree or a prefix of it.
	Extends Relation = iota
	// Shorter: the checkpoint commits to more entries than this log has;
	// whether this log is a prefix of that tree only the longer log can
	// tell.
	Shorter
	// Forked: the tree at the checkpoint's size has another root.
	Forked
)

func (r Relation) String() string {
	switch r {
	case Extends:
		return "extends"
	case Shorter:
		return "shorter"
	default:
		return "forked"
	}
}

// Relate says how the log (whose stored tree should have verified) stands
// to cp, by the stored tree's root at cp's size.
func (l *Log) Relate(ctx context.Context, cp audit.Checkpoint) (Relation, error) {
	var rel Relation
	err := l.read(ctx, func(v *view) error {
		if cp.Size > v.size {
			rel = Shorter
			return nil
		}
		root := audit.EmptyRoot
		if cp.Size > 0 {
			var err error
			if root, err = v.rootAt(cp.Size); err != nil {
				return err
			}
		}
		rel = Extends
		if root != cp.Root {
			rel = Forked
		}
		return nil
	})
	return rel, err
}

// WitnessCheckpoint reads the witness of this log: nil when there is none
// or the witness is disabled, an error when it cannot be read or its
// signature does not verify.
func (l *Log) WitnessCheckpoint() (*audit.Checkpoint, error) {
	w := l.readWitness()
	if w == nil {
		return nil, nil
	}
	if w.err != nil {
		return nil, w.err
	}
	return &w.cp, nil
}

// ReplaceWitness writes the log's latest signed checkpoint to the witness
// even though it is not an extension of the checkpoint the witness holds:
// only for a rollback an operator accepted and recorded in the log
// (`agentmesh state restore --accept-rollback`). The witness it replaces
// is kept beside it as WITNESS.replaced-STAMP, whose path is returned ("" when
// there was none). It runs under the witness lock every process shares.
func (l *Log) ReplaceWitness(ctx context.Context, now time.Time) (kept string, err error) {
	path := l.WitnessPath()
	if path == "" {
		return "", errors.New("the witness is disabled (audit.witness: false)")
	}
	var note []byte
	err = l.read(ctx, func(v *view) error {
		if !v.hasCP {
			return errors.New("the log has no signed checkpoint to witness")
		}
		if _, err := v.checkpoint(); err != nil {
			return err
		}
		note = v.note
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("audit witness: %w", err)
	}
	unlock, err := state.LockFile(path + ".lock")
	if err != nil {
		return "", fmt.Errorf("audit witness: %w", err)
	}
	defer unlock()
	if old, err := os.ReadFile(path); err == nil {
		kept = path + ".replaced-" + now.UTC().Format("20060102T150405.000000000Z")
		if err := state.CreateExclusive(kept, old); err != nil {
			return "", fmt.Errorf("keeping the replaced witness: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("audit witness: %w", err)
	}
	if err := state.WriteFileAtomic(path, note); err != nil {
		return kept, fmt.Errorf("audit witness: %w", err)
	}
	return kept, nil
}
