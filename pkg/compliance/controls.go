package compliance

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/redact"
)

// Frameworks a report can be made for.
const (
	SOC2  = "soc2"
	HIPAA = "hipaa"
)

// Control is one requirement of a framework, mapped to what agentmesh
// enforces and records.
type Control struct {
	ID        string // "CC6.1-scopes", "164.312(b)"
	Framework string // SOC2 | HIPAA
	Ref       string // where the framework states it
	Title     string
	Objective string // what the control requires, and how agentmesh meets it
	// Evidence are the audit entries that show the control operating.
	// The control passes when every Required piece has entries and at
	// least one piece has any.
	Evidence []Evidence
	// Verification requires a full verification of the log in the
	// period that passed, signed, with the root of the signed checkpoint
	// of its size, and no failed verification left uncleared.
	Verification bool
	// AppliesTo, when set, makes the control not applicable to a period
	// in which no entry matches it and no evidence was found (no upstream
	// served: nothing to pin).
	AppliesTo *Match
}

// Evidence is one kind of audit entry that shows a control operating.
type Evidence struct {
	ID    string
	Title string
	Match Match
	// Required: the control has no evidence without entries of this kind.
	Required bool
	// Baseline: the newest matching entry before the period counts too:
	// it is what was in force when the period began (the policy loaded,
	// the identity key, the pinned tool definitions).
	Baseline bool
	// FirstEntry: the evidence is the log's first entry (seq 0), whatever
	// the period: the log has kept everything since it began.
	FirstEntry bool
	// By counts the entries by a member: "action", "result", "rule",
	// "caller.kind" or "tool".
	By string
}

// Match selects audit entries: every non-empty field must hold.
type Match struct {
	Actions []audit.Action // one of them
	Results []audit.Result // one of them
	Rules   []string       // the entry lists one of them
	Where   Condition
}

// Condition is a test on an entry's members beyond action, result and
// rules.
type Condition string

// Conditions.
const (
	// Caller: the entry names who made the call.
	Caller Condition = "caller"
	// Revoked: a trust change that left the subject revoked
	// (details.revoked).
	Revoked Condition = "revoked"
	// RateLimited: a call refused by a rate limit
	// (details.trust_event.kind rate_limited).
	RateLimited Condition = "rate-limited"
	// Scored: the entry carries the trust score after the call.
	Scored Condition = "scored"
	// ReloadFailed: a policy reload refused because it failed validation
	// (details.error).
	ReloadFailed Condition = "reload-failed"
	// PHIOutput: an output the PHI detectors redacted (the reason names
	// one of their rules).
	PHIOutput Condition = "phi-output"
	// PHIParams: params stored with PHI redacted ([REDACTED:<PHI rule>]).
	PHIParams Condition = "phi-params"
	// Upstream: a call forwarded to an upstream MCP server.
	Upstream Condition = "upstream"
)

var conditionText = map[Condition]string{
	Caller:       "names its caller",
	Revoked:      "details.revoked is true",
	RateLimited:  "refused by a rate limit (details.trust_event.kind rate_limited)",
	Scored:       "carries trust_score",
	ReloadFailed: "details.error is set (the reload failed validation; the last good policy stayed)",
	PHIOutput:    "the reason names a PHI detector (" + strings.Join(redact.PHIRules(), ", ") + ")",
	PHIParams:    "params hold [REDACTED:<PHI detector>]",
	Upstream:     "names an upstream",
}

// String describes the match for reports and documentation.
func (m Match) String() string {
	var parts []string
	if len(m.Actions) > 0 {
		parts = append(parts, "action "+joinAny(m.Actions))
	}
	if len(m.Results) > 0 {
		parts = append(parts, "result "+joinAny(m.Results))
	}
	if len(m.Rules) > 0 {
		parts = append(parts, "rules include "+strings.Join(m.Rules, " or "))
	}
	if m.Where != "" {
		parts = append(parts, conditionText[m.Where])
	}
	if len(parts) == 0 {
		return "any entry"
	}
	return strings.Join(parts, "; ")
}

func joinAny[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, " or ")
}

// Matches reports whether e is selected.
func (m Match) Matches(e *audit.Entry) bool {
	if len(m.Actions) > 0 && !contains(m.Actions, e.Action) || len(m.Results) > 0 && !contains(m.Results, e.Result) {
		return false
	}
	if len(m.Rules) > 0 {
		found := false
		for _, r := range e.Rules {
			if contains(m.Rules, r) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return m.Where == "" || m.Where.holds(e)
}

func contains[T comparable](xs []T, x T) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (c Condition) holds(e *audit.Entry) bool {
	switch c {
	case Caller:
		return e.Caller != nil && e.Caller.ID != ""
	case Scored:
		return e.TrustScore != nil
	case Upstream:
		return e.Upstream != ""
	case Revoked, RateLimited, ReloadFailed:
		var d struct {
			Revoked    bool            `json:"revoked"`
			Error      json.RawMessage `json:"error"`
			TrustEvent struct {
				Kind string `json:"kind"`
			} `json:"trust_event"`
		}
		if len(e.Details) == 0 || json.Unmarshal(e.Details, &d) != nil {
			return false
		}
		switch c {
		case Revoked:
			return d.Revoked
		case RateLimited:
			return d.TrustEvent.Kind == "rate_limited"
		default:
			return len(d.Error) > 0 && string(d.Error) != "null"
		}
	case PHIOutput:
		for _, r := range redact.PHIRules() {
			if strings.Contains(e.Reason, r) {
				return true
			}
		}
	case PHIParams:
		for _, r := range redact.PHIRules() {
			if bytes.Contains(e.Params, []byte("[REDACTED:"+r+"]")) {
				return true
			}
		}
	}
	return false
}

// Audit actions grouped for the catalogue.
var (
	lifecycleActions = []audit.Action{audit.ActionIdentityCreated, audit.ActionKeyRotated, audit.ActionCredentialIssued,
		audit.ActionPolicyLoaded, audit.ActionTrustChanged, audit.ActionTrustReset, audit.ActionToolDefinitionChanged,
		audit.ActionToolApproved, audit.ActionAPIKeyCreated, audit.ActionAPIKeyRevoked}
	calls    = []audit.Action{audit.ActionToolInvocation}
	refused  = []audit.Result{audit.ResultBlocked}
	upstream = Match{Where: Upstream}
)

// Pieces of evidence shared by both frameworks.
var (
	evCredentials = Evidence{ID: "credentials", Title: "Credentials issued with their capability scopes",
		Match: Match{Actions: []audit.Action{audit.ActionCredentialIssued}}, Required: true, Baseline: true}
	evScopeRefusals = Evidence{ID: "scope-refusals", Title: "Calls refused outside the granted scopes",
		Match: Match{Actions: calls, Results: refused, Rules: []string{"builtin:scope", "builtin:caller-scope"}}, By: "rule"}
	evAttributed = Evidence{ID: "attributed-calls", Title: "Governed calls attributed to an authenticated caller",
		Match: Match{Actions: calls, Where: Caller}, Required: true, By: "caller.kind"}
	evCredentialRefusals = Evidence{ID: "credential-refusals", Title: "Calls refused for a missing, expired or invalid credential",
		Match: Match{Actions: calls, Results: refused, Rules: []string{"builtin:credential"}}}
	evKeysRevoked = Evidence{ID: "api-keys-revoked", Title: "API keys revoked",
		Match: Match{Actions: []audit.Action{audit.ActionAPIKeyRevoked}}}
	evTrustRevocations = Evidence{ID: "trust-revocations", Title: "Callers revoked by their trust score",
		Match: Match{Actions: []audit.Action{audit.ActionTrustChanged}, Where: Revoked}}
	evRefusedRevoked = Evidence{ID: "refused-while-revoked", Title: "Calls refused while the caller was revoked",
		Match: Match{Actions: calls, Results: refused, Rules: []string{"builtin:trust-revoked"}}}
)

// Catalogue is every control, SOC 2 first, in report order.
var Catalogue = []Control{
	{ID: "CC6.1-scopes", Framework: SOC2, Ref: "TSC 2017 CC6.1, CC6.3", Title: "Logical access: capability scopes",
		Objective: "Access to tools and data is limited to what the server's short-lived signed credentials grant, and calls outside those scopes are refused.",
		Evidence:  []Evidence{evCredentials, evScopeRefusals}},
	{ID: "CC6.1-authentication", Framework: SOC2, Ref: "TSC 2017 CC6.1", Title: "Logical access: authentication",
		Objective: "Every governed call is attributed to an authenticated caller (OAuth principal, API key, mutual TLS, or the local OS user over stdio); calls without a valid credential are refused.",
		Evidence: []Evidence{evAttributed, evCredentialRefusals,
			{ID: "api-keys-created", Title: "API keys created for service callers", Match: Match{Actions: []audit.Action{audit.ActionAPIKeyCreated}}}}},
	{ID: "CC6.2-revocation", Framework: SOC2, Ref: "TSC 2017 CC6.2", Title: "Logical access: revocation",
		Objective: "Access is removed when it must be: API keys revoked by an operator, callers revoked when their trust score falls below the threshold, and their later calls refused.",
		Evidence:  []Evidence{evKeysRevoked, evTrustRevocations, evRefusedRevoked}},
	{ID: "CC8.1-policy", Framework: SOC2, Ref: "TSC 2017 CC8.1", Title: "Change management: policy",
		Objective: "Every policy in force is recorded when it is loaded (with its files' SHA-256), and a reload that fails validation is refused and recorded while the last good policy stays in force.",
		Evidence: []Evidence{
			{ID: "policy-loads", Title: "Policies loaded (the newest before the period: the policy in force when it began)", Match: Match{Actions: []audit.Action{audit.ActionPolicyLoaded}}, Baseline: true},
			{ID: "failed-reloads", Title: "Reloads refused because they failed validation", Match: Match{Actions: []audit.Action{audit.ActionPolicyLoaded}, Where: ReloadFailed}}}},
	{ID: "CC8.1-tools", Framework: SOC2, Ref: "TSC 2017 CC8.1", Title: "Change management: tool approvals",
		Objective: "Upstream tool definitions are pinned on first sight; a changed definition is refused until an operator reviews and approves it.",
		Evidence: []Evidence{
			{ID: "definition-changes", Title: "Tool definitions pinned or changed", Match: Match{Actions: []audit.Action{audit.ActionToolDefinitionChanged}}, Baseline: true},
			{ID: "approvals", Title: "Tool definitions approved by an operator", Match: Match{Actions: []audit.Action{audit.ActionToolApproved}}, Baseline: true, By: "tool"}},
		AppliesTo: &upstream},
	{ID: "CC8.1-keys", Framework: SOC2, Ref: "TSC 2017 CC8.1, CC6.1", Title: "Change management: key rotations",
		Objective: "Key changes are recorded: the identity key created or rotated (the old key signs the hand-over) and API keys created or revoked.",
		Evidence: []Evidence{
			{ID: "identity-keys", Title: "Identity key created or rotated (the newest before the period: the key in force when it began)", Match: Match{Actions: []audit.Action{audit.ActionIdentityCreated, audit.ActionKeyRotated}}, Baseline: true, By: "action"},
			{ID: "api-keys", Title: "API keys created or revoked", Match: Match{Actions: []audit.Action{audit.ActionAPIKeyCreated, audit.ActionAPIKeyRevoked}}, By: "action"}}},
	{ID: "CC7.2-verification", Framework: SOC2, Ref: "TSC 2017 CC7.2, CC7.3", Title: "Monitoring: audit log verification",
		Objective:    "The audit log is verified: a full verification passed in the period (its record signed with the identity key, its root the signed checkpoint's), and every failure was cleared by a later full verification.",
		Verification: true},
	{ID: "CC7.2-anomalies", Framework: SOC2, Ref: "TSC 2017 CC7.2, CC7.3", Title: "Monitoring: trust revocations and rate limits",
		Objective: "Anomalous use is detected and acted on: every call is scored, and trust revocations, operator resets and rate-limit hits are recorded.",
		Evidence: []Evidence{
			{ID: "scored-calls", Title: "Calls scored by the trust model", Match: Match{Actions: calls, Where: Scored}, Required: true, By: "result"},
			evTrustRevocations,
			{ID: "trust-resets", Title: "Operator resets of a revoked or lowered score", Match: Match{Actions: []audit.Action{audit.ActionTrustReset}}},
			{ID: "rate-limit-hits", Title: "Calls refused by a rate limit", Match: Match{Actions: calls, Results: refused, Where: RateLimited}, By: "rule"}}},

	{ID: "164.312(a)(1)", Framework: HIPAA, Ref: "45 CFR 164.312(a)(1)", Title: "Access control",
		Objective: "Only authorized callers reach tools and data: scoped, short-lived credentials; calls outside them refused; access revoked when trust is lost.",
		Evidence:  []Evidence{evCredentials, evScopeRefusals, evRefusedRevoked, evKeysRevoked}},
	{ID: "164.312(b)", Framework: HIPAA, Ref: "45 CFR 164.312(b)", Title: "Audit controls",
		Objective: "Activity is recorded in a tamper-evident log: every governed call and every lifecycle event, under signed checkpoints.",
		Evidence: []Evidence{
			{ID: "calls", Title: "Governed calls recorded", Match: Match{Actions: calls}, Required: true, By: "result"},
			{ID: "lifecycle", Title: "Lifecycle events recorded (keys, credentials, policies, trust, tools, API keys)", Match: Match{Actions: lifecycleActions}, By: "action"}}},
	{ID: "164.312(c)(1)", Framework: HIPAA, Ref: "45 CFR 164.312(c)(1), (c)(2)", Title: "Integrity",
		Objective:    "Audit records are protected from improper alteration or destruction, and that is checked: a full verification passed in the period (signed record, root of the signed checkpoint), no failure left uncleared.",
		Verification: true},
	{ID: "164.312(d)", Framework: HIPAA, Ref: "45 CFR 164.312(d)", Title: "Person or entity authentication",
		Objective: "Every call is attributed to an authenticated caller; calls without a valid credential are refused.",
		Evidence:  []Evidence{evAttributed, evCredentialRefusals}},
	{ID: "164.514(b)", Framework: HIPAA, Ref: "45 CFR 164.502(b), 164.514(b)(2)", Title: "PHI kept out of outputs and the audit log",
		Objective: "Protected health information (SSNs, dates of birth, medical record and health plan numbers, diagnoses of a person) is redacted from tool outputs before they reach the model and from params before they are logged; what cannot be scanned is withheld.",
		Evidence: []Evidence{
			{ID: "phi-outputs", Title: "Outputs with PHI redacted", Match: Match{Actions: calls, Results: []audit.Result{audit.ResultRedacted}, Where: PHIOutput}, By: "tool"},
			{ID: "phi-params", Title: "Params logged with PHI redacted", Match: Match{Where: PHIParams}, By: "tool"},
			{ID: "withheld", Title: "Outputs withheld (not scannable, or a redact rule with nothing to remove)", Match: Match{Actions: calls, Results: []audit.Result{audit.ResultWithheld}}, By: "tool"}}},
	{ID: "164.316(b)(2)", Framework: HIPAA, Ref: "45 CFR 164.316(b)(2)(i)", Title: "Retention",
		Objective: "Audit records are kept at least six years: agentmesh never deletes entries, the log still begins with its first entry, and a full verification shows nothing was removed since (audit.retention declares the minimum; it cannot be set below 6y under hipaa).",
		Evidence: []Evidence{
			{ID: "first-entry", Title: "The log's first entry, still in place", FirstEntry: true, Required: true}}},
}

// Controls returns a framework's controls in report order.
func Controls(framework string) []Control {
	var out []Control
	for _, c := range Catalogue {
		if c.Framework == framework {
			out = append(out, c)
		}
	}
	return out
}
