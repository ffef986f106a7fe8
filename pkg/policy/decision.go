package policy

import (
	"fmt"
	"strings"
)

// Decision is the outcome of one stage of policy evaluation for one call.
type Decision struct {
	Stage Stage `json:"stage"`
	// Action is the most restrictive action of the matched rules (see
	// Action.Rank); before the call, with no match, the files'
	// default_action; otherwise allow.
	Action Action `json:"action"`
	// Enforced is false in shadow mode: the decision is recorded, but the
	// call goes ahead whatever it says.
	Enforced bool `json:"enforced"`
	// Reason explains Action in a sentence for the caller and the audit log.
	Reason string `json:"reason"`
	// Matched lists every rule that matched, in file order, then the
	// default actions that applied.
	Matched []Match `json:"matched"`
	// Error is set when evaluation failed and the decision failed closed.
	Error string `json:"error,omitempty"`
}

// Match is one rule that matched, and why.
type Match struct {
	// Rule is the rule ID ("POLICY/NAME" or "POLICY/#INDEX"), or
	// "default_action" for a file's default action.
	Rule     string   `json:"rule"`
	Action   Action   `json:"action"`
	Severity Severity `json:"severity,omitempty"`
	Message  string   `json:"message,omitempty"`
	// Why says what made the rule match: its condition, its limit being
	// reached, an evaluation error.
	Why string `json:"why"`
	// Source is where the rule is written (FILE:LINE:COL).
	Source string `json:"source,omitempty"`
	// Limit is the rule's limit, when it matched because the limit was
	// reached.
	Limit string `json:"limit,omitempty"`
	// Error is the evaluation error, when the rule failed closed.
	Error string `json:"error,omitempty"`
	// ReadsTrust: the rule's condition reads trust_score (decided from
	// the compiled expression, not the rule's name), so its refusal may
	// be caused by trust itself, which costs no trust.
	ReadsTrust bool `json:"reads_trust,omitempty"`
}

// Permits reports whether the call (pre-call) or its output (post-call)
// goes ahead under the decision's action, shadow mode aside.
func (d Decision) Permits() bool { return d.Action.Permits() }

// Proceeds reports whether the call or output goes ahead: always in shadow
// mode, otherwise when the action permits it.
func (d Decision) Proceeds() bool { return !d.Enforced || d.Action.Permits() }

// RedactionRequired reports whether a redact rule made redaction of the
// output mandatory: if the detectors find nothing to remove, the whole
// output is withheld and the reason returned instead (DESIGN.md). A redact
// decision before the call applies to the call's output.
func (d Decision) RedactionRequired() bool { return d.Enforced && d.Action == Redact }

// Rules returns the IDs of the matched rules.
func (d Decision) Rules() []string {
	ids := make([]string, len(d.Matched))
	for i, m := range d.Matched {
		ids[i] = m.Rule
	}
	return ids
}

// Merge combines the decisions of the two stages of one call into the one
// an audit entry records: the more restrictive action, with its reason,
// and every match of both.
func Merge(pre, post Decision) Decision {
	d := pre
	if post.Action.Rank() > pre.Action.Rank() {
		d.Action, d.Reason = post.Action, post.Reason
	}
	d.Stage = PostCall
	d.Enforced = pre.Enforced && post.Enforced
	d.Matched = append(append([]Match{}, pre.Matched...), post.Matched...)
	if d.Error == "" {
		d.Error = post.Error
	}
	return d
}

// reason explains the winning action from the first match that has it.
func reason(stage Stage, action Action, matched []Match) string {
	var m *Match
	for i := range matched {
		if matched[i].Action == action {
			m = &matched[i]
			break
		}
	}
	if m == nil {
		if stage == PostCall {
			return "no output rule matched"
		}
		return "no rule matched"
	}
	var why string
	switch {
	case m.Error != "":
		why = fmt.Sprintf("policy error in %s, failing closed: %s", m.Rule, m.Error)
	case m.Message != "":
		why = m.Message
	case m.Rule == defaultRule:
		why = m.Why
	default:
		why = fmt.Sprintf("%s (%s)", m.Rule, m.Why)
	}
	if action == RequireApproval && m.Error == "" {
		return "approval required: " + why
	}
	return why
}

// defaultRule is the Rule of a Match for a file's default_action.
const defaultRule = "default_action"

func (m Match) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", m.Rule, m.Action)
	if m.Why != "" {
		fmt.Fprintf(&b, " (%s)", m.Why)
	}
	return b.String()
}
