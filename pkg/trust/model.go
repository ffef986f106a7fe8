// Package trust implements agentmesh's trust score: a number from 0 to 1000
// per agent that scores intent, not outcomes. Attack signatures (traversal,
// SSRF, destructive SQL, secrets sent out) cost a lot, honest mistakes (a
// path in no mount, an endpoint off the allowlist) little, the same refusal
// repeated costs once per window, the server's own data being redacted or
// withheld and refusals caused by trust itself cost nothing; good behaviour
// recovers toward the baseline but cannot build a reserve. Below a
// threshold access is revoked until an operator resets it. docs/trust.md
// gives the formula with a worked example.
//
// The score is a pure function of the events recorded in the audit log
// (Model.Apply), so `agentmesh trust explain` can replay the log and arrive
// at exactly the stored score. Time enters only through event timestamps.
package trust

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
)

// Score bounds.
const (
	MinScore = 0
	MaxScore = 1000
)

// Kind is what happened.
type Kind string

// Event kinds.
const (
	// Allowed: a call went through (also warn/audit decisions).
	Allowed Kind = "allowed"
	// Redacted: a call went through, but its output had to be redacted:
	// the server's own data, no cost.
	Redacted Kind = "redacted"
	// Withheld: a redact rule matched and nothing could be removed, so the
	// output was not passed: no cost.
	Withheld Kind = "withheld"
	// Mistake: a refusal that shows an honest mistake (a path in no
	// mount, a write to a read-only mount, an unknown tool or database,
	// malformed arguments, an endpoint or method off the allowlist).
	Mistake Kind = "mistake"
	// Attack: a refusal that shows an attack signature (traversal,
	// symlink escape, SSRF to private or disguised addresses, destructive
	// or escaping SQL, secrets sent out in parameters).
	Attack Kind = "attack"
	// PolicyBlock: a policy rule blocked the call (severity applies).
	PolicyBlock Kind = "policy_block"
	// GuardRefusal: a tool's own guard refused; recorded by earlier
	// versions, replayed as an Attack.
	GuardRefusal Kind = "guard_refusal"
	// RateLimited: a rate limit refused the call; costs once per window.
	RateLimited Kind = "rate_limited"
	// CredentialFailure: the credential was missing, expired or did not
	// cover the call's scope.
	CredentialFailure Kind = "credential_failure"
	// Neutral: no effect on the score (tool errors, refusals caused by the
	// trust score itself or made while revoked).
	Neutral Kind = "neutral"
	// Reset: an operator reset (back to the initial score, revocation
	// lifted).
	Reset Kind = "reset"
)

// Event is one thing that may move the score.
type Event struct {
	Kind     Kind   `json:"kind"`
	Severity string `json:"severity,omitempty"` // low|medium|high|critical
	// Once keys a penalty that applies once per window: a rate limit
	// ("policy/rule/agent"), or the same refusal repeated (its kind,
	// rule, tool and target); Until is when the window ends.
	Once  string    `json:"once,omitempty"`
	Until time.Time `json:"until,omitzero"`
	Time  time.Time `json:"-"`
}

// Weights are the points events cost (and allowed calls earn).
type Weights struct {
	Allowed           int
	Mistake           int
	Attack            int
	RateLimited       int
	CredentialFailure int
	// Policy maps a blocking rule's severity to its cost.
	Policy map[string]int
}

// DefaultWeights are agentmesh.yaml's defaults (trust.weights).
func DefaultWeights() Weights {
	return Weights{Allowed: 1, Mistake: 5, Attack: 100, RateLimited: 20, CredentialFailure: 100,
		Policy: map[string]int{"low": 10, "medium": 25, "high": 50, "critical": 100}}
}

// Model holds the parameters (from agentmesh.yaml's trust section).
type Model struct {
	Initial         int
	RevokeBelow     int
	RecoveryAfter   time.Duration
	RecoveryPerHour int
	Tiers           map[string]int
	// Weights are the events' costs; the zero value means DefaultWeights.
	Weights Weights
	// RepeatWindow: the same refusal costs once per window.
	RepeatWindow time.Duration
	// DailyGainAboveInitial bounds what allowed calls add per (UTC) day
	// above Initial: good behaviour cannot build a reserve to spend.
	DailyGainAboveInitial int
}

// maxWindows bounds how many once-per-window keys a state remembers; past
// that, new refusals are charged every time (never free).
const maxWindows = 256

func (m Model) weights() Weights {
	if m.Weights.Policy == nil {
		return DefaultWeights()
	}
	return m.Weights
}

// State is an agent's persisted trust state.
type State struct {
	Score   int  `json:"score"`
	Revoked bool `json:"revoked"`
	// LastViolation is the time of the last event that lowered the score.
	LastViolation time.Time `json:"last_violation,omitzero"`
	// RecoveredTo is the time up to which recovery has been credited.
	RecoveredTo time.Time `json:"recovered_to,omitzero"`
	// Windows maps Once keys to the end of the window already penalised.
	Windows map[string]time.Time `json:"windows,omitempty"`
	// GainDay (UTC, YYYY-MM-DD) and GainToday count what allowed calls
	// added above Initial that day.
	GainDay   string `json:"gain_day,omitempty"`
	GainToday int    `json:"gain_today,omitempty"`
	// Updated is the time of the last applied event.
	Updated time.Time `json:"updated,omitzero"`
}

// Fresh is the state of an agent with no history.
func (m Model) Fresh() State { return State{Score: m.Initial} }

// Delta is the change an event makes before clamping (recovery excluded).
func (m Model) Delta(s State, ev Event) int {
	w := m.weights()
	if ev.Once != "" {
		if until, ok := s.Windows[ev.Once]; ok && ev.Time.Before(until) {
			return 0 // already charged in this window
		}
	}
	switch ev.Kind {
	case Allowed:
		if s.Score >= m.Initial {
			gained := 0
			if s.GainDay == day(ev.Time) {
				gained = s.GainToday
			}
			return max(0, min(w.Allowed, m.DailyGainAboveInitial-gained)) // no reserve beyond today's allowance
		}
		return w.Allowed
	case PolicyBlock:
		if p, ok := w.Policy[ev.Severity]; ok {
			return -p
		}
		return -w.Policy["medium"]
	case Mistake:
		return -w.Mistake
	case Attack, GuardRefusal:
		return -w.Attack
	case RateLimited:
		return -w.RateLimited
	case CredentialFailure:
		return -w.CredentialFailure
	}
	return 0 // redacted, withheld, neutral
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

// Apply returns the state after ev. Recovery is credited first, up to
// ev.Time; then the event's delta; revocation latches once the score is
// below RevokeBelow and only a Reset lifts it. While revoked, only Reset
// changes anything: refusals made while revoked do not lower the score
// further.
func (m Model) Apply(s State, ev Event) State {
	s = m.recover(s, ev.Time)
	if ev.Time.After(s.Updated) {
		s.Updated = ev.Time
	}
	if ev.Kind == Reset {
		return State{Score: m.Initial, RecoveredTo: ev.Time, Updated: s.Updated}
	}
	if s.Revoked {
		return s
	}
	d := m.Delta(s, ev)
	if ev.Once != "" && d < 0 {
		s.Windows = cloneWindows(s.Windows, ev.Time)
		if len(s.Windows) < maxWindows {
			s.Windows[ev.Once] = ev.Until
		}
	}
	if ev.Kind == Allowed && d > 0 && s.Score >= m.Initial {
		if today := day(ev.Time); s.GainDay != today {
			s.GainDay, s.GainToday = today, 0
		}
		s.GainToday += d
	}
	s.Score = clamp(s.Score + d)
	if d < 0 {
		s.LastViolation = ev.Time
		s.RecoveredTo = time.Time{}
	}
	if s.Score < m.RevokeBelow {
		s.Revoked = true
	}
	return s
}

// At returns the state as of now: recovery credited, nothing else changed.
func (m Model) At(s State, now time.Time) State { return m.recover(s, now) }

// recover credits RecoveryPerHour points per full hour of quiet after
// RecoveryAfter has passed since the last violation, never above Initial
// (recovery restores the baseline; only good behaviour goes beyond it) and
// never while revoked.
func (m Model) recover(s State, now time.Time) State {
	if s.Revoked || m.RecoveryPerHour <= 0 || s.LastViolation.IsZero() || s.Score >= m.Initial {
		return s
	}
	start := s.LastViolation.Add(m.RecoveryAfter)
	if s.RecoveredTo.After(start) {
		start = s.RecoveredTo
	}
	if !now.After(start) {
		return s
	}
	perPoint := time.Hour / time.Duration(m.RecoveryPerHour)
	points := int(now.Sub(start) / perPoint)
	if points <= 0 {
		return s
	}
	gain := min(points, m.Initial-s.Score)
	s.Score += gain
	s.RecoveredTo = start.Add(time.Duration(gain) * perPoint)
	return s
}

func clamp(n int) int { return max(MinScore, min(MaxScore, n)) }

// cloneWindows copies the window map, dropping windows that ended before
// now so it stays small.
func cloneWindows(w map[string]time.Time, now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(w)+1)
	for k, until := range w {
		if until.After(now) {
			out[k] = until
		}
	}
	return out
}

// Tier returns the name of the tier the score falls in: the tier with the
// highest lower bound not above the score.
func (m Model) Tier(score int) string {
	best, bestMin := "", math.MinInt
	names := make([]string, 0, len(m.Tiers))
	for n := range m.Tiers {
		names = append(names, n)
	}
	sort.Strings(names) // deterministic among equal bounds
	for _, n := range names {
		if lo := m.Tiers[n]; lo <= score && lo > bestMin {
			best, bestMin = n, lo
		}
	}
	return best
}

// EncodeEvent is how an event is recorded in an audit entry's details
// ("trust_event"), so replay can re-apply it.
func EncodeEvent(ev Event) json.RawMessage {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("trust: encoding an event: %v", err)) // plain struct: cannot fail
	}
	return b
}
