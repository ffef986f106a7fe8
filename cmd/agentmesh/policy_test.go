package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/ui"
)

// TestPolicyExitCodes checks the exit status contract of the policy
// commands (testscript's "! exec" only knows "non-zero"): 0 valid or
// passing, 1 invalid or failing, 2 cannot run.
func TestPolicyExitCodes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".config"))
	t.Setenv("AGENTMESH_CONFIG", "")
	t.Chdir(dir)
	files := map[string]string{
		"good.yaml": "policies:\n  - name: p\n    rules:\n      - condition: tool == 'api_call'\n        limit: 2/minute\n        action: block\n",
		"bad.yaml":  "policies:\n  - name: p\n    rules:\n      - condition: tool == 1\n        action: block\n",
		"pass_test.yaml": "policies: [good.yaml]\ntests:\n  - name: t\n    call: {tool: api_call}\n    prior_calls: 2\n" +
			"    expect: {action: block, rules: [p/#0]}\n",
		"fail_test.yaml":   "policies: [good.yaml]\ntests:\n  - name: t\n    call: {tool: api_call}\n    expect: {action: block}\n",
		"broken_test.yaml": "policies: [missing.yaml]\ntests:\n  - name: t\n    call: {tool: a}\n    expect: {action: allow}\n",
	}
	for name, data := range files {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"policy", "good.yaml", "--validate"}, exitOK},
		{[]string{"policy", "good.yaml", "--validate", "-o", "json"}, exitOK},
		{[]string{"policy", "bad.yaml", "--validate"}, exitProblem},
		{[]string{"policy", "good.yaml", "bad.yaml", "--validate", "-o", "json"}, exitProblem},
		{[]string{"policy", "missing.yaml", "--validate"}, exitCannot},
		{[]string{"policy", "good.yaml", "missing.yaml", "--validate"}, exitCannot},
		{[]string{"policy", "--validate"}, exitOK}, // the embedded default
		{[]string{"policy", "test", "pass_test.yaml"}, exitOK},
		{[]string{"policy", "test", "fail_test.yaml"}, exitProblem},
		{[]string{"policy", "test", "pass_test.yaml", "fail_test.yaml"}, exitProblem},
		{[]string{"policy", "test", "missing_test.yaml"}, exitCannot},
		{[]string{"policy", "test", "broken_test.yaml"}, exitCannot},
		{[]string{"policy", "test"}, exitCannot},
		{[]string{"policy", "explain", "--tool", "api_call", "--policy", "good.yaml", "--prior-calls", "5"}, exitOK},
		{[]string{"policy", "explain", "--tool", "api_call", "--policy", "bad.yaml"}, exitProblem},
		{[]string{"policy", "explain", "--tool", "api_call", "--params", "nope"}, exitCannot},
		{[]string{"policy", "explain", "--tool", "api_call", "--prior-calls", "-1"}, exitCannot},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		got := run(tt.args, &ui.IO{In: strings.NewReader(""), Out: &out, Err: &errb})
		if got != tt.want {
			t.Errorf("agentmesh %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), got, tt.want, out.String(), errb.String())
		}
	}
}
