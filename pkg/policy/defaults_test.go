package policy

import (
	"bytes"
	"os"
	"testing"
)

func TestRepositoryDefaultPolicyIsCurrent(t *testing.T) {
	got, err := os.ReadFile("../../policies/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, DefaultYAML) {
		t.Fatal("policies/default.yaml differs from pkg/policy/default.yaml: run `go generate ./pkg/policy`")
	}
}
