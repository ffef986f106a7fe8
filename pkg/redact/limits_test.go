package redact

import (
	"context"
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
