package trust

import (
	"github.com/agentmesh/agentmesh/pkg/audit"
)

// Step is one event that moved (or could have moved) a score, for
// `agentmesh trust explain`.
type Step struct {
	// Subject is whose score moved (Subject: a caller's ID or the agent).
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	// Intent is the seq of the call's write-ahead intent entry, if any:
	// the two entries are one call.
	Intent *uint64 `json:"intent,omitempty"`
	Time   string  `json:"time"`
	Kind   Kind    `json:"kind"`
	Tool   string  `json:"tool,omitempty"`
	Reason string  `json:"reason,omitempty"`
	Before int     `json:"before"`
	After  int     `json:"after"`
	// Recovered is the part of the change due to quiet-time recovery
	// credited before the event.
	Recovered int  `json:"recovered,omitempty"`
	Revoked   bool `json:"revoked"`
}

// Replay re-applies, in order, the trust events recorded in entries and
// returns each subject's (see Subject) final state and the steps that changed a score.
func (m Model) Replay(entries []audit.Entry) (map[string]State, []Step) {
	states := map[string]State{}
	var steps []Step
	for _, e := range entries {
		ev, ok := EventOf(e)
		if !ok {
			continue
		}
		key := Subject(&e)
		s, seen := states[key]
		if !seen {
			s = m.Fresh()
		}
		recovered := m.At(s, ev.Time)
		next := m.Apply(s, ev)
		states[key] = next
		if next.Score != s.Score || next.Revoked != s.Revoked {
			steps = append(steps, Step{
				Subject: key, Seq: e.Seq, Intent: e.Intent, Time: audit.FormatTimestamp(e.Timestamp), Kind: ev.Kind, Tool: e.Tool, Reason: e.Reason,
				Before: s.Score, After: next.Score, Recovered: recovered.Score - s.Score, Revoked: next.Revoked,
			})
		}
	}
	return states, steps
}
