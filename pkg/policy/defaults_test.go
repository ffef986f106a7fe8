package policy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestRepositoryDefaultPolicyIsCurrent(t *testing.T) {
	for file, embedded := range map[string][]byte{"default.yaml": DefaultYAML, "default_test.yaml": DefaultTestYAML} {
		got, err := os.ReadFile("../../policies/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, embedded) {
			t.Fatalf("policies/%s differs from pkg/policy/%s: run `go generate ./pkg/policy`", file, file)
		}
	}
}

// TestDefaultPolicyTests runs default_test.yaml against default.yaml, as
// `agentmesh policy test` does after `agentmesh init`, and checks that the
// tests exercise every rule.
func TestDefaultPolicyTests(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string][]byte{"default.yaml": DefaultYAML, "default_test.yaml": DefaultTestYAML} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tf, err := LoadTestFile(filepath.Join(dir, "default_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exercised := map[string]bool{}
	for i, r := range tf.Run(context.Background(), TestOptions{}) {
		if tf.Cases[i].Serve() {
			continue // serve cases need serve's decision path: policy_test.txtar runs them
		}
		if !r.Passed {
			t.Errorf("%s (%s): %v", r.Name, r.Source, r.Failures)
		}
		for _, id := range r.Decision.Rules() {
			exercised[id] = true
		}
	}
	rules := tf.Set.Rules()
	if len(rules) < 5 {
		t.Fatalf("default policy has %d rules", len(rules))
	}
	for _, r := range rules {
		if !exercised[r.ID] {
			t.Errorf("no test in default_test.yaml makes %s match", r.ID)
		}
	}
}

func TestDefaultPolicyKeepsTheSeedRules(t *testing.T) {
	for _, want := range []string{
		"      - name: \"secrets-in-output\"\n        condition: \"output contains 'password' or output contains 'api_key'\"\n        action: \"redact\"\n        message: \"Sensitive data detected and redacted\"\n",
		"        condition: \"tool == 'api_call'\"\n        limit: \"100/hour\"\n        action: \"block\"\n",
	} {
		if !bytes.Contains(DefaultYAML, []byte(want)) {
			t.Errorf("default.yaml lost a seed rule:\n%s", want)
		}
	}
}
