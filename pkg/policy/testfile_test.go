package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyTestFileRuns(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"policies/seed.yaml": seedRateLimit + seedSanitize[len("policies:\n"):],
		"policies/seed_test.yaml": `policies: [seed.yaml]
tests:
  - name: passes
    call: {tool: api_call}
    prior_calls: 100
    expect: {action: block, rules: [rate-limit-api-calls/#0], reason: "limit 100/hour"}
  - name: wrong action
    call: {tool: api_call}
    prior_calls: 99
    expect: {action: block}
  - name: wrong rules and reason
    call: {tool: filesystem_read, output: "password: hunter2"}
    expect: {action: redact, rules: [rate-limit-api-calls/#0], reason: nope}
  - name: numbers are JSON numbers
    call: {tool: api_call, params: {n: 3}}
    expect: {action: allow, rules: []}
`,
	})
	tf, err := LoadTestFile(filepath.Join(dir, "policies/seed_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tf.Cases[3].Call.Params["n"].(float64); !ok {
		t.Errorf("params.n is %T, want float64 like a JSON call", tf.Cases[3].Call.Params["n"])
	}
	res := tf.Run(context.Background(), TestOptions{})
	if len(res) != 4 {
		t.Fatalf("%d results", len(res))
	}
	if !res[0].Passed || res[0].Source != filepath.Join(dir, "policies/seed_test.yaml")+":3:5" {
		t.Errorf("result 0 = %+v", res[0])
	}
	if res[1].Passed || len(res[1].Failures) != 1 || !strings.Contains(res[1].Failures[0], "action = allow, want block") {
		t.Errorf("result 1 = %+v", res[1])
	}
	f := res[2].Failures
	if res[2].Passed || len(f) != 2 ||
		f[0] != "rules = [sanitize-sensitive-data/#0], want [rate-limit-api-calls/#0]" ||
		!strings.Contains(f[1], `want it to contain "nope"`) {
		t.Errorf("result 2 failures = %q", f)
	}
	if !res[3].Passed {
		t.Errorf("result 3 = %+v", res[3])
	}
}

func TestPolicyTestFileErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"p.yaml": seedRateLimit,
		"bad_test.yaml": `policies: [p.yaml]
tests:
  - name: one
    call: {tool: api_call, trust_scor: 5}
    expect: {action: block}
`,
		"bad2_test.yaml": `policies: [p.yaml]
tests:
  - name: one
    call: {tool: api_call}
    prior_calls: -1
    after: soon
    expect: {action: deny, rules: [rate-limit-api-calls/#1]}
  - name: one
    expect: {}
`,
		"missing_test.yaml":        "policies: [nope.yaml]\ntests:\n  - name: x\n",
		"invalid_policy_test.yaml": "policies: [bad.yaml]\ntests:\n  - name: x\n    call: {tool: a}\n    expect: {action: allow}\n",
		"bad.yaml":                 "policies:\n  - name: x\n    rules:\n      - condition: tool == 1\n        action: block\n",
	})
	_, err := LoadTestFile(filepath.Join(dir, "bad_test.yaml"))
	if got := err.Error(); !strings.Contains(got, "bad_test.yaml:4:28: unknown key \"trust_scor\"") {
		t.Errorf("bad_test.yaml: %v", err)
	}
	_, err = LoadTestFile(filepath.Join(dir, "bad2_test.yaml"))
	want := []string{
		`bad2_test.yaml:5:18: prior_calls must be between 0 and 1000000`,
		`bad2_test.yaml:6:12: after: "soon" is not a duration`,
		`bad2_test.yaml:7:22: unknown action "deny"`,
		`bad2_test.yaml:7:36: expect.rules: no rule "rate-limit-api-calls/#1" in the policies (rules: default_action, rate-limit-api-calls/#0)`,
		`bad2_test.yaml:8:5: test "one" needs a call`,
		`bad2_test.yaml:8:5: test "one" needs expect.action`,
		`bad2_test.yaml:8:11: duplicate test name "one" (first at line 3)`,
	}
	list := yamlpos.Errors(err)
	if len(list) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d", err, len(want))
	}
	for i, w := range want {
		if !strings.Contains(list[i].Error(), w) {
			t.Errorf("error %d = %v, want %s", i, list[i], w)
		}
	}
	if _, err := LoadTestFile(filepath.Join(dir, "missing_test.yaml")); !IsReadError(err) {
		t.Errorf("missing policy: %v, want a ReadError", err)
	}
	if _, err := LoadTestFile(filepath.Join(dir, "nope_test.yaml")); !IsReadError(err) {
		t.Errorf("missing test file: %v, want a ReadError", err)
	}
	if _, err := LoadTestFile(filepath.Join(dir, "invalid_policy_test.yaml")); err == nil || IsReadError(err) || !strings.Contains(err.Error(), "bad.yaml:4:25: invalid operation") {
		t.Errorf("invalid policy: %v", err)
	}
}

func TestExpandAndLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"pol/b.yaml":            seedSanitize,
		"pol/a.yml":             seedRateLimit,
		"pol/default_test.yaml": "not: a policy",
		"pol/notes.txt":         "x",
		"pol/sub/c.yaml":        "x",
		"other.yaml":            "policies:\n  - name: rate-limit-api-calls\n    rules: []\n",
	})
	files, err := Expand(filepath.Join(dir, "pol"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || filepath.Base(files[0]) != "a.yml" || filepath.Base(files[1]) != "b.yaml" {
		t.Fatalf("Expand = %v, want a.yml and b.yaml (tests, other extensions and subdirectories skipped)", files)
	}
	set, err := Load(filepath.Join(dir, "pol"))
	if err != nil || len(set.Rules()) != 2 {
		t.Fatalf("Load = %v, %v", set, err)
	}
	_, err = Load(filepath.Join(dir, "pol"), filepath.Join(dir, "other.yaml"))
	if err == nil || !strings.Contains(err.Error(), `other.yaml:2:5: duplicate policy name "rate-limit-api-calls" (also at `) {
		t.Fatalf("duplicate across files: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing")); !IsReadError(err) {
		t.Fatalf("missing path: %v", err)
	}
}

// TestPolicyTestFileCaller: test cases name a caller; conditions read it,
// and prior calls fill that caller's counter only.
func TestPolicyTestFileCaller(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"team.yaml": `policies:
  - name: team
    rules:
      - name: eng-code
        condition: "tool == 'code_execute' and !('eng' in caller.groups)"
        action: block
      - name: reads
        condition: "tool == 'filesystem_read' and caller.claims.tenant == 'acme'"
        limit: 2/minute
        action: block
`,
		"team_test.yaml": `policies: [team.yaml]
tests:
  - name: eng runs code
    call: {tool: code_execute, caller: {id: "oauth:as#alice", groups: [eng]}}
    expect: {action: allow}
  - name: ops does not
    call: {tool: code_execute, caller: {id: "oauth:as#bob", groups: [ops]}}
    expect: {action: block, rules: [team/eng-code]}
  - name: acme's third read
    call: {tool: filesystem_read, caller: {id: "key:acme", kind: apikey, claims: {tenant: acme}}}
    prior_calls: 2
    expect: {action: block, rules: [team/reads]}
  - name: no caller
    call: {tool: code_execute}
    expect: {action: block}
`,
	})
	tf, err := LoadTestFile(filepath.Join(dir, "team_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tf.Run(context.Background(), TestOptions{}) {
		if !r.Passed {
			t.Errorf("%s: %v", r.Name, r.Failures)
		}
	}
}
