// Package governance is the pipeline every tool call passes through, the
// same for built-in tools, proxied upstream tools and tools a Go author
// registers on their own mcp-go server (see Example):
//
//	credential valid → capability scope covers the call → trust not revoked
//	→ pre-call policy (access, rate limits, trust) → the tool
//	→ post-call policy and redaction (every content block and the
//	  structured content; output size cap)
//	→ one transaction: durable audit append + trust update → result
//
// A denial at any step skips to the audit append and becomes a tool result
// with isError set and the reason, so the model can adapt. If the audit
// append fails, the call's result is withheld and the call refused: nothing
// happens that the log does not show (fail closed).
package governance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Credentials supplies the current credential; *identity.Rotator is one.
type Credentials interface {
	Current() (*identity.Credential, error)
}

// Options configure a Pipeline.
type Options struct {
	Agent       string // the server's DID
	Credentials Credentials
	Policy      *policy.Engine
	// Redactor scans outputs (RedactOutputs) and params before they are
	// logged (RedactParams). Nil disables both, except that a redact rule
	// still withholds outputs it cannot have redacted (fail closed).
	Redactor      *redact.Redactor
	RedactOutputs bool
	RedactParams  bool
	// Ledger records every call with its trust update and reads trust
	// states.
	Ledger Ledger
	// BatchedAudit is the relaxed durability mode (audit.batch_window):
	// a call's result is returned once its entry is queued, not committed;
	// the log commits queued entries every window. If such a commit
	// fails, every later call is refused.
	BatchedAudit bool
	// TrustModel scores behaviour (thresholds, repeat window).
	TrustModel trust.Model
	// KeepWhenRevoked lists tools still allowed while trust is revoked.
	KeepWhenRevoked []string
	Shadow          bool
	MaxOutputBytes  int
	MaxParamBytes   int
	// Approver asks the client's user about calls a require_approval rule
	// holds (MCP elicitation); nil, or a client that cannot ask, leaves
	// them refused with "approval required".
	Approver Approver
	// CallerScopes returns the capability scopes an authenticated caller
	// is granted (auth.scope_map over the token's scopes and claims); a
	// call then needs both the credential's scope and one of these. ok is
	// false where no mapping applies (the local user, no auth configured).
	CallerScopes func(c *caller.Caller) (set scope.Set, ok bool)
	// Console receives one line per call (stderr in serve); nil for none.
	Console Console
	// Metrics, when set, count and time every call (pkg/metrics).
	Metrics *metrics.Metrics
	// Tracer, when set, traces every call (observe.go); nil: no spans and
	// no cost.
	Tracer trace.Tracer
	Now    func() time.Time
}

// Pipeline governs calls.
type Pipeline struct {
	opts Options
}

// New returns a pipeline.
func New(opts Options) *Pipeline {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxOutputBytes <= 0 {
		opts.MaxOutputBytes = 1 << 20
	}
	if opts.MaxParamBytes <= 0 {
		opts.MaxParamBytes = audit.DefaultParamsCap
	}
	return &Pipeline{opts: opts}
}

// Call is one tool call as the pipeline sees it.
type Call struct {
	// Tool is the name the client used.
	Tool   string
	Args   map[string]any
	Client string
	// Access says what the call touches (tools.Tool.Access for built-in
	// tools); nil means the tool is unknown.
	Access func(args map[string]any) (tools.Access, error)
	// Proxy fields (DESIGN.md, policy environment).
	Upstream, UpstreamTool, Method, URI string
	// kind is the kind and action of every call of the tool, when known
	// without arguments (Route.Kind), for listings.
	kind *tools.Access
}

// ApprovalRequest is what a user is asked to approve.
type ApprovalRequest struct {
	Tool, Upstream string
	Params         string // redacted JSON, at most ~500 bytes
	Reason         string // the policy's reason ("approval required: ...")
}

// ApprovalAnswer is the user's answer.
type ApprovalAnswer struct {
	Approved bool
	Action   string // accept, decline or cancel (MCP elicitation)
}

// Approver asks a human to approve one call.
type Approver interface {
	Approve(ctx context.Context, r ApprovalRequest) (ApprovalAnswer, error)
}

// ErrApprovalUnsupported: the client cannot ask its user.
var ErrApprovalUnsupported = errors.New("the client does not support elicitation")

// Next runs the tool itself.
type Next func(ctx context.Context) (*mcp.CallToolResult, error)

// outcome is what the pipeline decided, on its way to the audit log.
type outcome struct {
	result  audit.Result
	reason  string
	rules   []string
	event   trust.Event
	enforce *bool
	access  string
	// ahead is the call's write-ahead intent entry, when the tool could
	// change the world and was let run.
	ahead *audit.Entry
	// target is what the call was about, for the console (redacted).
	target string
	// limitRule is the rule whose limit refused the call (metrics).
	limitRule string
	// task is the id of the task the call was accepted as, or whose
	// deferred result this is (deferred.go).
	task string
}

// Run governs one call. The returned result is what the client sees; the
// error is non-nil only when the call must become a JSON-RPC error (never
// for policy denials, which are tool results with isError).
func (p *Pipeline) Run(ctx context.Context, c Call, next Next) (*mcp.CallToolResult, error) {
	start := p.opts.Now()
	ctx, ob := p.observe(ctx, c)
	o, res := p.decide(ctx, c, start, next, ob)
	ob.decidedNow()
	return p.record(ctx, c, start, o, res, ob)
}

// record appends the entry of a decided call (the audit append and the
// trust update in one transaction) and returns what the client sees.
func (p *Pipeline) record(ctx context.Context, c Call, start time.Time, o outcome, res *mcp.CallToolResult, ob *callObs) (*mcp.CallToolResult, error) {
	// Every text that is stored or shown is redacted: a refusal's reason
	// may repeat the URL or argument it refuses, secrets included.
	o.reason = p.redactText(context.WithoutCancel(ctx), o.reason)
	o.access = p.redactText(context.WithoutCancel(ctx), o.access)
	o.target = p.redactText(context.WithoutCancel(ctx), targetOf(c))
	// A cancelled call is recorded like any other: its params are scanned
	// under the redactor's own time bound, not the call's context.
	entry := p.entry(context.WithoutCancel(ctx), c, start, o)
	if o.ahead != nil {
		// The outcome names its intent, whose params it repeats.
		entry.Intent = &o.ahead.Seq
		entry.Params, entry.ParamsDigest = o.ahead.Params, o.ahead.ParamsDigest
	}
	// The entry is written even if the client went away meanwhile: the
	// tool may already have acted.
	var logged audit.Entry
	var err error
	actx, end := ob.phase(context.WithoutCancel(ctx), "audit.commit")
	if p.opts.BatchedAudit {
		err = p.opts.Ledger.Enqueue(actx, entry, &o.event)
	} else {
		logged, err = p.opts.Ledger.Append(actx, entry, &o.event)
	}
	end(err)
	if err != nil {
		ob.done(c, o, string(audit.ResultError))
		// Fail closed: the log does not show this call, so its result is
		// not returned.
		p.console(c, o, entry.Caller, audit.Entry{}, fmt.Errorf("audit append failed: %w", err))
		return mcp.NewToolResultError(fmt.Sprintf("agentmesh: call refused: the audit log could not record it (%v)", err)), nil
	}
	p.console(c, o, entry.Caller, logged, nil)
	ob.done(c, o, string(o.result))
	return res, nil
}

// Layers of the pipeline, as Explain names them.
const (
	LayerTool       = "tool"       // the tool, resource or prompt is unknown
	LayerTrust      = "trust"      // access revoked, or the trust state unreadable
	LayerCredential = "credential" // no valid credential
	LayerGuard      = "guard"      // the tool's own guard (builtin:<check>)
	LayerSecret     = "secret"     // secrets would be sent out
	LayerScope      = "scope"      // the credential does not grant it
	LayerPolicy     = "policy"     // a pre-call policy rule
	LayerOutput     = "output"     // post-call policy, redaction, output cap
)

// admission is what the steps before the tool decided about a call.
type admission struct {
	// refused is the outcome when a layer refused the call before the
	// policy (layer names it).
	refused *outcome
	layer   string
	acc     tools.Access
	cred    *identity.Credential
	st      trust.State
	pc      *policy.Call
	pre     policy.Decision
}

// admit runs every check that precedes the tool: the tool is known, trust
// not revoked, a valid credential, the tool's own guards (which decide
// without acting), no secrets sent out, the credential's scope, and the
// pre-call policy. It is what serve and `policy explain` share.
func (p *Pipeline) admit(ctx context.Context, c Call) admission {
	refuse := func(layer string, o outcome) admission { return admission{refused: &o, layer: layer} }
	if c.Access == nil {
		switch c.Method {
		case string(mcp.MethodResourcesRead):
			return refuse(LayerTool, p.mistake(c, c.URI, "builtin:unknown-resource", fmt.Sprintf("unknown resource %q", c.URI)))
		case string(mcp.MethodPromptsGet):
			return refuse(LayerTool, p.mistake(c, c.Tool, "builtin:unknown-prompt", fmt.Sprintf("unknown prompt %q", c.Tool)))
		}
		return refuse(LayerTool, p.mistake(c, c.Tool, "builtin:unknown-tool", fmt.Sprintf("unknown tool %q", c.Tool)))
	}
	// Trust: revocation latches until an operator resets it. Each
	// authenticated caller has its own (trust.Subject).
	who, subject := p.caller(ctx)
	st, err := p.opts.Ledger.Trust(ctx, subject)
	if err != nil && ctx.Err() != nil {
		return refuse(LayerTrust, outcome{result: audit.ResultError, reason: "cancelled by the client before it ran", event: trust.Event{Kind: trust.Neutral}})
	}
	if err != nil {
		return refuse(LayerTrust, outcome{result: audit.ResultError, reason: "trust state unavailable: " + err.Error(), rules: []string{"builtin:trust"}, event: trust.Event{Kind: trust.Neutral}})
	}
	if st.Revoked && !slices.Contains(p.opts.KeepWhenRevoked, c.Tool) {
		return refuse(LayerTrust, outcome{result: audit.ResultBlocked, rules: []string{"builtin:trust-revoked"}, event: trust.Event{Kind: trust.Neutral},
			reason: fmt.Sprintf("access revoked: trust score %d is below %d; an operator must run `agentmesh trust reset%s --reason ...`", st.Score, p.opts.TrustModel.RevokeBelow, resetFlag(subject, p.opts.Agent))})
	}
	// Credential.
	cred, err := p.opts.Credentials.Current()
	if err != nil {
		return refuse(LayerCredential, outcome{result: audit.ResultBlocked, reason: "no valid credential: " + err.Error(), rules: []string{"builtin:credential"},
			event: p.once(trust.Event{Kind: trust.CredentialFailure}, "credential")})
	}
	// The tool's own guards that decide without acting (paths, SSRF,
	// endpoints, statements, languages), before the scope and the policy:
	// what a refusal reveals is named and charged whichever layer would
	// also have refused, and a policy rule reading trust_score cannot
	// hide an attack from trust.
	acc, err := c.Access(c.Args)
	if err != nil {
		o := p.refusal(c, "", err)
		// A secret on its way out says more than the mistake that
		// stopped it (an endpoint off the allowlist).
		if acc.Kind != "" && o.event.Kind != trust.Attack {
			if so, refused := p.exfiltration(ctx, c, acc); refused {
				return refuse(LayerSecret, so)
			}
		}
		return refuse(LayerGuard, o)
	}
	if o, refused := p.exfiltration(ctx, c, acc); refused {
		return refuse(LayerSecret, o)
	}
	now := p.opts.Now()
	if !acc.Public && !cred.Scopes.Allows(now, acc.Kind, acc.Target, acc.Action) {
		return refuse(LayerScope, outcome{result: audit.ResultBlocked, access: acc.String(), rules: []string{"builtin:scope"},
			event:  p.once(trust.Event{Kind: trust.PolicyBlock, Severity: "medium"}, "scope", c.Tool, acc.Target),
			reason: fmt.Sprintf("credential %s does not grant %s (granted: %s)", short(cred.Claims.ID), acc, grants(cred))})
	}
	// The caller's own grant (auth.scope_map): both must allow the call.
	if who != nil && !acc.Public && p.opts.CallerScopes != nil {
		if set, ok := p.opts.CallerScopes(who); ok && !set.Allows(now, acc.Kind, acc.Target, acc.Action) {
			return refuse(LayerScope, outcome{result: audit.ResultBlocked, access: acc.String(), rules: []string{"builtin:caller-scope"},
				event:  p.once(trust.Event{Kind: trust.PolicyBlock, Severity: "medium"}, "caller-scope", c.Tool, acc.Target),
				reason: fmt.Sprintf("caller %s is not granted %s (its token's scopes map to: %s)", who.ID, acc, setString(set))})
		}
	}
	// Pre-call policy.
	pc := &policy.Call{Tool: c.Tool, Params: c.Args, Agent: p.opts.Agent, TrustScore: st.Score, Client: c.Client,
		Upstream: c.Upstream, UpstreamTool: c.UpstreamTool, Method: c.Method, URI: c.URI,
		Caller: CallerEnv(who), Subject: subject}
	return admission{acc: acc, cred: cred, st: st, pc: pc, pre: p.opts.Policy.PreCall(ctx, pc)}
}

// decide runs every step before the audit append and returns the outcome
// and the result for the client.
func (p *Pipeline) decide(ctx context.Context, c Call, start time.Time, next Next, ob *callObs) (outcome, *mcp.CallToolResult) {
	deny := func(o outcome) (outcome, *mcp.CallToolResult) {
		return o, mcp.NewToolResultError(o.reason)
	}
	pctx, end := ob.phase(ctx, "policy")
	a := p.admit(pctx, c)
	end(nil)
	if a.refused != nil {
		return deny(*a.refused)
	}
	acc, cred, pc, pre := a.acc, a.cred, a.pc, a.pre
	now := p.opts.Now()
	approved := ""
	if !pre.Proceeds() {
		o := p.policyOutcome(pre, now, c, acc.Target)
		o.access = acc.String()
		if pre.Action != policy.RequireApproval || pre.Error != "" || p.opts.Approver == nil {
			return deny(o)
		}
		answer, err := p.opts.Approver.Approve(ctx, ApprovalRequest{Tool: c.Tool, Upstream: c.Upstream, Params: p.approvalParams(ctx, c.Args), Reason: pre.Reason})
		switch {
		case errors.Is(err, ErrApprovalUnsupported):
			return deny(o) // the client cannot ask its user: refused
		case err != nil:
			o.reason = fmt.Sprintf("%s; asking the user failed: %v", pre.Reason, err)
			o.event = trust.Event{Kind: trust.Neutral}
			return deny(o)
		case !answer.Approved:
			o.reason = fmt.Sprintf("%s; the user answered %s", pre.Reason, answer.Action)
			o.rules = append(o.rules, "builtin:user-approval")
			o.event = trust.Event{Kind: trust.Neutral} // the user decided, not a violation
			return deny(o)
		}
		approved = fmt.Sprintf("approved by the user (%s)", answer.Action)
	}
	// Write-ahead: a call that can change the world is in the log before
	// it happens; if its intent cannot be recorded, it does not happen.
	var ahead *audit.Entry
	if acc.Changes {
		intent, err := p.writeAhead(ctx, c, start, pre, acc, approved)
		if err != nil {
			return deny(outcome{result: audit.ResultError, access: acc.String(), rules: []string{"builtin:audit"}, event: trust.Event{Kind: trust.Neutral},
				reason: fmt.Sprintf("refused before running: the audit log could not record the call's intent (%v); %s did not run", err, c.Tool)})
		}
		ahead = &intent
	}
	withIntent := func(o outcome, r *mcp.CallToolResult) (outcome, *mcp.CallToolResult) {
		o.ahead = ahead
		return o, r
	}
	// The tool. Where a call lands somewhere else than it asked (a link
	// inside a mount), the tool asks for the same scope check there.
	ctx = tools.WithAccessCheck(ctx, func(a tools.Access) error {
		if !cred.Scopes.Allows(p.opts.Now(), a.Kind, a.Target, a.Action) {
			return fmt.Errorf("credential %s does not grant %s", short(cred.Claims.ID), a)
		}
		return nil
	})
	ob.decidedNow()
	// A tool may accept the call as a task (Defer): its result is
	// governed when it is fetched (TaskResult).
	d := &Deferred{call: c, pc: pc, pre: pre, acc: acc, ahead: ahead, approved: approved}
	ctx = context.WithValue(ctx, deferKey{}, d)
	tctx, end := ob.phase(ctx, "execute_tool "+c.Tool, attribute.String("gen_ai.tool.name", c.Tool))
	res, err := next(tctx)
	end(err)
	if err == nil && d.taskID() != "" {
		return withIntent(p.accepted(d), res)
	}
	if err != nil {
		var ref *tools.Refusal
		if errors.As(err, &ref) {
			o := p.refusal(c, acc.Target, err)
			o.access = acc.String()
			return withIntent(deny(o))
		}
		return withIntent(deny(outcome{result: audit.ResultError, access: acc.String(), reason: fmt.Sprintf("%s failed: %v", c.Tool, err), event: trust.Event{Kind: trust.Neutral}}))
	}
	if res == nil {
		res = mcp.NewToolResultText("")
	}
	o, out := p.afterCall(ctx, c, pc, pre, res, acc)
	if approved != "" {
		o.rules = append(o.rules, "builtin:user-approval")
		o.reason = strings.TrimSuffix(approved+"; "+o.reason, "; ")
	}
	return withIntent(o, out)
}

// writeAhead records, durably and before the tool runs, that a call which
// can change the world was allowed and is about to run: the tool, its
// redacted params, the rules that matched. The call's outcome entry names
// it. Durable in every mode: with audit.batch_window the intent still
// waits for its commit, since what follows cannot be taken back.
func (p *Pipeline) writeAhead(ctx context.Context, c Call, start time.Time, pre policy.Decision, acc tools.Access, approved string) (audit.Entry, error) {
	o := outcome{result: audit.ResultAllowed, access: acc.String(), rules: pre.Rules(), reason: "about to run"}
	if r := matchedReason(pre); r != "" {
		o.reason += ": " + r
	}
	if approved != "" {
		o.rules = append(o.rules, "builtin:user-approval")
		o.reason += "; " + approved
	}
	if !pre.Enforced {
		o.enforce = ptr(false)
	}
	e := p.entry(context.WithoutCancel(ctx), c, start, o)
	e.Action = audit.ActionToolIntent
	return p.opts.Ledger.Append(context.WithoutCancel(ctx), e, nil)
}

// redactText is s with what the detectors find removed (or withheld
// when it cannot be scanned).
func (p *Pipeline) redactText(ctx context.Context, s string) string {
	if s == "" || p.opts.Redactor == nil || !p.opts.RedactParams {
		return s
	}
	r, err := p.opts.Redactor.RedactText(ctx, s)
	if err != nil {
		return "[withheld: could not be scanned for secrets]"
	}
	return r.Text
}

// targetOf names what a call is about, from its arguments: a path, URL,
// query, URI, database or upstream tool (shortened).
func targetOf(c Call) string {
	if c.URI != "" {
		return c.URI
	}
	for _, k := range []string{"path", "url", "query", "uri", "database"} {
		if v, ok := c.Args[k].(string); ok && v != "" {
			return shorten(v, 120)
		}
	}
	if c.UpstreamTool != "" {
		return c.Upstream + "/" + c.UpstreamTool
	}
	return ""
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// approvalParams is what the user is shown of a call's arguments: redacted
// like the audit log's copy, and short.
func (p *Pipeline) approvalParams(ctx context.Context, args map[string]any) string {
	raw, _ := p.params(ctx, args)
	s := string(raw)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// afterCall applies the output size cap, the post-call policy and redaction.
func (p *Pipeline) afterCall(ctx context.Context, c Call, pc *policy.Call, pre policy.Decision, res *mcp.CallToolResult, acc tools.Access) (outcome, *mcp.CallToolResult) {
	o := outcome{result: audit.ResultAllowed, access: acc.String(), event: trust.Event{Kind: trust.Allowed}, rules: pre.Rules(), reason: matchedReason(pre)}
	if !pre.Enforced {
		o.enforce = ptr(false)
	}
	if res.IsError {
		o.result, o.event = audit.ResultError, trust.Event{Kind: trust.Neutral}
		o.reason = "the tool reported an error"
	}
	text, size := outputText(res)
	if size > p.opts.MaxOutputBytes {
		o = outcome{result: audit.ResultBlocked, access: acc.String(), rules: []string{"builtin:output-size"}, event: trust.Event{Kind: trust.Neutral},
			reason: fmt.Sprintf("the output of %s is %d bytes, over the %d-byte limit", c.Tool, size, p.opts.MaxOutputBytes)}
		return o, mcp.NewToolResultError(o.reason)
	}
	post := p.opts.Policy.PostCall(ctx, pc, text)
	o.rules = append(o.rules, post.Rules()...)
	if !post.Enforced {
		o.enforce = ptr(false)
	}
	if !post.Proceeds() && post.Action != policy.Redact {
		po := p.policyOutcome(post, p.opts.Now(), c, acc.Target)
		po.rules, po.access = o.rules, o.access
		return po, mcp.NewToolResultError(po.reason)
	}
	mandatory := post.RedactionRequired() || pre.RedactionRequired()
	if !p.opts.RedactOutputs && !mandatory {
		return o, res
	}
	// The server's own data being redacted or withheld costs the caller
	// nothing (trust scores intent, not outcomes).
	redacted, found, err := p.redactResult(ctx, res)
	switch {
	case err != nil:
		o.result, o.event = audit.ResultWithheld, trust.Event{Kind: trust.Withheld}
		o.reason = "output withheld: it could not be scanned for secrets (" + err.Error() + ")"
		return o, mcp.NewToolResultError(o.reason)
	case mandatory && len(found) == 0:
		// A redact rule matched but the detectors found nothing to remove:
		// sensitive text is never passed through, so withhold it all, and
		// say so: nothing was redacted.
		o.result, o.event = audit.ResultWithheld, trust.Event{Kind: trust.Withheld}
		o.reason = redactMessage(post, pre) + " (output withheld: the detectors found nothing to remove)"
		return o, mcp.NewToolResultError("[WITHHELD] " + o.reason)
	case len(found) > 0:
		o.result, o.event = audit.ResultRedacted, trust.Event{Kind: trust.Redacted}
		o.reason = fmt.Sprintf("%s: %s", redactMessage(post, pre), strings.Join(found, ", "))
		return o, redacted
	}
	return o, res
}

func redactMessage(ds ...policy.Decision) string {
	for _, d := range ds {
		if d.Action == policy.Redact {
			for _, m := range d.Matched {
				if m.Action == policy.Redact && m.Message != "" {
					return m.Message
				}
			}
		}
	}
	return "sensitive data redacted"
}

func matchedReason(d policy.Decision) string {
	if len(d.Matched) == 0 {
		return ""
	}
	return d.Reason
}

// policyOutcome turns a refusing decision into an outcome and the trust
// event it costs: a rate limit once per window; a refusal whose deciding
// rules all read trust_score nothing (trust's own doing: no spiral);
// otherwise a block by the highest severity among the refusing rules, once
// per repeat window for the same rules, tool and target.
func (p *Pipeline) policyOutcome(d policy.Decision, now time.Time, c Call, target string) outcome {
	o := outcome{result: audit.ResultBlocked, reason: d.Reason, rules: d.Rules()}
	o.event = p.once(trust.Event{Kind: trust.PolicyBlock, Severity: maxSeverity(d)}, "policy", strings.Join(o.rules, ","), c.Tool, target)
	trustOnly := true
	for _, m := range d.Matched {
		if m.Action != d.Action {
			continue
		}
		if m.Limit != "" {
			o.event = trust.Event{Kind: trust.RateLimited, Once: m.Rule, Until: now.Add(limitWindow(m.Limit))}
			o.limitRule = m.Rule
			return o
		}
		trustOnly = trustOnly && m.ReadsTrust
	}
	if trustOnly || d.Error != "" {
		o.event = trust.Event{Kind: trust.Neutral} // trust's own refusal, or our policy failed
	}
	return o
}

func maxSeverity(d policy.Decision) string {
	rank := map[string]int{"": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
	best := ""
	for _, m := range d.Matched {
		if m.Action == d.Action && rank[string(m.Severity)] > rank[best] {
			best = string(m.Severity)
		}
	}
	return best
}

// limitWindow is the window length of "N/unit".
func limitWindow(limit string) time.Duration {
	_, unit, _ := strings.Cut(limit, "/")
	switch unit {
	case "second":
		return time.Second
	case "minute":
		return time.Minute
	case "day":
		return 24 * time.Hour
	}
	return time.Hour
}

// refusal records a tool guard's refusal as blocked with rule
// builtin:<check> (malformed arguments are "error": the caller's slip),
// charged by what it reveals: an attack signature costs a lot, an honest
// mistake little, an upstream's changed tool nothing; the same refusal
// (check, tool, target) once per repeat window.
func (p *Pipeline) refusal(c Call, target string, err error) outcome {
	var ref *tools.Refusal
	if !errors.As(err, &ref) {
		return outcome{result: audit.ResultError, reason: err.Error(), event: trust.Event{Kind: trust.Neutral}}
	}
	if target == "" {
		target = argsKey(c.Args)
	}
	o := outcome{result: audit.ResultBlocked, reason: ref.Reason, rules: []string{"builtin:" + ref.Check}}
	switch ref.Reveals() {
	case tools.Attack:
		o.event = p.once(trust.Event{Kind: trust.Attack}, ref.Check, c.Tool, target)
	case tools.Nothing:
		o.event = trust.Event{Kind: trust.Neutral}
	default:
		o.event = p.once(trust.Event{Kind: trust.Mistake}, ref.Check, c.Tool, target)
	}
	if ref.Check == "arguments" {
		o.result = audit.ResultError
	}
	return o
}

// mistake is a refusal for a tool, resource or prompt that does not exist.
func (p *Pipeline) mistake(c Call, target, rule, reason string) outcome {
	return outcome{result: audit.ResultBlocked, reason: reason, rules: []string{rule},
		event: p.once(trust.Event{Kind: trust.Mistake}, rule, target)}
}

// once makes ev cost at most once per repeat window for the same key.
func (p *Pipeline) once(ev trust.Event, key ...string) trust.Event {
	w := p.opts.TrustModel.RepeatWindow
	if w <= 0 {
		return ev
	}
	sum := sha256.Sum256([]byte(string(ev.Kind) + "\x00" + strings.Join(key, "\x00")))
	ev.Once = string(ev.Kind) + ":" + hex.EncodeToString(sum[:8])
	ev.Until = p.opts.Now().Add(w)
	return ev
}

// argsKey is a call's arguments as a repeat key (canonical JSON: maps
// encode with sorted keys).
func argsKey(args map[string]any) string {
	b, _ := json.Marshal(args)
	return string(b)
}

// personalData are detector rules for personal data rather than secrets.
var personalData = map[string]bool{"email": true, "credit-card": true, "iban": true}

// exfiltration refuses a call that would send a secret out of this host
// (api_call, an upstream tool): secrets in the parameters of an outbound
// call are an attack signature (builtin:secret), whatever else would
// refuse it.
func (p *Pipeline) exfiltration(ctx context.Context, c Call, acc tools.Access) (outcome, bool) {
	if p.opts.Redactor == nil || (acc.Kind != scope.API && acc.Kind != scope.MCP) || acc.Action == scope.Read {
		return outcome{}, false
	}
	_, findings, err := p.opts.Redactor.RedactValue(ctx, anyArgs(c.Args))
	if err != nil {
		return outcome{}, false // the audit copy is withheld; the call is judged on the rest
	}
	var kinds []string
	for _, f := range findings {
		if !personalData[f.RuleID] && !redact.IsPHIRule(f.RuleID) && !slices.Contains(kinds, f.RuleID) {
			kinds = append(kinds, f.RuleID)
		}
	}
	if len(kinds) == 0 {
		return outcome{}, false
	}
	o := p.refusal(c, acc.Target, tools.Refuse("secret", "the call would send a secret (%s) to %s; secrets are not passed through tool calls", strings.Join(kinds, ", "), acc.Target))
	o.access = acc.String()
	return o, true
}

func anyArgs(args map[string]any) any {
	if args == nil {
		return map[string]any{}
	}
	return args
}

// entry builds the audit entry of a call; params are redacted and capped
// before they are stored.
func (p *Pipeline) entry(ctx context.Context, c Call, start time.Time, o outcome) audit.Entry {
	e := audit.Entry{
		Timestamp: start, Agent: p.opts.Agent, Action: audit.ActionToolInvocation, Tool: c.Tool,
		Result: o.result, Reason: o.reason, Rules: o.rules, Client: c.Client, Upstream: c.Upstream, Enforced: o.enforce,
		DurationUS: p.opts.Now().Sub(start).Microseconds(),
	}
	if who, _ := p.caller(ctx); who != nil {
		e.Caller = &audit.Caller{ID: who.ID, Kind: string(who.Kind), ClientID: who.ClientID, Scopes: who.Scopes}
	}
	e.Params, e.ParamsDigest = p.params(ctx, c.Args)
	if o.access != "" || o.task != "" {
		d := map[string]string{}
		if o.access != "" {
			d["access"] = o.access
		}
		if o.task != "" {
			d["task"] = o.task
		}
		e.Details, _ = json.Marshal(d)
	}
	return e
}

func (p *Pipeline) params(ctx context.Context, args map[string]any) (json.RawMessage, *audit.ParamsDigest) {
	var v any = args
	if args == nil {
		v = map[string]any{}
	}
	if p.opts.RedactParams && p.opts.Redactor != nil {
		red, _, err := p.opts.Redactor.RedactValue(ctx, v)
		if err != nil {
			// Never store what could not be scanned.
			return json.RawMessage(`{"withheld":"params could not be scanned for secrets"}`), nil
		}
		v = red
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`{"withheld":"params are not JSON"}`), nil
	}
	capped, digest, err := audit.CapParams(raw, p.opts.MaxParamBytes)
	if err != nil {
		return json.RawMessage(`{"withheld":"params could not be encoded"}`), nil
	}
	return capped, digest
}

func ptr[T any](v T) *T { return &v }

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func grants(c *identity.Credential) string {
	var parts []string
	for _, g := range c.Claims.Scopes {
		parts = append(parts, fmt.Sprintf("%s [%s]", strings.Join(g.Resources, " "), strings.Join(g.Actions, ",")))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}
