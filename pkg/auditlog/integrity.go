package auditlog

import (
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// integrity is what the cheap checks (no entry is hashed: O(log n) reads)
// establish about a view of the log.
type integrity struct {
	// cp is the latest signed checkpoint, nil for a log never signed.
	cp *audit.Checkpoint
	// frontier is the stored tree at cp.Size, its root checked against
	// cp.Root (only with checks.storedTree and no problem).
	frontier audit.Frontier
	// problem is the first thing found wrong.
	problem *audit.VerifyError
}

// checks selects what assess looks at beyond signatures, the checkpoint
// history and the witness's size and root.
type checks struct {
	// storedTree: the stored tree reproduces the signed root at the
	// checkpoint's size and the witness is consistent with it (proof over
	// stored hashes); the number of entries is the checkpoint's size.
	storedTree bool
	// noWitness accepts a log with checkpoints and no witness.
	noWitness bool
}

func problemf(seq int64, kind audit.Kind, format string, args ...any) *audit.VerifyError {
	return &audit.VerifyError{Seq: seq, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// asVerifyError keeps a *audit.VerifyError as it is and wraps anything else
// (an unreadable database, say) so that it still stops the log.
func asVerifyError(err error) *audit.VerifyError {
	if ve, ok := err.(*audit.VerifyError); ok {
		return ve
	}
	return &audit.VerifyError{Seq: audit.NoSeq, Kind: audit.KindMalformed, Detail: err.Error(), Err: err}
}

// assess checks the latest signed checkpoint, the checkpoint history and
// the witness w (read before v was taken, so that it can only be older
// than v) against each other and, with c.storedTree, against the stored
// tree and the number of entries.
func (l *Log) assess(v *view, w *witnessCopy, c checks) integrity {
	var in integrity
	if w != nil && w.err != nil {
		in.problem = asVerifyError(w.err)
		return in
	}
	hSize, hNote, hOK, err := v.historyMax()
	if err != nil {
		in.problem = asVerifyError(err)
		return in
	}
	if !v.hasCP {
		switch {
		case hOK:
			if _, err := l.openNote(hNote, "the checkpoint history"); err != nil {
				in.problem = asVerifyError(err)
				return in
			}
			in.problem = problemf(min(v.size, hSize), audit.KindRollback,
				"the state database has no latest checkpoint, but its history holds one signed at tree size %d: the log was cut back", hSize)
		case w != nil:
			in.problem = problemf(min(v.size, w.cp.Size), audit.KindRollback,
				"the state database has %d entries and no signed checkpoint, but the witness %s holds tree size %d%s: the log was emptied or replaced (a rollback, never a new log)",
				v.size, w.path, w.cp.Size, signedAt(w.cp))
		case v.size > 0:
			in.problem = problemf(0, audit.KindContentChanged, "%d entries but no signed checkpoint: they were added outside agentmesh", v.size)
		}
		return in
	}
	cp, err := v.checkpoint()
	if err != nil {
		in.problem = asVerifyError(err)
		return in
	}
	in.cp = &cp
	if hOK && hSize >= cp.Size {
		h, err := l.openNote(hNote, fmt.Sprintf("the checkpoint history's tree size %d", hSize))
		switch {
		case err != nil:
			in.problem = asVerifyError(err)
			return in
		case hSize > cp.Size:
			in.problem = problemf(min(v.size, cp.Size), audit.KindRollback,
				"a checkpoint of tree size %d%s was signed, but the latest checkpoint in the state database is of tree size %d: the log was rolled back to an older checkpoint",
				h.Size, signedAt(h), cp.Size)
			return in
		case h.Root != cp.Root:
			in.problem = forkOf(cp, "the state database's latest checkpoint", h, "its checkpoint history")
			return in
		}
	}
	if w != nil {
		switch {
		case w.cp.Size > cp.Size:
			in.problem = problemf(min(v.size, cp.Size), audit.KindRollback,
				"the latest signed checkpoint is of tree size %d, but the witness %s holds tree size %d%s: entries %d..%d are gone (rolled back)",
				cp.Size, w.path, w.cp.Size, signedAt(w.cp), cp.Size, w.cp.Size-1)
			return in
		case w.cp.Size == cp.Size && w.cp.Root != cp.Root:
			in.problem = forkOf(cp, "the state database's latest checkpoint", w.cp, "the witness "+w.path)
			return in
		}
	}
	if c.storedTree {
		f, err := audit.FrontierAt(cp.Size, v.hashes())
		if err != nil {
			in.problem = problemf(audit.NoSeq, audit.KindStoredHashChanged,
				"the stored tree cannot give the root of tree size %d: %v", cp.Size, err)
			return in
		}
		if f.Root() != cp.Root {
			in.problem = problemf(audit.NoSeq, audit.KindStoredHashChanged,
				"the stored tree no longer reproduces the signed root of tree size %d: entries or their stored hashes were rewritten", cp.Size)
			return in
		}
		in.frontier = f
		if w != nil && w.cp.Size < cp.Size {
			if err := consistent(w.cp, cp, v); err != nil {
				in.problem = problemf(audit.NoSeq, audit.KindFork,
					"the signed checkpoint of tree size %d (root %s) is not an extension of the witness %s (tree size %d, root %s): two histories were signed",
					cp.Size, cp.Root, w.path, w.cp.Size, w.cp.Root)
				return in
			}
		}
		switch {
		case v.size > cp.Size:
			in.problem = problemf(cp.Size, audit.KindContentChanged,
				"entries %d..%d are not covered by the signed checkpoint (tree size %d): they were added outside agentmesh", cp.Size, v.size-1, cp.Size)
			return in
		case v.size < cp.Size:
			in.problem = problemf(v.size, audit.KindRollback,
				"the log has %d entries, but the signed checkpoint commits to %d: entries were deleted", v.size, cp.Size)
			return in
		}
	}
	if w == nil && l.opts.WitnessDir != "" && !c.noWitness {
		in.problem = problemf(audit.NoSeq, audit.KindWitnessMissing,
			"the log has signed checkpoints (tree size %d) but no witness at %s: it was deleted, so a rollback could no longer be seen (if the log was copied here from another machine, check it with `agentmesh audit verify --no-witness`, which then starts a new witness)",
			cp.Size, witnessPath(l.opts.WitnessDir, l.origin))
	}
	return in
}

// consistent checks, with a proof over v's stored hashes, that new extends
// old (RFC 6962 §2.1.2). Both are authenticated; only the proof comes from
// storage, so a forged store can make this fail, never pass falsely.
func consistent(old, new audit.Checkpoint, v *view) error {
	proof, err := audit.ProveConsistency(old.Size, new.Size, v.hashes())
	if err != nil {
		return err
	}
	return audit.CheckConsistency(proof, old.Size, old.Root, new.Size, new.Root)
}

// forkOf reports two signed checkpoints of one size with different roots.
func forkOf(a audit.Checkpoint, aSource string, b audit.Checkpoint, bSource string) *audit.VerifyError {
	return problemf(audit.NoSeq, audit.KindFork,
		"two signed checkpoints of tree size %d disagree: %s%s has root %s, %s%s has root %s: the log's history was rewritten and signed again",
		a.Size, aSource, signedAt(a), a.Root, bSource, signedAt(b), b.Root)
}

func signedAt(c audit.Checkpoint) string {
	if c.Time.IsZero() {
		return ""
	}
	return " (signed " + audit.FormatTimestamp(c.Time) + ")"
}
