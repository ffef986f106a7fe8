package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// Policy test files (`agentmesh policy test FILE...`) list calls and the
// decision each must get, like OPA's policy tests:
//
//	policies: [default.yaml]          # relative to this file
//	tests:
//	  - name: the 101st api_call in an hour is blocked
//	    call:
//	      tool: api_call              # also: params, output, agent,
//	      params: {url: "https://api.weather.com/v1/today"}
//	                                  # trust_score, client, upstream,
//	                                  # upstream_tool, method, uri
//	    prior_calls: 100              # identical calls just before
//	    after: 0s                     # time between them and this call
//	    expect:
//	      action: block
//	      rules: [rate-limit-api-calls/api-100-per-hour]
//	      reason: "limited to 100"     # a substring of the reason
//
// A call with `output` runs both stages (the post-call stage only if the
// call goes ahead) and is compared with their merged decision. `rules` is
// compared as a set with the IDs of every matched rule ("default_action" for
// a file's default); leave it out to check only the action. trust_score
// defaults to DefaultTrustScore. Each test starts with empty rate-limit
// counters and a fixed clock; prior_calls run through the engine first, so
// the ones the limit refuses are not counted, exactly as in production.
//
// A case with expect.result is a serve case: it runs through the whole
// decision path of `agentmesh serve` (the tool's guards, secrets in
// outbound parameters, the credential's scopes, trust, the policies of
// this file, redaction of the output) without running the tool, and
// asserts what serve would record:
//
//	    expect:
//	      result: blocked             # allowed|blocked|redacted|withheld|error
//	      layer: guard                # tool|trust|credential|guard|secret|scope|policy|output
//	      trust: attack               # the trust event: attack|mistake|policy_block|...
//	      rules: [builtin:traversal]  # serve's rules, builtin checks included
//
// In a serve case, rules and reason are serve's, and action (optional) is
// the policies' decision, which a call stopped before the policies has
// none of.

// DefaultTrustScore is the trust_score of a test call that does not give
// one: the initial score of a new identity (pkg/config's trust.initial).
const DefaultTrustScore = 800

// MaxPriorCalls bounds prior_calls.
const MaxPriorCalls = ratelimit.MaxLimit

// testEpoch is the fixed clock of policy tests.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type testFileSpec struct {
	Policies    []string       `yaml:"policies"`
	PoliciesPos yamlpos.Pos    `pos:"policies"`
	Tests       []testCaseSpec `yaml:"tests"`
	TestsPos    yamlpos.Pos    `pos:"tests"`
}

// testCallerSpec is a test call's caller (policy.CallerEnv).
type testCallerSpec struct {
	ID       string         `yaml:"id"`
	Kind     string         `yaml:"kind"`
	Iss      string         `yaml:"iss"`
	Sub      string         `yaml:"sub"`
	ClientID string         `yaml:"client_id"`
	Name     string         `yaml:"name"`
	Scopes   []string       `yaml:"scopes"`
	Groups   []string       `yaml:"groups"`
	Claims   map[string]any `yaml:"claims"`
}

type testCaseSpec struct {
	Pos        yamlpos.Pos  `pos:"."`
	Name       string       `yaml:"name"`
	NamePos    yamlpos.Pos  `pos:"name"`
	Call       testCallSpec `yaml:"call"`
	CallPos    yamlpos.Pos  `pos:"call"`
	PriorCalls int          `yaml:"prior_calls"`
	PriorPos   yamlpos.Pos  `pos:"prior_calls"`
	After      string       `yaml:"after"`
	AfterPos   yamlpos.Pos  `pos:"after"`
	Expect     expectSpec   `yaml:"expect"`
	ExpectPos  yamlpos.Pos  `pos:"expect"`
}

type testCallSpec struct {
	Tool         string         `yaml:"tool"`
	Params       map[string]any `yaml:"params"`
	Output       *string        `yaml:"output"`
	Agent        string         `yaml:"agent"`
	TrustScore   *int           `yaml:"trust_score"`
	Client       string         `yaml:"client"`
	Upstream     string         `yaml:"upstream"`
	UpstreamTool string         `yaml:"upstream_tool"`
	Method       string         `yaml:"method"`
	URI          string         `yaml:"uri"`
	// Caller is who calls, as conditions see it (caller.*); its id is
	// also the rate-limit subject.
	Caller *testCallerSpec `yaml:"caller"`
}

type expectSpec struct {
	Action    string      `yaml:"action"`
	ActionPos yamlpos.Pos `pos:"action"`
	Rules     []string    `yaml:"rules"`
	Reason    string      `yaml:"reason"`
	Result    string      `yaml:"result"`
	ResultPos yamlpos.Pos `pos:"result"`
	Layer     string      `yaml:"layer"`
	LayerPos  yamlpos.Pos `pos:"layer"`
	Trust     string      `yaml:"trust"`
	TrustPos  yamlpos.Pos `pos:"trust"`
}

// Serve results, layers and trust event kinds a serve case may expect
// (audit.Result, governance.Layer*, trust.Kind: listed here, where the
// file is parsed, because those packages build on this one).
var (
	serveResults = []string{"allowed", "blocked", "redacted", "withheld", "error"}
	serveLayers  = []string{"tool", "trust", "credential", "guard", "secret", "scope", "policy", "output"}
	trustKinds   = []string{"allowed", "redacted", "withheld", "mistake", "attack", "policy_block", "rate_limited", "credential_failure", "neutral"}
)

// TestFile is a loaded policy test file.
type TestFile struct {
	Path  string
	Set   *Set
	Cases []*TestCase
}

// TestCase is one test.
type TestCase struct {
	Name string
	Pos  yamlpos.Pos
	Call Call
	// Output, when set, runs the post-call stage too.
	Output     *string
	PriorCalls int
	After      time.Duration
	Expect     Expectation
}

// Expectation is the decision a test wants.
type Expectation struct {
	// Action, when set, is the policies' decision.
	Action Action
	// Rules, when not nil, must equal the matched rule IDs as a set.
	Rules []string
	// Reason, when set, must be a substring of the reason.
	Reason string
	// Result, when set, makes the case a serve case: what serve would
	// record. Layer and Trust, when set, are the layer that decided and
	// the trust event's kind.
	Result, Layer, Trust string
}

// Serve says whether the case runs through serve's decision path.
func (c *TestCase) Serve() bool { return c.Expect.Result != "" }

// ServeOutcome is what serve would do with a call (a
// governance.Explanation, reduced to what test cases assert).
type ServeOutcome struct {
	Result string   `json:"result"`
	Layer  string   `json:"layer,omitempty"`
	Reason string   `json:"reason,omitempty"`
	Rules  []string `json:"rules"`
	Trust  string   `json:"trust"`
	// Policy is the policies' decision, nil when the call was stopped
	// before them.
	Policy *Decision `json:"policy,omitempty"`
}

// ServeFunc decides call as serve would, with the case's engine (its rate
// limits counted) and clock, and its trust score.
type ServeFunc func(ctx context.Context, e *Engine, now time.Time, call *Call, output *string) (ServeOutcome, error)

// TestResult is the outcome of one test.
type TestResult struct {
	Name     string   `json:"name"`
	Source   string   `json:"source"`
	Passed   bool     `json:"passed"`
	Failures []string `json:"failures,omitempty"`
	Decision Decision `json:"decision"`
	// Serve is what serve would do, for a serve case.
	Serve   *ServeOutcome `json:"serve,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// LoadTestFile reads a test file and the policies it names. Files that
// cannot be read are *ReadError; problems in the test file or its policies
// are a yamlpos.ErrorList.
func LoadTestFile(path string) (*TestFile, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec testFileSpec
	positions, err := yamlpos.DecodePositions(path, data, &spec)
	if err != nil {
		return nil, err
	}
	if len(spec.Policies) == 0 {
		return nil, yamlpos.ErrorList{spec.PoliciesPos.Errorf("policies: list the policy files or directories to test, relative to this file (e.g. [default.yaml])")}
	}
	if len(spec.Tests) == 0 {
		return nil, yamlpos.ErrorList{spec.TestsPos.Errorf("tests: no tests")}
	}
	paths := make([]string, len(spec.Policies))
	for i, p := range spec.Policies {
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(path), p)
		}
		paths[i] = p
	}
	set, err := Load(paths...)
	if err != nil {
		return nil, err
	}
	tf := &TestFile{Path: path, Set: set}
	errs := tf.parseCases(spec.Tests, positions)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return tf, nil
}

func (tf *TestFile) parseCases(specs []testCaseSpec, positions yamlpos.Positions) yamlpos.ErrorList {
	var errs yamlpos.ErrorList
	known := map[string]bool{defaultRule: true}
	for _, r := range tf.Set.Rules() {
		known[r.ID] = true
	}
	names := map[string]int{}
	for i, s := range specs {
		c := &TestCase{Name: s.Name, Pos: s.Pos, PriorCalls: s.PriorCalls, Output: s.Call.Output}
		if s.Name == "" {
			errs = append(errs, s.Pos.Errorf("test needs a name"))
		} else if line, dup := names[s.Name]; dup {
			errs = append(errs, s.NamePos.Errorf("duplicate test name %q (first at line %d)", s.Name, line))
		}
		names[s.Name] = s.NamePos.Line
		if !s.CallPos.IsValid() {
			errs = append(errs, s.Pos.Errorf("test %q needs a call (at least its tool)", s.Name))
		}
		params, err := jsonNormalize(s.Call.Params)
		if err != nil {
			errs = append(errs, s.CallPos.Errorf("call.params: %v", err))
		}
		c.Call = Call{
			Tool: s.Call.Tool, Params: params, Agent: s.Call.Agent, TrustScore: DefaultTrustScore,
			Client: s.Call.Client, Upstream: s.Call.Upstream, UpstreamTool: s.Call.UpstreamTool,
			Method: s.Call.Method, URI: s.Call.URI,
		}
		if s.Call.TrustScore != nil {
			c.Call.TrustScore = *s.Call.TrustScore
		}
		if cs := s.Call.Caller; cs != nil {
			claims, err := jsonNormalize(cs.Claims)
			if err != nil {
				errs = append(errs, s.CallPos.Errorf("call.caller.claims: %v", err))
			}
			c.Call.Caller = CallerEnv{ID: cs.ID, Kind: cs.Kind, Iss: cs.Iss, Sub: cs.Sub, ClientID: cs.ClientID, Name: cs.Name,
				Scopes: cs.Scopes, Groups: cs.Groups, Claims: claims}
			c.Call.Subject = cs.ID
		}
		if s.PriorCalls < 0 || s.PriorCalls > MaxPriorCalls {
			errs = append(errs, s.PriorPos.Errorf("prior_calls must be between 0 and %d", MaxPriorCalls))
		}
		if s.After != "" {
			d, err := time.ParseDuration(s.After)
			if err != nil || d < 0 {
				errs = append(errs, s.AfterPos.Errorf("after: %q is not a duration such as 90s, 59m or 1h", s.After))
			}
			c.After = d
		}
		serve := s.Expect.Result != ""
		switch {
		case s.Expect.Action == "" && !serve:
			errs = append(errs, s.Pos.Errorf("test %q needs expect.action (the policies' decision) or expect.result (what serve records)", s.Name))
		case s.Expect.Action != "":
			if a, err := parseAction(s.Expect.Action); err != nil {
				errs = append(errs, s.Expect.ActionPos.Errorf("%v", err))
			} else {
				c.Expect.Action = a
			}
		}
		oneOf := func(v string, pos yamlpos.Pos, key string, allowed []string) {
			if v != "" && !slices.Contains(allowed, v) {
				errs = append(errs, pos.Errorf("expect.%s: %q is not one of %s", key, v, strings.Join(allowed, ", ")))
			}
		}
		oneOf(s.Expect.Result, s.Expect.ResultPos, "result", serveResults)
		oneOf(s.Expect.Layer, s.Expect.LayerPos, "layer", serveLayers)
		oneOf(s.Expect.Trust, s.Expect.TrustPos, "trust", trustKinds)
		if !serve && (s.Expect.Layer != "" || s.Expect.Trust != "") {
			errs = append(errs, s.Pos.Errorf("test %q: expect.layer and expect.trust are what serve does: add expect.result", s.Name))
		}
		c.Expect.Result, c.Expect.Layer, c.Expect.Trust = s.Expect.Result, s.Expect.Layer, s.Expect.Trust
		for j, id := range s.Expect.Rules {
			if strings.HasPrefix(id, "builtin:") {
				if !serve {
					pos := positions.Of(tf.Path, fmt.Sprintf("tests[%d].expect.rules[%d]", i, j))
					errs = append(errs, pos.Errorf("expect.rules: %s is decided by serve, not by the policies: add expect.result to make this a serve case", id))
				}
				continue
			}
			if !known[id] {
				pos := positions.Of(tf.Path, fmt.Sprintf("tests[%d].expect.rules[%d]", i, j))
				errs = append(errs, pos.Errorf("expect.rules: no rule %q in the policies (rules: %s)", id, strings.Join(slices.Sorted(maps.Keys(known)), ", ")))
			}
		}
		c.Expect.Rules, c.Expect.Reason = s.Expect.Rules, s.Expect.Reason
		tf.Cases = append(tf.Cases, c)
	}
	return errs
}

// jsonNormalize gives params the types a real call's JSON arguments have
// (numbers are float64), so that tests see what production sees.
func jsonNormalize(params map[string]any) (map[string]any, error) {
	if params == nil {
		return nil, nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	err = json.Unmarshal(b, &out)
	return out, err
}

// TestOptions configures a test run.
type TestOptions struct {
	// Secrets backs has_secret; nil fails conditions that use it closed.
	Secrets SecretDetector
	// Serve runs serve cases; without it they fail.
	Serve ServeFunc
}

// Run runs every test case, each against fresh in-memory counters.
func (tf *TestFile) Run(ctx context.Context, opts TestOptions) []TestResult {
	results := make([]TestResult, 0, len(tf.Cases))
	for _, c := range tf.Cases {
		results = append(results, tf.runCase(ctx, c, opts))
	}
	return results
}

func (tf *TestFile) runCase(ctx context.Context, c *TestCase, opts TestOptions) TestResult {
	start := time.Now()
	now := testEpoch
	e := NewEngine(tf.Set, Options{
		Counter: ratelimit.NewMemory(),
		Secrets: opts.Secrets,
		Clock:   func() time.Time { return now },
	})
	for i := 0; i < c.PriorCalls; i++ {
		decideCall(ctx, e, &c.Call, c.Output)
	}
	now = now.Add(c.After)
	if c.Serve() {
		res := TestResult{Name: c.Name, Source: c.Pos.String()}
		res.Failures = runServeCase(ctx, c, opts.Serve, e, now, &res)
		res.Passed = len(res.Failures) == 0
		res.Elapsed = time.Since(start)
		return res
	}
	d := decideCall(ctx, e, &c.Call, c.Output)
	res := TestResult{Name: c.Name, Source: c.Pos.String(), Decision: d}
	if d.Action != c.Expect.Action {
		res.Failures = append(res.Failures, fmt.Sprintf("action = %s, want %s (reason: %s)", d.Action, c.Expect.Action, d.Reason))
	}
	if c.Expect.Rules != nil {
		got, want := uniqueSorted(d.Rules()), uniqueSorted(c.Expect.Rules)
		if !slices.Equal(got, want) {
			res.Failures = append(res.Failures, fmt.Sprintf("rules = [%s], want [%s]", strings.Join(got, ", "), strings.Join(want, ", ")))
		}
	}
	if c.Expect.Reason != "" && !strings.Contains(d.Reason, c.Expect.Reason) {
		res.Failures = append(res.Failures, fmt.Sprintf("reason = %q, want it to contain %q", d.Reason, c.Expect.Reason))
	}
	res.Passed = len(res.Failures) == 0
	res.Elapsed = time.Since(start)
	return res
}

// runServeCase decides a serve case through serve and compares.
func runServeCase(ctx context.Context, c *TestCase, serve ServeFunc, e *Engine, now time.Time, res *TestResult) []string {
	if serve == nil {
		return []string{"expect.result asks what serve does, and this run has no serve decision path (run it with `agentmesh policy test`)"}
	}
	o, err := serve(ctx, e, now, &c.Call, c.Output)
	if err != nil {
		return []string{fmt.Sprintf("serve's decision path: %v", err)}
	}
	res.Serve = &o
	if o.Policy != nil {
		res.Decision = *o.Policy
	}
	var fails []string
	if o.Result != c.Expect.Result {
		fails = append(fails, fmt.Sprintf("result = %s, want %s (layer %s, reason: %s)", o.Result, c.Expect.Result, orNone(o.Layer), o.Reason))
	}
	if c.Expect.Layer != "" && o.Layer != c.Expect.Layer {
		fails = append(fails, fmt.Sprintf("layer = %s, want %s", orNone(o.Layer), c.Expect.Layer))
	}
	if c.Expect.Trust != "" && o.Trust != c.Expect.Trust {
		fails = append(fails, fmt.Sprintf("trust = %s, want %s", o.Trust, c.Expect.Trust))
	}
	if c.Expect.Action != "" {
		switch {
		case o.Policy == nil:
			fails = append(fails, fmt.Sprintf("action: the call never reached the policies (decided by the %s layer), want %s", orNone(o.Layer), c.Expect.Action))
		case o.Policy.Action != c.Expect.Action:
			fails = append(fails, fmt.Sprintf("action = %s, want %s (reason: %s)", o.Policy.Action, c.Expect.Action, o.Policy.Reason))
		}
	}
	if c.Expect.Rules != nil {
		got, want := uniqueSorted(o.Rules), uniqueSorted(c.Expect.Rules)
		if !slices.Equal(got, want) {
			fails = append(fails, fmt.Sprintf("rules = [%s], want [%s]", strings.Join(got, ", "), strings.Join(want, ", ")))
		}
	}
	if c.Expect.Reason != "" && !strings.Contains(o.Reason, c.Expect.Reason) {
		fails = append(fails, fmt.Sprintf("reason = %q, want it to contain %q", o.Reason, c.Expect.Reason))
	}
	return fails
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// decideCall runs a call through both stages as the governance pipeline
// does: the post-call stage only for a call that went ahead.
func decideCall(ctx context.Context, e *Engine, call *Call, output *string) Decision {
	pre := e.PreCall(ctx, call)
	if output == nil || !pre.Proceeds() {
		return pre
	}
	return Merge(pre, e.PostCall(ctx, call, *output))
}

func uniqueSorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
