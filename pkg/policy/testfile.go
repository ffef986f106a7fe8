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
}

type expectSpec struct {
	Action    string      `yaml:"action"`
	ActionPos yamlpos.Pos `pos:"action"`
	Rules     []string    `yaml:"rules"`
	Reason    string      `yaml:"reason"`
}

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
	Action Action
	// Rules, when not nil, must equal the matched rule IDs as a set.
	Rules []string
	// Reason, when set, must be a substring of the reason.
	Reason string
}

// TestResult is the outcome of one test.
type TestResult struct {
	Name     string        `json:"name"`
	Source   string        `json:"source"`
	Passed   bool          `json:"passed"`
	Failures []string      `json:"failures,omitempty"`
	Decision Decision      `json:"decision"`
	Elapsed  time.Duration `json:"elapsed_ns"`
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
		if s.Expect.Action == "" {
			errs = append(errs, s.Pos.Errorf("test %q needs expect.action", s.Name))
		} else if a, err := parseAction(s.Expect.Action); err != nil {
			errs = append(errs, s.Expect.ActionPos.Errorf("%v", err))
		} else {
			c.Expect.Action = a
		}
		for j, id := range s.Expect.Rules {
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
