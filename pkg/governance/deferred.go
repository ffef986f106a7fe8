package governance

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Deferred calls (MCP 2025-11-25, "Utilities: Tasks"): a tool may accept a
// call as a task and return its result later. The call is admitted once,
// like any other (credential, scope, trust, pre-call policy, write-ahead
// intent for a call that can change the world), and audited when it is
// accepted (result allowed, details.task naming the task). Its result,
// when fetched, passes the same post-call governance as a synchronous
// call's (output cap, post-call policy, redaction of every block and of
// structuredContent) under the decision taken at admission, and is audited
// again: a tool_invocation entry with the outcome, details.task, and the
// intent's seq in "intent" when there was one. Admission is not run again,
// so a rate limit counts the call once.

// Deferred is a call a tool accepted as a task.
type Deferred struct {
	call     Call
	pc       *policy.Call
	pre      policy.Decision
	acc      tools.Access
	ahead    *audit.Entry
	approved string

	mu   sync.Mutex
	task string
}

type deferKey struct{}

// Defer tells the pipeline governing ctx's call that the tool accepted it
// as task id. It returns the call's Deferred, for TaskResult; nil when ctx
// is not a governed call (nothing may then be deferred).
func Defer(ctx context.Context, id string) *Deferred {
	d, _ := ctx.Value(deferKey{}).(*Deferred)
	if d == nil || id == "" {
		return nil
	}
	d.mu.Lock()
	d.task = id
	d.mu.Unlock()
	return d
}

func (d *Deferred) taskID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.task
}

// Tool is the name the client called.
func (d *Deferred) Tool() string { return d.call.Tool }

// Intent is the seq of the call's write-ahead intent entry; ok is false
// when the call had none (a read-only tool).
func (d *Deferred) Intent() (seq uint64, ok bool) {
	if d.ahead == nil {
		return 0, false
	}
	return d.ahead.Seq, true
}

// accepted is the outcome of a call accepted as a task.
func (p *Pipeline) accepted(d *Deferred) outcome {
	o := outcome{result: audit.ResultAllowed, access: d.acc.String(), rules: d.pre.Rules(), event: trust.Event{Kind: trust.Allowed}, task: d.taskID(),
		reason: fmt.Sprintf("accepted as task %s; its result is governed when fetched", d.taskID())}
	if r := matchedReason(d.pre); r != "" {
		o.reason += ": " + r
	}
	if d.approved != "" {
		o.rules = append(o.rules, "builtin:user-approval")
		o.reason += "; " + d.approved
	}
	if !d.pre.Enforced {
		o.enforce = ptr(false)
	}
	return o
}

// TaskResult governs the deferred result of d, which fetch obtains from
// the tool: the same post-call governance as a synchronous call's result,
// and one audit entry with the outcome. The error is non-nil only when the
// result must become a JSON-RPC error (as for Run).
func (p *Pipeline) TaskResult(ctx context.Context, d *Deferred, fetch Next) (*mcp.CallToolResult, error) {
	start := p.opts.Now()
	c := d.call
	ctx, ob := p.observe(ctx, c)
	o, res := p.deferredOutcome(ctx, d, fetch, ob)
	o.task = d.taskID()
	o.ahead = d.ahead
	ob.decidedNow()
	return p.record(ctx, c, start, o, res, ob)
}

func (p *Pipeline) deferredOutcome(ctx context.Context, d *Deferred, fetch Next, ob *callObs) (outcome, *mcp.CallToolResult) {
	c := d.call
	tctx, end := ob.phase(ctx, "tasks/result "+c.Tool)
	res, err := fetch(tctx)
	end(err)
	if err != nil {
		o := outcome{result: audit.ResultError, access: d.acc.String(), event: trust.Event{Kind: trust.Neutral},
			reason: fmt.Sprintf("the result of task %s of %s could not be fetched: %v", d.taskID(), c.Tool, err)}
		return o, mcp.NewToolResultError(o.reason)
	}
	if res == nil {
		res = mcp.NewToolResultText("")
	}
	o, out := p.afterCall(ctx, c, d.pc, d.pre, res, d.acc)
	// The call was scored when it was accepted.
	if o.event.Kind == trust.Allowed {
		o.event = trust.Event{Kind: trust.Neutral}
	}
	if d.approved != "" {
		o.rules = append(o.rules, "builtin:user-approval")
		o.reason = strings.TrimSuffix(d.approved+"; "+o.reason, "; ")
	}
	return o, out
}
