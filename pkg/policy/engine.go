package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
)

// Call is what conditions see of one tool call.
type Call struct {
	// Tool is the tool name the client sees.
	Tool string
	// Params are the call's arguments, as decoded from JSON.
	Params map[string]any
	// ParamsBytes is the size of the params' JSON text, when the caller
	// has it; zero makes the engine measure Params itself.
	ParamsBytes int
	// Agent is the DID of the server the call goes through; rules with
	// `per: server` count their limits per agent.
	Agent string
	// Caller is who made the call, as conditions see it (`caller.sub`,
	// `caller.groups`, ...). Subject is the key limits count under by
	// default (`per: caller`): the caller's ID, or the agent when empty.
	Caller     CallerEnv
	Subject    string
	TrustScore int
	// Client is the MCP client's name (from initialize).
	Client string
	// For proxied calls: the upstream server, the upstream's own tool name,
	// the MCP method (tools/call, resources/read, prompts/get) and the
	// resource URI.
	Upstream, UpstreamTool, Method, URI string
}

// Options configures an Engine.
type Options struct {
	// Counter stores rate-limit counters. Nil means a fresh in-memory
	// counter: limits then neither persist nor span processes.
	Counter ratelimit.Counter
	// Secrets backs has_secret(text). Nil makes has_secret an evaluation
	// error, which fails the call closed.
	Secrets SecretDetector
	// Clock is the time rate limits use; nil means time.Now.
	Clock func() time.Time
	// Shadow computes and records decisions without enforcing them:
	// decisions say Enforced: false.
	Shadow bool
	// MaxOutputBytes and MaxParamsBytes cap what conditions see; larger
	// inputs fail the stage closed. Zero means the defaults.
	MaxOutputBytes, MaxParamsBytes int
}

// Engine evaluates a Set of policies for tool calls. It is safe for
// concurrent use; Replace swaps the policies atomically (reload).
type Engine struct {
	set     atomic.Pointer[Set]
	opts    Options
	counter ratelimit.Counter
	clock   func() time.Time
	pool    sync.Pool // *evalState
}

// NewEngine returns an engine for set.
func NewEngine(set *Set, opts Options) *Engine {
	e := &Engine{opts: opts, counter: opts.Counter, clock: opts.Clock}
	if e.counter == nil {
		e.counter = ratelimit.NewMemory()
	}
	if e.clock == nil {
		e.clock = time.Now
	}
	if e.opts.MaxOutputBytes <= 0 {
		e.opts.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if e.opts.MaxParamsBytes <= 0 {
		e.opts.MaxParamsBytes = DefaultMaxParamsBytes
	}
	e.pool.New = func() any { return newEvalState(e) }
	e.set.Store(set)
	return e
}

// Policies returns the set in force.
func (e *Engine) Policies() *Set { return e.set.Load() }

// Replace puts set in force for the calls that start from now on.
func (e *Engine) Replace(set *Set) { e.set.Store(set) }

// PreCall decides whether a call may go ahead, from the rules that do not
// use `output`. Rate-limited rules whose condition holds are checked and,
// when the decision lets the call through, the call is counted, all in one
// atomic Counter step. Evaluation and storage errors block (fail closed).
func (e *Engine) PreCall(ctx context.Context, call *Call) Decision {
	return e.decide(ctx, PreCall, call, "", nil)
}

// PostCall decides what happens to a call's output, from the rules that use
// `output`: block withholds it, redact makes redaction mandatory.
func (e *Engine) PostCall(ctx context.Context, call *Call, output string) Decision {
	return e.decide(ctx, PostCall, call, output, nil)
}

func (e *Engine) decide(ctx context.Context, stage Stage, call *Call, output string, trace map[*Rule]*RuleTrace) Decision {
	set := e.set.Load()
	d := Decision{Stage: stage, Enforced: !e.opts.Shadow, Action: Allow, Matched: []Match{}}
	if stage == PostCall && !set.hasPost {
		d.Reason = reason(stage, Allow, nil)
		return d
	}
	st := e.pool.Get().(*evalState)
	defer st.release()
	st.begin(ctx, set, stage, call, output, trace)
	if err := e.checkInput(stage, call, output); err != nil {
		st.fail("input_limit", "the call's input exceeds the policy input limits", err)
		st.finish()
		return st.decision(d)
	}
	for fi, fr := range set.stages[stage] {
		for _, r := range fr.rules {
			st.eval(fi, r)
		}
	}
	if len(st.checks) == 0 {
		st.finish()
		return st.decision(d)
	}
	if err := e.counter.Admit(ctx, e.clock(), st.checks, st.decideFn); err != nil {
		for _, r := range st.limited {
			st.fail(r.ID, "the rate-limit counter failed", err)
		}
		st.finish()
	}
	return st.decision(d)
}

func (e *Engine) checkInput(stage Stage, call *Call, output string) error {
	if stage == PostCall && len(output) > e.opts.MaxOutputBytes {
		return fmt.Errorf("output of %d bytes is larger than %d", len(output), e.opts.MaxOutputBytes)
	}
	if call.ParamsBytes > 0 {
		if call.ParamsBytes > e.opts.MaxParamsBytes {
			return fmt.Errorf("params of %d bytes are larger than %d", call.ParamsBytes, e.opts.MaxParamsBytes)
		}
		return nil
	}
	budget := e.opts.MaxParamsBytes
	if !measure(call.Params, 0, &budget) {
		return fmt.Errorf("params are larger than %d bytes or nested deeper than %d", e.opts.MaxParamsBytes, maxParamsDepth)
	}
	return nil
}

// measure subtracts the size of v from budget and reports whether it stayed
// within it and within maxParamsDepth.
func measure(v any, depth int, budget *int) bool {
	if depth > maxParamsDepth {
		return false
	}
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			*budget -= len(k)
			if !measure(x, depth+1, budget) {
				return false
			}
		}
	case []any:
		for _, x := range v {
			if !measure(x, depth+1, budget) {
				return false
			}
		}
	case string:
		*budget -= len(v)
	default:
		*budget -= 8
	}
	return *budget >= 0
}

// evalState is the scratch space of one evaluation, pooled so that the hot
// path does not allocate: the expr VM and the environment map, which keeps
// the values of the previous call (boxing a string into an interface
// allocates; a server sees the same tool names and agent over and over).
type evalState struct {
	e     *Engine
	env   map[string]any
	vm    vm.VM
	ctx   context.Context
	set   *Set
	stage Stage
	call  *Call
	// boxes and score are the values of the variables in env.
	boxes [len(stringVars)]boxedString
	score int

	matches  []seqMatch
	defaults []Match
	hits     []bool // per file: a rule matched (so default_action does not apply)
	checks   []ratelimit.Check
	limited  []*Rule
	// limitedFile is the file index of each limited rule.
	limitedFile []int
	action      Action
	decideFn    func(used []int) bool
	trace       map[*Rule]*RuleTrace
}

type seqMatch struct {
	seq int // the rule's position in the set, for file order
	Match
}

type boxedString struct{ s string }

// stringVars are the string variables set from a Call, in boxes order.
var stringVars = [...]string{varTool, varAgent, varClient, varUpstream, varUpstreamTool, varMethod, varURI, varOutput}

func newEvalState(e *Engine) *evalState {
	st := &evalState{e: e, env: make(map[string]any, len(typeEnv))}
	for k, v := range typeEnv {
		st.env[k] = v
	}
	st.env[fnHasSecret] = st.hasSecret
	st.env[fnParam] = st.param
	st.decideFn = st.decide
	return st
}

func (st *evalState) begin(ctx context.Context, set *Set, stage Stage, call *Call, output string, trace map[*Rule]*RuleTrace) {
	st.ctx, st.set, st.stage, st.call, st.trace = ctx, set, stage, call, trace
	// The environment keeps the previous call's values: only the ones that
	// differ are boxed and stored again.
	vals := [len(stringVars)]string{call.Tool, call.Agent, call.Client, call.Upstream, call.UpstreamTool, call.Method, call.URI, output}
	for i, name := range stringVars {
		if b := &st.boxes[i]; b.s != vals[i] {
			b.s = vals[i]
			st.env[name] = b.s
		}
	}
	if st.score != call.TrustScore {
		st.score = call.TrustScore
		st.env[varTrustScore] = st.score
	}
	st.env[varParams] = call.Params
	st.env[varCaller] = &call.Caller // a pointer: no allocation
	st.hits = slices.Grow(st.hits[:0], len(set.stages[stage]))[:len(set.stages[stage])]
	clear(st.hits)
}

func (st *evalState) release() {
	// Drop references to the call so the pool does not keep large outputs
	// and params alive.
	st.env[varParams] = map[string]any(nil)
	st.env[varCaller] = noCaller
	if out := &st.boxes[len(stringVars)-1]; out.s != "" {
		out.s = ""
		st.env[varOutput] = ""
	}
	st.ctx, st.set, st.call, st.trace = nil, nil, nil, nil
	clear(st.matches)
	clear(st.limited)
	st.matches, st.defaults, st.checks, st.limited = st.matches[:0], st.defaults[:0], st.checks[:0], st.limited[:0]
	st.limitedFile = st.limitedFile[:0]
	st.e.pool.Put(st)
}

// param is params.NAME (see paramPatch).
func (st *evalState) param(name any) any {
	s, _ := name.(string)
	return st.call.Params[s]
}

func (st *evalState) hasSecret(s string) (bool, error) {
	if st.e.opts.Secrets == nil {
		return false, errors.New("has_secret: no secret detector is configured")
	}
	return st.e.opts.Secrets.HasSecret(st.ctx, s)
}

// eval runs one rule's condition. A true condition adds a match, or, for a
// rate-limited rule, a counter check.
func (st *evalState) eval(fi int, r *Rule) {
	var ok bool
	var err error
	if r.tools == nil || slices.Contains(r.tools, st.call.Tool) {
		var out any
		out, err = st.vm.Run(r.program, st.env)
		var isBool bool
		ok, isBool = out.(bool)
		if err == nil && !isBool {
			err = fmt.Errorf("condition returned %T, not a boolean", out)
		}
	}
	if st.trace != nil {
		st.traceEval(r, ok, err)
	}
	if err != nil {
		st.fail(r.ID, "evaluating the condition failed", evalError(err))
		st.hits[fi] = true
		return
	}
	if !ok {
		return
	}
	if r.Limit != nil {
		st.checks = append(st.checks, ratelimit.Check{Key: r.CounterKey(st.call.counterSubject(r)), Window: *r.Limit})
		st.limited = append(st.limited, r)
		st.limitedFile = append(st.limitedFile, fi)
		return
	}
	st.matches = append(st.matches, seqMatch{seq(fi, r), r.match("condition is true")})
	st.hits[fi] = true
}

// decide is the Counter.Admit callback: rate-limited rules whose window is
// full match, and the call is counted if the resulting decision lets it
// through (in shadow mode: would let it through).
func (st *evalState) decide(used []int) bool {
	for i, r := range st.limited {
		full := used[i] >= r.Limit.Limit
		if st.trace != nil {
			st.traceLimit(r, used[i], full)
		}
		if full {
			m := r.match(fmt.Sprintf("limit %s reached: %d calls in the last %s", r.Limit, used[i], r.Limit.Unit))
			m.Limit = r.Limit.String()
			fi := st.limitedFile[i]
			st.matches = append(st.matches, seqMatch{seq(fi, r), m})
			st.hits[fi] = true
		}
	}
	st.finish()
	return st.action.Permits()
}

// fail adds a failed-closed match.
func (st *evalState) fail(rule, why string, err error) {
	st.matches = append(st.matches, seqMatch{-1, Match{Rule: rule, Action: Block, Why: why, Error: err.Error()}})
}

// finish applies the default actions and finds the winning action.
func (st *evalState) finish() {
	st.defaults = st.defaults[:0]
	if st.stage == PreCall {
		for fi, fr := range st.set.stages[PreCall] {
			if !st.hits[fi] && fr.file.DefaultAction != Allow {
				st.defaults = append(st.defaults, Match{
					Rule: defaultRule, Action: fr.file.DefaultAction, Source: fr.file.Path,
					Why: "no rule in " + fr.file.Path + " matched; its default_action is " + string(fr.file.DefaultAction),
				})
			}
		}
	}
	st.action = Allow
	for i := range st.matches {
		if st.matches[i].Action.Rank() > st.action.Rank() {
			st.action = st.matches[i].Action
		}
	}
	for _, m := range st.defaults {
		if m.Action.Rank() > st.action.Rank() {
			st.action = m.Action
		}
	}
}

// decision fills d from the finished evaluation.
func (st *evalState) decision(d Decision) Decision {
	d.Action = st.action
	d.Matched = []Match{} // JSON [] rather than null; a zero-size slice does not allocate
	if n := len(st.matches) + len(st.defaults); n > 0 {
		slices.SortStableFunc(st.matches, func(a, b seqMatch) int { return cmp.Compare(a.seq, b.seq) })
		d.Matched = make([]Match, 0, n)
		for _, m := range st.matches {
			d.Matched = append(d.Matched, m.Match)
			if m.Error != "" && d.Error == "" {
				d.Error = m.Error
			}
		}
		d.Matched = append(d.Matched, st.defaults...)
	}
	d.Reason = reason(d.Stage, d.Action, d.Matched)
	return d
}

// counterSubject is whose counter a limited rule charges: the agent for
// `per: server`, else the caller (DESIGN.md, "Who calls").
func (c *Call) counterSubject(r *Rule) string {
	if r.PerServer || c.Subject == "" {
		return c.Agent
	}
	return c.Subject
}

// CounterKey is the key of the rule's rate-limit counter for a subject
// (a caller's ID, or the agent's DID for `per: server` and local calls):
// (policy, rule name or "#INDEX", subject).
func (r *Rule) CounterKey(agent string) ratelimit.Key {
	return ratelimit.Key{Policy: r.Policy, Rule: r.counter, Agent: agent}
}

// seq orders matches as the rules are written: by file, then within it.
func seq(fi int, r *Rule) int { return fi<<24 | r.ordinal }

func (r *Rule) match(why string) Match {
	return Match{Rule: r.ID, Action: r.Action, Severity: r.Severity, Message: r.Message, Why: why, Source: r.source, ReadsTrust: r.readsTrust}
}

// evalError strips expr's source snippet: the decision names the rule.
func evalError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}
