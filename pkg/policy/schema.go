package policy

import (
	"fmt"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// fileSpec is a policy file as written. Every value keeps its position
// (yamlpos `pos` tags) so that later checks report FILE:LINE:COL.
type fileSpec struct {
	DefaultAction    string       `yaml:"default_action"`
	DefaultActionPos yamlpos.Pos  `pos:"default_action"`
	Policies         []policySpec `yaml:"policies"`
}

type policySpec struct {
	Pos         yamlpos.Pos `pos:"."`
	Name        string      `yaml:"name"`
	NamePos     yamlpos.Pos `pos:"name"`
	Description string      `yaml:"description"`
	Enabled     *bool       `yaml:"enabled"`
	Rules       []ruleSpec  `yaml:"rules"`
}

type ruleSpec struct {
	Pos          yamlpos.Pos `pos:"."`
	Name         string      `yaml:"name"`
	NamePos      yamlpos.Pos `pos:"name"`
	Description  string      `yaml:"description"`
	Condition    string      `yaml:"condition"`
	ConditionPos yamlpos.Pos `pos:"condition"`
	Action       string      `yaml:"action"`
	ActionPos    yamlpos.Pos `pos:"action"`
	Limit        string      `yaml:"limit"`
	LimitPos     yamlpos.Pos `pos:"limit"`
	Per          string      `yaml:"per"`
	PerPos       yamlpos.Pos `pos:"per"`
	Message      string      `yaml:"message"`
	Severity     string      `yaml:"severity"`
	SeverityPos  yamlpos.Pos `pos:"severity"`
	Enabled      *bool       `yaml:"enabled"`
}

// Action is what a matching rule does to a call.
type Action string

// The actions, from least to most restrictive. warn and audit have the same
// effect (the call goes ahead and the match is recorded); warn ranks above
// audit only so that a decision names one of them.
const (
	Allow           Action = "allow"
	Audit           Action = "audit"
	Warn            Action = "warn"
	Redact          Action = "redact"
	RequireApproval Action = "require_approval"
	Block           Action = "block"
)

// Actions lists the actions, least restrictive first.
var Actions = []Action{Allow, Audit, Warn, Redact, RequireApproval, Block}

// Rank orders actions by restrictiveness: the most restrictive matching
// action wins. Unknown actions rank as block (fail closed).
func (a Action) Rank() int {
	for i, known := range Actions {
		if a == known {
			return i
		}
	}
	return len(Actions) - 1
}

// Permits reports whether the call (or, after the call, its output) goes
// ahead under the action: everything but block and require_approval.
// Under redact the output goes ahead only redacted.
func (a Action) Permits() bool {
	return a.Rank() < RequireApproval.Rank()
}

func parseAction(s string) (Action, error) {
	for _, a := range Actions {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("unknown action %q (want one of %s)", s, actionList())
}

func actionList() string {
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// Severity grades a rule for audit and alerting; it does not change the
// decision.
type Severity string

// The severities. The empty severity means none was given.
const (
	Low      Severity = "low"
	Medium   Severity = "medium"
	High     Severity = "high"
	Critical Severity = "critical"
)

func parseSeverity(s string) (Severity, error) {
	switch Severity(s) {
	case Low, Medium, High, Critical:
		return Severity(s), nil
	}
	return "", fmt.Errorf("unknown severity %q (want low, medium, high or critical)", s)
}

// Stage says when a rule runs: before the tool (pre-call), or after it on
// its output (post-call; the rules whose condition uses `output`).
type Stage int

// The stages.
const (
	PreCall Stage = iota
	PostCall
)

func (s Stage) String() string {
	if s == PostCall {
		return "post_call"
	}
	return "pre_call"
}

// MarshalText writes "pre_call" or "post_call".
func (s Stage) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads "pre_call" or "post_call".
func (s *Stage) UnmarshalText(b []byte) error {
	switch string(b) {
	case "pre_call":
		*s = PreCall
	case "post_call":
		*s = PostCall
	default:
		return fmt.Errorf("unknown stage %q", b)
	}
	return nil
}
