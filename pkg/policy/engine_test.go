package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
)

// The seed's two snippets, exactly as the seed and DESIGN.md write them.
const (
	seedRateLimit = `policies:
  - name: "rate-limit-api-calls"
    rules:
      - condition: "tool == 'api_call'"
        limit: "100/hour"
        action: "block"
`
	seedSanitize = `policies:
  - name: "sanitize-sensitive-data"
    rules:
      - condition: "output contains 'password' or output contains 'api_key'"
        action: "redact"
        message: "Sensitive data detected and redacted"
`
)

var t0 = time.Date(2026, 1, 31, 10, 15, 0, 0, time.UTC)

// mustSet parses YAML documents as files a.yaml, b.yaml, ... into a Set.
func mustSet(t testing.TB, docs ...string) *Set {
	t.Helper()
	var files []*File
	for i, doc := range docs {
		f, err := ParseFile(fmt.Sprintf("%c.yaml", 'a'+i), []byte(doc))
		if err != nil {
			t.Fatalf("parsing document %d: %v", i, err)
		}
		files = append(files, f)
	}
	s, err := NewSet(files...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestSeedSnippetsLoadAsWritten(t *testing.T) {
	s := mustSet(t, seedRateLimit, seedSanitize)
	rules := s.Rules()
	if len(rules) != 2 {
		t.Fatalf("rules = %d, want 2", len(rules))
	}
	rl, sn := rules[0], rules[1]
	if rl.ID != "rate-limit-api-calls/#0" || rl.Action != Block || rl.Limit == nil || rl.Limit.String() != "100/hour" || rl.Stage != PreCall {
		t.Errorf("rate limit rule = %+v", rl)
	}
	if sn.ID != "sanitize-sensitive-data/#0" || sn.Action != Redact || sn.Stage != PostCall || sn.Message != "Sensitive data detected and redacted" {
		t.Errorf("sanitize rule = %+v", sn)
	}
	if rl.Pos.String() != "a.yaml:4:9" || rl.ConditionPos.String() != "a.yaml:4:20" {
		t.Errorf("positions = %s, %s", rl.Pos, rl.ConditionPos)
	}
}

// TestSeedRateLimit is the acceptance test of the seed's rate limit: the
// 100th api_call within an hour goes ahead, the 101st is blocked, and an
// hour later calls go ahead again.
func TestSeedRateLimit(t *testing.T) {
	for name, counter := range map[string]func(t *testing.T) ratelimit.Counter{
		"memory": func(*testing.T) ratelimit.Counter { return ratelimit.NewMemory() },
		"sqlite": func(t *testing.T) ratelimit.Counter { return ratelimit.NewSQLite(openTestDB(t, t.TempDir())) },
	} {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{now: t0}
			e := NewEngine(mustSet(t, seedRateLimit, seedSanitize), Options{Counter: counter(t), Clock: clock.Now})
			call := &Call{Tool: "api_call", Agent: "did:agentmesh:mcp-tool-server", TrustScore: 847}
			ctx := context.Background()
			for i := 1; i <= 100; i++ {
				if d := e.PreCall(ctx, call); d.Action != Allow {
					t.Fatalf("call %d: %s (%s), want allow", i, d.Action, d.Reason)
				}
				clock.Advance(30 * time.Second) // 100 calls in 50 minutes
			}
			d := e.PreCall(ctx, call)
			if d.Action != Block || !slices.Equal(d.Rules(), []string{"rate-limit-api-calls/#0"}) || d.Matched[0].Limit != "100/hour" {
				t.Fatalf("101st call: %+v, want a block by rate-limit-api-calls/#0", d)
			}
			if !strings.Contains(d.Reason, "limit 100/hour reached") || d.Proceeds() {
				t.Fatalf("101st call reason = %q, proceeds = %v", d.Reason, d.Proceeds())
			}
			// Other tools are not limited, other agents have their own count.
			if d := e.PreCall(ctx, &Call{Tool: "filesystem_read", Agent: call.Agent}); d.Action != Allow {
				t.Fatalf("filesystem_read: %s", d.Action)
			}
			if d := e.PreCall(ctx, &Call{Tool: "api_call", Agent: "did:agentmesh:other"}); d.Action != Allow {
				t.Fatalf("another agent: %s", d.Action)
			}
			// The first call was at t0; an hour later one slot frees up.
			clock.now = t0.Add(time.Hour)
			if d := e.PreCall(ctx, call); d.Action != Allow {
				t.Fatalf("an hour after the first call: %s (%s), want allow", d.Action, d.Reason)
			}
			if d := e.PreCall(ctx, call); d.Action != Block {
				t.Fatalf("second call at t0+1h: %s, want block (the call at t0+30s is still in the window)", d.Action)
			}
			clock.now = t0.Add(3 * time.Hour)
			for i := 0; i < 100; i++ {
				if d := e.PreCall(ctx, call); d.Action != Allow {
					t.Fatalf("call %d hours later: %s", i, d.Action)
				}
			}
		})
	}
}

// TestSeedRedaction: an output containing "password: hunter2" gets a
// redact decision naming the seed rule and its message.
func TestSeedRedaction(t *testing.T) {
	e := NewEngine(mustSet(t, seedRateLimit, seedSanitize), Options{})
	call := &Call{Tool: "filesystem_read", Params: map[string]any{"path": "/data/users.json"}}
	ctx := context.Background()
	pre := e.PreCall(ctx, call)
	if pre.Action != Allow || len(pre.Matched) != 0 {
		t.Fatalf("pre-call = %+v, want allow without matches (the output rule runs after the call)", pre)
	}
	d := e.PostCall(ctx, call, `{"users":[{"name":"ann","password: hunter2"}]}`)
	want := []string{"sanitize-sensitive-data/#0"}
	if d.Action != Redact || !d.RedactionRequired() || !slices.Equal(d.Rules(), want) || d.Reason != "Sensitive data detected and redacted" {
		t.Fatalf("post-call = %+v, want redact by %v with the seed's message", d, want)
	}
	if !d.Proceeds() {
		t.Fatal("a redacted output must still go ahead (redacted)")
	}
	if d := e.PostCall(ctx, call, `{"users":[{"name":"ann"}]}`); d.Action != Allow || d.RedactionRequired() {
		t.Fatalf("clean output = %+v, want allow", d)
	}
	if d := e.PostCall(ctx, call, `api_key=abc`); d.Action != Redact {
		t.Fatalf("api_key output = %s, want redact (the second half of the or)", d.Action)
	}
	m := Merge(pre, d)
	if m.Action != Redact || m.Stage != PostCall || len(m.Matched) != 1 {
		t.Fatalf("merged = %+v", m)
	}
}

type fakeSecrets struct{ err error }

func (f fakeSecrets) HasSecret(_ context.Context, s string) (bool, error) {
	return strings.Contains(s, "sk-"), f.err
}

const decisionPolicies = `
policies:
  - name: p
    rules:
      - name: block-etc
        condition: tool == 'filesystem_read' and glob('/etc/*', params.path ?? '')
        action: block
        message: no /etc
      - name: approve-writes
        condition: tool == 'filesystem_write'
        action: require_approval
        message: writes need a person
      - name: warn-big
        condition: tool == 'filesystem_write' and len(string(params.content ?? '')) > 10
        action: warn
      - name: audit-lists
        condition: tool == 'filesystem_list'
        action: audit
      - name: fragile
        condition: tool == 'api_call' and params.url startsWith 'https://'
        action: warn
      - name: quoted-or
        condition: "tool == 'a or b'"
        action: block
      - name: low-trust-redact
        condition: trust_score < 300
        action: redact
      - name: secrets
        condition: has_secret(output)
        action: redact
        message: secret in output
      - name: withhold
        condition: output contains 'TOP SECRET'
        action: block
      - name: off
        condition: "true"
        action: block
        enabled: false
      - name: proxied
        condition: method == 'resources/read' and upstream == 'files' and uri startsWith 'file:///private/'
        action: block
      - name: client-audit
        condition: client == 'inspector' and upstream_tool == 'raw'
        action: audit
      - name: agent-rule
        condition: agent == 'did:agentmesh:evil'
        action: block
`

func TestDecisions(t *testing.T) {
	e := NewEngine(mustSet(t, decisionPolicies), Options{Secrets: fakeSecrets{}})
	tests := []struct {
		name   string
		call   Call
		output *string
		action Action
		rules  []string
		reason string
		err    bool
	}{
		{name: "nothing matches", call: Call{Tool: "filesystem_read", Params: map[string]any{"path": "/data/a"}, TrustScore: 800},
			action: Allow, reason: "no rule matched"},
		{name: "glob block", call: Call{Tool: "filesystem_read", Params: map[string]any{"path": "/etc/passwd"}, TrustScore: 800},
			action: Block, rules: []string{"p/block-etc"}, reason: "no /etc"},
		{name: "dot-dot cannot dodge a block", call: Call{Tool: "filesystem_read", Params: map[string]any{"path": "/data/../etc/shadow"}, TrustScore: 800},
			action: Block, rules: []string{"p/block-etc"}},
		{name: "most restrictive wins, every match listed", call: Call{Tool: "filesystem_write", Params: map[string]any{"content": "a long piece of text"}, TrustScore: 100},
			action: RequireApproval, rules: []string{"p/approve-writes", "p/warn-big", "p/low-trust-redact"}, reason: "approval required: writes need a person"},
		{name: "audit allows", call: Call{Tool: "filesystem_list", TrustScore: 800},
			action: Audit, rules: []string{"p/audit-lists"}},
		{name: "warn allows", call: Call{Tool: "api_call", Params: map[string]any{"url": "https://x"}, TrustScore: 800},
			action: Warn, rules: []string{"p/fragile"}},
		{name: "missing param is nil: startsWith is false", call: Call{Tool: "api_call", TrustScore: 800},
			action: Allow},
		{name: "evaluation error fails closed", call: Call{Tool: "api_call", Params: map[string]any{"url": 7.0}, TrustScore: 800},
			action: Block, rules: []string{"p/fragile"}, reason: "policy error in p/fragile, failing closed", err: true},
		{name: "' or ' inside quotes is part of the string", call: Call{Tool: "a", TrustScore: 800},
			action: Allow},
		{name: "quoted string matches whole", call: Call{Tool: "a or b", TrustScore: 800},
			action: Block, rules: []string{"p/quoted-or"}},
		{name: "pre-call redact", call: Call{Tool: "x", TrustScore: 299},
			action: Redact, rules: []string{"p/low-trust-redact"}},
		{name: "has_secret", call: Call{Tool: "x", TrustScore: 800}, output: ptr("token sk-123"),
			action: Redact, rules: []string{"p/secrets"}, reason: "secret in output"},
		{name: "post-call block beats redact", call: Call{Tool: "x", TrustScore: 800}, output: ptr("TOP SECRET sk-1"),
			action: Block, rules: []string{"p/secrets", "p/withhold"}},
		{name: "clean output", call: Call{Tool: "x", TrustScore: 800}, output: ptr("fine"),
			action: Allow},
		{name: "proxy fields", call: Call{Tool: "files_read", Method: "resources/read", Upstream: "files", URI: "file:///private/k", TrustScore: 800},
			action: Block, rules: []string{"p/proxied"}},
		{name: "client and upstream_tool", call: Call{Tool: "t", Client: "inspector", UpstreamTool: "raw", TrustScore: 800},
			action: Audit, rules: []string{"p/client-audit"}},
		{name: "agent", call: Call{Tool: "t", Agent: "did:agentmesh:evil", TrustScore: 800},
			action: Block, rules: []string{"p/agent-rule"}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decision
			if tt.output == nil {
				d = e.PreCall(ctx, &tt.call)
			} else {
				d = e.PostCall(ctx, &tt.call, *tt.output)
			}
			if d.Action != tt.action {
				t.Fatalf("action = %s (%s), want %s", d.Action, d.Reason, tt.action)
			}
			if got := d.Rules(); !slices.Equal(got, tt.rules) && len(got)+len(tt.rules) > 0 {
				t.Errorf("rules = %v, want %v", got, tt.rules)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			if (d.Error != "") != tt.err {
				t.Errorf("error = %q, want error: %v", d.Error, tt.err)
			}
			if !d.Enforced {
				t.Error("not enforced outside shadow mode")
			}
			if d.Proceeds() != tt.action.Permits() {
				t.Errorf("Proceeds = %v for %s", d.Proceeds(), tt.action)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestHasSecretFailsClosed(t *testing.T) {
	set := mustSet(t, "policies:\n  - name: s\n    rules:\n      - condition: has_secret(output)\n        action: redact\n")
	for name, det := range map[string]SecretDetector{"no detector": nil, "detector error": fakeSecrets{err: errors.New("scanner timed out")}} {
		e := NewEngine(set, Options{Secrets: det})
		d := e.PostCall(context.Background(), &Call{Tool: "x"}, "hello")
		if d.Action != Block || d.Error == "" || d.Proceeds() {
			t.Errorf("%s: %+v, want a block with the error", name, d)
		}
	}
}

func TestShadowModeRecordsWithoutEnforcing(t *testing.T) {
	clock := &fakeClock{now: t0}
	e := NewEngine(mustSet(t, seedRateLimit, seedSanitize), Options{Shadow: true, Clock: clock.Now})
	call := &Call{Tool: "api_call", Agent: "a"}
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		e.PreCall(ctx, call)
	}
	d := e.PreCall(ctx, call)
	if d.Action != Block || d.Enforced || !d.Proceeds() || d.Permits() {
		t.Fatalf("shadow 101st = %+v: want action block, enforced false, proceeds", d)
	}
	post := e.PostCall(ctx, call, "password: x")
	if post.Action != Redact || post.RedactionRequired() || post.Enforced {
		t.Fatalf("shadow post = %+v: redaction is not mandatory in shadow mode", post)
	}
	// Calls the policy would have refused are not counted: an hour after
	// the first 100, the window is free again.
	clock.Advance(time.Hour)
	if d := e.PreCall(ctx, call); d.Action != Allow {
		t.Fatalf("an hour later: %s", d.Action)
	}
}

func TestRateLimitCountsOnlyCallsLetThrough(t *testing.T) {
	// Another rule blocks every call with params.bad: those calls do not use
	// up the limit.
	e := NewEngine(mustSet(t, `
policies:
  - name: p
    rules:
      - name: limit
        condition: tool == 'api_call'
        limit: 3/minute
        action: block
      - name: bad
        condition: params.bad ?? false
        action: block
`), Options{Clock: (&fakeClock{now: t0}).Now})
	ctx := context.Background()
	bad := &Call{Tool: "api_call", Params: map[string]any{"bad": true}}
	good := &Call{Tool: "api_call"}
	for i := 0; i < 10; i++ {
		if d := e.PreCall(ctx, bad); d.Action != Block || !slices.Equal(d.Rules(), []string{"p/bad"}) {
			t.Fatalf("bad call %d: %+v", i, d)
		}
	}
	for i := 0; i < 3; i++ {
		if d := e.PreCall(ctx, good); d.Action != Allow {
			t.Fatalf("good call %d: %s (%s): refused calls were counted", i, d.Action, d.Reason)
		}
	}
	d := e.PreCall(ctx, bad)
	if !slices.Equal(d.Rules(), []string{"p/limit", "p/bad"}) {
		t.Fatalf("4th call with bad params: rules %v, want both, in file order", d.Rules())
	}
}

func TestWarnLimitCountsCallsItLetsThrough(t *testing.T) {
	clock := &fakeClock{now: t0}
	e := NewEngine(mustSet(t, `
policies:
  - name: p
    rules:
      - name: burst
        condition: tool == 'filesystem_read'
        limit: 2/minute
        action: warn
`), Options{Clock: clock.Now})
	ctx := context.Background()
	call := &Call{Tool: "filesystem_read"}
	var got []Action
	for i := 0; i < 4; i++ {
		got = append(got, e.PreCall(ctx, call).Action)
		clock.Advance(20 * time.Second)
	}
	// at 0s, 20s allow; 40s warn (2 in window); 60s: the 0s call left, but
	// 20s and the warned 40s call are in the window, so warn again.
	if want := []Action{Allow, Allow, Warn, Warn}; !slices.Equal(got, want) {
		t.Fatalf("actions = %v, want %v", got, want)
	}
}

func TestDefaultActionPerFile(t *testing.T) {
	allowList := `
default_action: block
policies:
  - name: allow-list
    rules:
      - name: reads
        condition: tool == 'filesystem_read'
        action: allow
`
	e := NewEngine(mustSet(t, allowList, seedRateLimit, seedSanitize), Options{})
	ctx := context.Background()
	d := e.PreCall(ctx, &Call{Tool: "filesystem_read"})
	if d.Action != Allow || !slices.Equal(d.Rules(), []string{"allow-list/reads"}) {
		t.Fatalf("allowed tool = %+v", d)
	}
	d = e.PreCall(ctx, &Call{Tool: "code_execute"})
	if d.Action != Block || !slices.Equal(d.Rules(), []string{defaultRule}) || !strings.Contains(d.Reason, "no rule in a.yaml matched") {
		t.Fatalf("unlisted tool = %+v, want blocked by a.yaml's default_action", d)
	}
	// The default never applies after the call.
	if d := e.PostCall(ctx, &Call{Tool: "filesystem_read"}, "hello"); d.Action != Allow {
		t.Fatalf("post-call = %s, want allow", d.Action)
	}
}

func TestInputLimitsFailClosed(t *testing.T) {
	e := NewEngine(mustSet(t, seedRateLimit, seedSanitize), Options{MaxOutputBytes: 16, MaxParamsBytes: 32})
	ctx := context.Background()
	if d := e.PostCall(ctx, &Call{}, strings.Repeat("x", 17)); d.Action != Block || d.Error == "" {
		t.Errorf("large output = %+v", d)
	}
	if d := e.PreCall(ctx, &Call{Params: map[string]any{"k": strings.Repeat("x", 40)}}); d.Action != Block || d.Error == "" {
		t.Errorf("large params = %+v", d)
	}
	deep := map[string]any{}
	for cur, i := deep, 0; i < 100; i++ {
		next := map[string]any{}
		cur["a"] = next
		cur = next
	}
	if d := e.PreCall(ctx, &Call{Params: deep}); d.Action != Block {
		t.Errorf("deep params = %+v", d)
	}
	if d := e.PreCall(ctx, &Call{Params: map[string]any{"k": "small"}}); d.Action != Allow {
		t.Errorf("small params = %+v", d)
	}
}

type failingCounter struct{}

func (failingCounter) Admit(context.Context, time.Time, []ratelimit.Check, func([]int) bool) error {
	return errors.New("database is locked")
}

func (failingCounter) Usage(context.Context, time.Time, []ratelimit.Check) ([]int, error) {
	return nil, errors.New("database is locked")
}

func TestCounterFailureFailsClosed(t *testing.T) {
	e := NewEngine(mustSet(t, seedRateLimit), Options{Counter: failingCounter{}})
	d := e.PreCall(context.Background(), &Call{Tool: "api_call"})
	if d.Action != Block || !strings.Contains(d.Error, "database is locked") || !slices.Equal(d.Rules(), []string{"rate-limit-api-calls/#0"}) {
		t.Fatalf("decision = %+v, want a block naming the rule and the error", d)
	}
	// Calls no limited rule matches do not touch the counter.
	if d := e.PreCall(context.Background(), &Call{Tool: "filesystem_read"}); d.Action != Allow {
		t.Fatalf("unlimited call = %+v", d)
	}
}

func TestReplaceSwapsPolicies(t *testing.T) {
	e := NewEngine(mustSet(t, seedSanitize), Options{})
	call := &Call{Tool: "code_execute"}
	if d := e.PreCall(context.Background(), call); d.Action != Allow {
		t.Fatal(d.Action)
	}
	e.Replace(mustSet(t, "policies:\n  - name: no-code\n    rules:\n      - condition: tool == 'code_execute'\n        action: block\n"))
	if d := e.PreCall(context.Background(), call); d.Action != Block {
		t.Fatalf("after Replace: %s", d.Action)
	}
}

func TestConcurrentDecisions(t *testing.T) {
	// Pooled evaluation state must not leak between goroutines (run with
	// -race).
	e := NewEngine(mustSet(t, decisionPolicies), Options{Secrets: fakeSecrets{}})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				path := "/data/x"
				want := Allow
				if (i+g)%2 == 0 {
					path, want = "/etc/x", Block
				}
				d := e.PreCall(context.Background(), &Call{Tool: "filesystem_read", Agent: fmt.Sprint("agent-", g), Params: map[string]any{"path": path}, TrustScore: 800})
				if d.Action != want {
					t.Errorf("goroutine %d call %d: %s, want %s", g, i, d.Action, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestExplain(t *testing.T) {
	e := NewEngine(mustSet(t, seedRateLimit, seedSanitize, `
policies:
  - name: extra
    rules:
      - name: off
        condition: "true"
        action: block
        enabled: false
      - name: reads
        condition: tool == 'filesystem_read'
        action: audit
`), Options{})
	ctx := context.Background()
	x := e.Explain(ctx, &Call{Tool: "api_call"}, nil)
	byRule := map[string]RuleTrace{}
	for _, r := range x.Rules {
		byRule[r.Rule] = r
	}
	if len(x.Rules) != 4 || x.PostCall != nil || x.Decision.Action != Allow {
		t.Fatalf("explanation = %+v", x)
	}
	rl := byRule["rate-limit-api-calls/#0"]
	if !rl.Evaluated || !rl.ConditionTrue || rl.Matched || rl.Used == nil || *rl.Used != 0 || !strings.Contains(rl.Result, "under the limit") {
		t.Errorf("rate limit trace = %+v", rl)
	}
	if r := byRule["extra/off"]; r.Evaluated || r.Result != "disabled" {
		t.Errorf("disabled trace = %+v", r)
	}
	if r := byRule["sanitize-sensitive-data/#0"]; r.Evaluated || !strings.Contains(r.Result, "no output given") {
		t.Errorf("post-call trace without output = %+v", r)
	}
	if r := byRule["extra/reads"]; !r.Evaluated || r.ConditionTrue || r.Result != "condition is false" {
		t.Errorf("false condition trace = %+v", r)
	}
	out := "password: hunter2"
	x = e.Explain(ctx, &Call{Tool: "filesystem_read"}, &out)
	if x.Decision.Action != Redact || x.PostCall == nil || !slices.Equal(x.Decision.Rules(), []string{"extra/reads", "sanitize-sensitive-data/#0"}) {
		t.Fatalf("explain with output = %+v", x.Decision)
	}
}

// TestReadsTrust: a match says whether its rule's condition reads
// trust_score, from the compiled expression (not the rule's name or a
// string that mentions it).
func TestReadsTrust(t *testing.T) {
	set := mustSet(t, `policies:
  - name: p
    rules:
      - name: minimum-trust
        condition: "trust_score < 500"
        action: block
      - name: trust_score-in-a-name
        condition: "params.note == 'trust_score'"
        action: block
      - name: mixed
        condition: "tool == 'api_call' && trust_score < 900"
        action: block
`)
	e := NewEngine(set, Options{Counter: ratelimit.NewMemory()})
	d := e.PreCall(context.Background(), &Call{Tool: "api_call", TrustScore: 400, Params: map[string]any{"note": "trust_score"}})
	got := map[string]bool{}
	for _, m := range d.Matched {
		got[m.Rule] = m.ReadsTrust
	}
	want := map[string]bool{"p/minimum-trust": true, "p/trust_score-in-a-name": false, "p/mixed": true}
	if !maps.Equal(got, want) {
		t.Fatalf("ReadsTrust by rule = %v, want %v", got, want)
	}
}
