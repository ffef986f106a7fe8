package auditlog

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Health is what `status` reports about the log: only cheap checks (no
// entry is hashed), so it stays fast on a large log.
type Health struct {
	Size int64 `json:"entries"`
	// Checkpoint is the latest signed checkpoint, if it verified.
	Checkpoint *CheckpointView `json:"checkpoint,omitempty"`
	// CheckpointProblem says what is wrong with it: bad signature, unknown
	// key, root or size disagreeing with the stored tree.
	CheckpointProblem string          `json:"checkpoint_problem,omitempty"`
	Witness           *CheckpointView `json:"witness,omitempty"`
	WitnessPath       string          `json:"witness_path,omitempty"`
	// WitnessProblem: the log is not a consistent extension of the
	// witness (rollback or rewritten history), or the witness is unreadable.
	WitnessProblem   string            `json:"witness_problem,omitempty"`
	LastVerification *LastVerification `json:"last_verification,omitempty"`
}

// Critical reports whether the log cannot be trusted as it is.
func (h Health) Critical() bool { return h.CheckpointProblem != "" || h.WitnessProblem != "" }

// Health checks the latest checkpoint's signature, that its size and root
// match the stored tree, and that the log extends the witness.
func (l *Log) Health(ctx context.Context) (Health, error) {
	var h Health
	var err error
	if h.Size, err = l.Size(ctx); err != nil {
		return h, err
	}
	if h.LastVerification, err = l.LastVerification(ctx); err != nil {
		return h, err
	}
	hr := hashReader{ctx: ctx, q: l.db.Reader()}
	_, cp, err := l.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		if h.Size > 0 {
			h.CheckpointProblem = fmt.Sprintf("%d entries but no signed checkpoint", h.Size)
		}
	case err != nil:
		h.CheckpointProblem = err.Error()
	default:
		h.Checkpoint = viewOf(cp)
		if cp.Size != h.Size {
			h.CheckpointProblem = fmt.Sprintf("the checkpoint covers %d entries but the log has %d", cp.Size, h.Size)
		} else if root, err := audit.TreeRoot(cp.Size, hr); err != nil {
			h.CheckpointProblem = err.Error()
		} else if root != cp.Root {
			h.CheckpointProblem = "the stored tree's root differs from the signed checkpoint"
		}
	}
	var rep Report
	w, err := l.witnessCheckpoint(&rep)
	h.WitnessPath = rep.WitnessPath
	if err != nil {
		h.WitnessProblem = err.Error()
	} else if w != nil {
		h.Witness = viewOf(*w)
		if err := audit.VerifyWitness(*w, h.Size, hr); err != nil {
			h.WitnessProblem = err.Error()
		}
	}
	return h, nil
}
