package redact

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOwnRulesLinearOnAdversarialInput feeds the own rules 1 MB single-line
// inputs built to trigger repeated work per anchor. A quadratic scan would
// take minutes; a linear one takes milliseconds.
func TestOwnRulesLinearOnAdversarialInput(t *testing.T) {
	units := []string{
		"password: ${X} ", "password=[ ", "<password><![CDATA[", "eyJ", "a@", "://", "1 ",
		"sk-", "-----BEGIN PRIVATE KEY-----", `password:"`, "bearer ", "GB82 ", "x-api-key: <k> ",
		"token=[", "Authorization: <x> ", "password: ${X}", "secret:{",
		// Escaped quotes, prose, key names (issue 16).
		`\\\\\\\"`, `\"password\": \"`, `\\\"password\\\": \\\"a`, `"password": \\\\\\`,
		"password: the ", "x password: see ", "password: swordfish and ", "a_password_x=", "aws_access_key_id = a ",
		`{"pin_password": 1`, "password: x # ",
	}
	r := New(Options{DisableGitleaks: true, Timeout: time.Minute})
	texts := []string{strings.Repeat("- ", 1<<18) + strings.Repeat("password: ${X} ", 1<<15)} // long indentation
	for _, u := range units {
		texts = append(texts, strings.Repeat(u, (1<<20)/len(u)))
	}
	for _, text := range texts {
		u := text[:min(len(text), 20)]
		start := time.Now()
		if _, err := r.RedactText(context.Background(), text); err != nil {
			t.Fatalf("%q: %v", u, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%q...: took %v; the own rules are not linear", u, d)
		}
	}
}

// TestChunkBoundaries places gitleaks-only secrets across the boundaries of
// the chunks gitleaks is run on.
func TestChunkBoundaries(t *testing.T) {
	g := newFakeGen()
	r := New(Options{})
	for _, at := range []int{chunkSize - 20, chunkSize, 2*chunkSize - 3, 2*chunkSize + chunkOverlap - 10} {
		pat := "gh" + "p_" + g.pick(charsAlnum, 36)
		text := keywordFreeText(at) + pat + keywordFreeText(3*chunkSize)
		res, err := r.RedactText(context.Background(), text)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Text, pat) || !strings.Contains(res.Text, "[REDACTED:github-pat]") {
			t.Errorf("secret at offset %d (chunk size %d) not redacted", at, chunkSize)
		}
	}
}

// TestEmbeddedJSONSearchBounded feeds RedactValue and RedactJSON 1 MB
// strings built to make the search for JSON inside strings (embedded.go)
// retry at every byte or redact thousands of documents. The search has a
// budget per call, so each stays well within a second or two.
func TestEmbeddedJSONSearchBounded(t *testing.T) {
	units := []string{
		"[", "{", `"{`, `"[`, `{"a":`, `{"a":"`, `[1],`, `{"a":"b"},`, `\"`, `"{\"`,
		`{"password":"x"} `, `"{\"password\": \"x\"}" `, `{"s":"{\"s\":\"{\\\"s\\\":1}\"}"} `,
		strings.Repeat("[", 20) + "1" + strings.Repeat("]", 19) + " ",
	}
	r := New(Options{DisableGitleaks: true, Timeout: time.Minute})
	for _, u := range units {
		text := strings.Repeat(u, (1<<20)/len(u))
		start := time.Now()
		if _, _, err := r.RedactValue(context.Background(), map[string]any{"code": text}); err != nil {
			t.Fatalf("%q: RedactValue: %v", u, err)
		}
		if _, _, err := r.RedactJSON(context.Background(), []byte(quoteJSON(text))); err != nil {
			t.Fatalf("%q: RedactJSON: %v", u, err)
		}
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("%q...: took %v; the embedded JSON search is not bounded", u, d)
		}
	}
}

// TestEmbeddedJSONBudgetFallsBackToText: past the document budget, JSON in
// strings is no longer redacted structurally, but the plain-text rules
// still remove every password.
func TestEmbeddedJSONBudgetFallsBackToText(t *testing.T) {
	var b strings.Builder
	n := embedDocBudget + 100
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `row = '{"id": %d, "password": "pw-%05d-x"}'`+"\n", i, i)
	}
	out, fs, err := New(Options{}).RedactValue(context.Background(), map[string]any{"code": b.String()})
	if err != nil {
		t.Fatal(err)
	}
	code := out.(map[string]any)["code"].(string)
	if strings.Contains(code, "-x\"") || strings.Count(code, "[REDACTED:password-pair]") != n {
		t.Errorf("not every password redacted: %d markers, want %d", strings.Count(code, "[REDACTED:password-pair]"), n)
	}
	structural := 0
	for _, f := range fs {
		if strings.HasSuffix(f.Path, "/password") {
			structural++
		}
	}
	if structural != embedDocBudget || len(fs) != n {
		t.Errorf("%d structural findings of %d, want %d of %d", structural, len(fs), embedDocBudget, n)
	}
}
