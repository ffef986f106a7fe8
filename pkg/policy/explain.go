package policy

import (
	"context"
	"fmt"
)

// Explanation is a decision with the evaluation of every rule behind it.
type Explanation struct {
	// Decision merges both stages (see Merge).
	Decision Decision `json:"decision"`
	PreCall  Decision `json:"pre_call"`
	// PostCall is nil when no output was given or the call did not go
	// ahead.
	PostCall *Decision   `json:"post_call,omitempty"`
	Rules    []RuleTrace `json:"rules"`
}

// RuleTrace is what became of one rule.
type RuleTrace struct {
	Rule      string `json:"rule"`
	Stage     Stage  `json:"stage"`
	Action    Action `json:"action"`
	Condition string `json:"condition"`
	Source    string `json:"source"`
	Limit     string `json:"limit,omitempty"`
	// Evaluated is false for disabled rules and for post-call rules when
	// there was no output to evaluate.
	Evaluated bool `json:"evaluated"`
	// ConditionTrue is the condition's value.
	ConditionTrue bool `json:"condition_true"`
	// Used is, for a rate-limited rule whose condition held, the calls
	// already counted in the window.
	Used *int `json:"used,omitempty"`
	// Matched is whether the rule's action applied.
	Matched bool   `json:"matched"`
	Result  string `json:"result"`
	Error   string `json:"error,omitempty"`
}

// Explain evaluates a call as PreCall and then, when output is not nil and
// the call goes ahead, PostCall would, and reports every rule's part. It
// counts the call in rate limits like PreCall does: explain against a
// scratch counter (ratelimit.NewMemory) to leave real counters alone.
func (e *Engine) Explain(ctx context.Context, call *Call, output *string) Explanation {
	set := e.set.Load()
	traces := map[*Rule]*RuleTrace{}
	for _, r := range set.Rules() {
		t := &RuleTrace{Rule: r.ID, Stage: r.Stage, Action: r.Action, Condition: r.Condition, Source: r.source}
		if r.Limit != nil {
			t.Limit = r.Limit.String()
		}
		switch {
		case !r.Enabled:
			t.Result = "disabled"
		case r.Stage == PostCall:
			t.Result = "not evaluated: uses output, which runs after the call (no output given)"
		default:
			t.Result = "not evaluated"
		}
		traces[r] = t
	}
	x := Explanation{}
	x.PreCall = e.decide(ctx, PreCall, call, "", traces)
	x.Decision = x.PreCall
	switch {
	case output == nil:
	case !x.PreCall.Proceeds():
		for r, t := range traces {
			if r.Stage == PostCall && r.Enabled {
				t.Result = "not evaluated: the call was refused before it ran"
			}
		}
	default:
		post := e.decide(ctx, PostCall, call, *output, traces)
		x.PostCall = &post
		x.Decision = Merge(x.PreCall, post)
	}
	for _, r := range set.Rules() {
		x.Rules = append(x.Rules, *traces[r])
	}
	return x
}

func (st *evalState) traceEval(r *Rule, ok bool, err error) {
	t := st.trace[r]
	if t == nil {
		return
	}
	t.Evaluated, t.ConditionTrue = true, ok && err == nil
	switch {
	case err != nil:
		t.Matched, t.Error = true, evalError(err).Error()
		t.Result = "evaluation error: blocks (fail closed)"
	case !ok:
		t.Result = "condition is false"
	case r.Limit != nil:
		t.Result = "condition is true; limit not checked"
	default:
		t.Matched, t.Result = true, "condition is true: "+string(r.Action)
	}
}

func (st *evalState) traceLimit(r *Rule, used int, full bool) {
	t := st.trace[r]
	if t == nil {
		return
	}
	t.Used = &used
	if full {
		t.Matched = true
		t.Result = fmt.Sprintf("condition is true and the limit %s is reached (%d calls in the window): %s", r.Limit, used, r.Action)
	} else {
		t.Result = fmt.Sprintf("condition is true but under the limit %s (%d calls in the window): counted if the call goes ahead", r.Limit, used)
	}
}
