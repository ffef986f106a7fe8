package auditlog

import (
	"context"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Health is what `status` reports about the log: only cheap checks (no
// entry is hashed, O(log n) reads), in one consistent read, so it stays
// fast on a large log and never mistakes a live writer for tampering.
type Health struct {
	Size int64 `json:"entries"`
	// Checkpoint is the latest signed checkpoint, if it verified.
	Checkpoint *CheckpointView `json:"checkpoint,omitempty"`
	// CheckpointProblem says what is wrong with the log against its
	// signed checkpoints: bad signature, unknown key, a root or size the
	// stored tree does not reproduce, a rollback, a fork. A log with a
	// problem refuses appends.
	CheckpointProblem string `json:"checkpoint_problem,omitempty"`
	// Kind names the problem ("rollback", "fork", ...).
	Kind        string          `json:"kind,omitempty"`
	Witness     *CheckpointView `json:"witness,omitempty"`
	WitnessPath string          `json:"witness_path,omitempty"`
	// WitnessProblem: the witness is missing, unreadable, or the log is
	// not a consistent extension of it.
	WitnessProblem   string            `json:"witness_problem,omitempty"`
	LastVerification *LastVerification `json:"last_verification,omitempty"`
	// FailedVerification is a failed verification not yet cleared by a
	// full verification that passed.
	FailedVerification *LastVerification `json:"failed_verification,omitempty"`
	// Witnesses are the external witnesses' last answers.
	Witnesses []WitnessState `json:"witnesses,omitempty"`
}

// Critical reports whether the log cannot be trusted as it is.
func (h Health) Critical() bool {
	return h.CheckpointProblem != "" || h.WitnessProblem != "" || h.FailedVerification != nil
}

// Health checks the latest checkpoint's signature, the checkpoint history,
// that the stored tree reproduces the signed root, that the entries are
// exactly the signed ones, and that the log extends the witness: what an
// append would check before signing anything.
func (l *Log) Health(ctx context.Context) (Health, error) {
	var h Health
	h.WitnessPath = l.WitnessPath()
	err := l.readWithWitness(ctx, func(v *view, w *witnessCopy) error {
		h = Health{WitnessPath: h.WitnessPath, Size: v.size}
		var err error
		if h.LastVerification, err = v.lastVerification(`SELECT at, mode, size, ok, detail FROM audit_verifications ORDER BY id DESC LIMIT 1`); err != nil {
			return err
		}
		if h.FailedVerification, err = v.failedSinceFullPass(); err != nil {
			return err
		}
		if h.Witnesses, err = v.witnessStates(); err != nil {
			return err
		}
		in := l.assess(v, w, checks{storedTree: true})
		if in.cp != nil {
			h.Checkpoint = viewOf(*in.cp)
		}
		if w != nil && w.err == nil {
			h.Witness = viewOf(w.cp)
		}
		if p := in.problem; p != nil {
			h.Kind = p.Kind.String()
			msg := p.Kind.String() + ": " + p.Detail
			if p.Seq >= 0 {
				msg = fmt.Sprintf("seq %d: %s", p.Seq, msg)
			}
			switch p.Kind {
			case audit.KindWitnessMissing:
				h.WitnessProblem = msg
			default:
				if w != nil && w.err != nil {
					h.WitnessProblem = msg
				} else {
					h.CheckpointProblem = msg
				}
			}
		}
		return nil
	})
	return h, err
}
