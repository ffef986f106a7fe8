package governance

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Explanation is what serve would decide for a call, and which layer
// decided, without running its tool (`agentmesh policy explain`).
type Explanation struct {
	// Result is what the audit entry would say: allowed, blocked,
	// redacted, withheld or error.
	Result audit.Result `json:"result"`
	// Layer is the layer that decided (Layer*), "" when the call goes
	// ahead untouched.
	Layer  string   `json:"layer,omitempty"`
	Reason string   `json:"reason,omitempty"`
	Rules  []string `json:"rules"`
	// Access is what the call touches, as the scope check sees it.
	Access string `json:"access,omitempty"`
	// Trust is the event the call would record (what it costs).
	Trust trust.Event `json:"trust"`
	// WriteAhead: the call can change the world, so its intent would be
	// logged before the tool runs.
	WriteAhead bool `json:"write_ahead,omitempty"`
	// PreCall and PostCall are the policy decisions, when the call got
	// that far (PostCall only with an output to judge).
	PreCall  *policy.Decision `json:"pre_call,omitempty"`
	PostCall *policy.Decision `json:"post_call,omitempty"`
}

// Explain runs the same decision path as a served call up to the tool
// (tool known, trust, credential, the tool's own guards, secrets, scope,
// pre-call policy) and, when output is not nil, what happens to that
// output (post-call policy, redaction, withholding), without running the
// tool or writing anything. Give it a Pipeline whose policy engine counts
// rate limits in a scratch counter, or the explanation consumes them.
func (p *Pipeline) Explain(ctx context.Context, c Call, output *string) Explanation {
	a := p.admit(ctx, c)
	if a.refused != nil {
		return explanation(*a.refused, a.layer)
	}
	pre := a.pre
	x := Explanation{Result: audit.ResultAllowed, Access: a.acc.String(), WriteAhead: a.acc.Changes, PreCall: &pre, Rules: []string{},
		Trust: trust.Event{Kind: trust.Allowed}}
	if !pre.Proceeds() {
		o := p.policyOutcome(pre, p.opts.Now(), c, a.acc.Target)
		o.access = a.acc.String()
		x2 := explanation(o, LayerPolicy)
		x2.PreCall, x2.WriteAhead = &pre, false
		return x2
	}
	x.Rules, x.Reason = pre.Rules(), matchedReason(pre)
	if output == nil {
		return x
	}
	post := p.opts.Policy.PostCall(ctx, a.pc, *output)
	o, _ := p.afterCall(ctx, c, a.pc, pre, mcp.NewToolResultText(*output), a.acc)
	x2 := explanation(o, "")
	x2.PreCall, x2.PostCall, x2.WriteAhead = &pre, &post, a.acc.Changes
	if o.result != audit.ResultAllowed {
		x2.Layer = LayerOutput
	}
	return x2
}

func explanation(o outcome, layer string) Explanation {
	rules := o.rules
	if rules == nil {
		rules = []string{}
	}
	return Explanation{Result: o.result, Layer: layer, Reason: o.reason, Rules: rules, Access: o.access, Trust: o.event}
}
