package redact

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// knownKey looks like nothing any detector knows: only the exact match
// can find it (TestKnownSecretsNeedTheOption proves that).
const knownKey = "plum7-orchard-Q2xv-lantern"

const knownMarker = "[REDACTED:" + RuleConfiguredSecret + "]"

func TestKnownSecretsNeedTheOption(t *testing.T) {
	ctx := context.Background()
	for _, gitleaks := range []bool{false, true} {
		plain := New(Options{DisableGitleaks: !gitleaks})
		text := "the upstream says: my key is " + knownKey
		if res, err := plain.RedactText(ctx, text); err != nil || res.Text != text {
			t.Fatalf("gitleaks %v: without Secrets the key is left alone, got %q, %v (pick another test key)", gitleaks, res.Text, err)
		}
		known := New(Options{DisableGitleaks: !gitleaks, Secrets: []string{knownKey}})
		res, err := known.RedactText(ctx, text)
		if err != nil || res.Text != "the upstream says: my key is "+knownMarker {
			t.Fatalf("gitleaks %v: with Secrets: %q, %v", gitleaks, res.Text, err)
		}
		if len(res.Findings) != 1 || res.Findings[0].RuleID != RuleConfiguredSecret || res.Findings[0].Start != len(text)-len(knownKey) {
			t.Errorf("findings: %+v", res.Findings)
		}
	}
}

func TestKnownSecretsText(t *testing.T) {
	ctx := context.Background()
	quoted := `pa"ss\word` + "\n2"
	r := New(Options{DisableGitleaks: true, Secrets: []string{knownKey, "", quoted, "Bearer " + knownKey}})
	tests := []struct{ in, want string }{
		{knownKey, knownMarker},
		{knownKey + knownKey + "x" + knownKey, knownMarker + knownMarker + "x" + knownMarker},
		{"prefix" + knownKey + "suffix", "prefix" + knownMarker + "suffix"},
		// A longer configured value that contains another wins as one span.
		{"Authorization: Bearer " + knownKey, "Authorization: " + knownMarker},
		// Case matters: a different string is not the secret.
		{strings.ToUpper(knownKey), strings.ToUpper(knownKey)},
		// Part of the secret is not the secret.
		{knownKey[:10], knownKey[:10]},
		// As it appears inside JSON text returned as plain text.
		{`{"key": "pa\"ss\\word\n2"}`, `{"key": "` + knownMarker + `"}`},
		{"raw: " + quoted, "raw: " + knownMarker},
		// The own detectors still run beside it.
		{"password: hunter2\nkey " + knownKey, "password: [REDACTED:password-pair]\nkey " + knownMarker},
	}
	for _, tt := range tests {
		res, err := r.RedactText(ctx, tt.in)
		if err != nil || res.Text != tt.want {
			t.Errorf("RedactText(%q) = %q, %v; want %q", tt.in, res.Text, err, tt.want)
		}
	}
	if found, err := r.HasSecret(ctx, "x "+knownKey); !found || err != nil {
		t.Errorf("HasSecret = %v, %v", found, err)
	}
}

func TestKnownSecretsJSONAndValues(t *testing.T) {
	ctx := context.Background()
	r := New(Options{DisableGitleaks: true, Secrets: []string{knownKey}})
	in := `{"content": [{"type": "text", "text": "echo: ` + knownKey + `"}], "structuredContent": {"env": {"UP_KEY": "` + knownKey + `"}, "` + knownKey + `": 1}}`
	out, findings, err := r.RedactJSON(ctx, []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), knownKey) || strings.Count(string(out), knownMarker) != 3 || !json.Valid(out) {
		t.Errorf("RedactJSON = %s", out)
	}
	if len(findings) != 3 {
		t.Errorf("findings: %+v", findings)
	}
	params := map[string]any{"url": "https://api.example.com/?k=" + knownKey, "headers": map[string]any{"X-Key": knownKey}, "n": []any{knownKey}}
	v, _, err := r.RedactValue(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), knownKey) || strings.Count(string(b), knownMarker) != 3 {
		t.Errorf("RedactValue = %s", b)
	}
	if params["headers"].(map[string]any)["X-Key"] != knownKey {
		t.Error("RedactValue modified its input")
	}
}

func TestRedactKnown(t *testing.T) {
	r := New(Options{Secrets: []string{knownKey}})
	in := "upstream wx: starting with key " + knownKey + ", password: hunter2"
	if got := r.RedactKnown(in); got != "upstream wx: starting with key "+knownMarker+", password: hunter2" {
		t.Errorf("RedactKnown = %q (only configured secrets are replaced)", got)
	}
	if got := New(Options{}).RedactKnown(in); got != in {
		t.Errorf("RedactKnown without secrets = %q", got)
	}
	var nilR *Redactor
	if got := nilR.RedactKnown(in); got != in {
		t.Errorf("nil Redactor: %q", got)
	}
}
