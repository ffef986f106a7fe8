package auditlog

import (
	"fmt"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// WitnessState is what an external witness (C2SP tlog-witness) last
// answered for this log.
type WitnessState struct {
	// Witness is its verifier key; URL its submission prefix.
	Witness string `json:"witness"`
	URL     string `json:"url"`
	// Size is the tree size it last cosigned (0: none yet).
	Size int64 `json:"cosigned_size"`
	// State is "cosigned" (it holds our latest checkpoint), "behind"
	// (not yet the latest), "unreachable" or "refused" (it will not
	// cosign: our checkpoint is not an extension of what it cosigned, a
	// fork or a rollback).
	State  string    `json:"state"`
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
	// Note is the cosigned checkpoint (log signature and cosignature).
	Note []byte `json:"-"`
}

// Witness states.
const (
	WitnessCosigned    = "cosigned"
	WitnessBehind      = "behind"
	WitnessUnreachable = "unreachable"
	WitnessRefused     = "refused"
)

func (v *view) witnessStates() ([]WitnessState, error) {
	rows, err := v.tx.QueryContext(v.ctx, `SELECT witness, url, size, note, state, detail, at FROM audit_witnesses ORDER BY witness`)
	if err != nil {
		return nil, fmt.Errorf("reading the witnesses' answers: %w", err)
	}
	defer rows.Close()
	var out []WitnessState
	for rows.Next() {
		var s WitnessState
		var at string
		if err := rows.Scan(&s.Witness, &s.URL, &s.Size, &s.Note, &s.State, &s.Detail, &at); err != nil {
			return nil, err
		}
		s.At, _ = audit.ParseTimestamp(at)
		out = append(out, s)
	}
	return out, rows.Err()
}
