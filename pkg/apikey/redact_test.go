package apikey

import (
	"context"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/redact"
)

// TestRedactedByShape: pkg/redact knows the key format (it cannot import
// this package), so a key echoed in a call's parameters or an output is
// removed before the audit log or a model sees it.
func TestRedactedByShape(t *testing.T) {
	r := redact.New(redact.Options{DisableGitleaks: true})
	for i := 0; i < 20; i++ {
		key, _, err := Generate()
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.RedactText(context.Background(), "the gateway key is "+key+", keep it safe")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Text, key[len(Prefix)+IDLen+1:]) || !strings.Contains(res.Text, "[REDACTED:agentmesh-api-key]") {
			t.Fatalf("not redacted: %s", res.Text)
		}
	}
}
