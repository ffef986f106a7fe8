package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// fuzzRedactor has a generous timeout: fuzz inputs are small, and a
// timeout is a legitimate (withheld) outcome anyway.
var fuzzRedactor = New(Options{Timeout: 5 * time.Second})

func FuzzRedactText(f *testing.F) {
	for _, c := range secretCorpus() {
		f.Add(c.text)
	}
	for _, c := range benignCorpus {
		f.Add(c.text)
	}
	f.Add("")
	f.Add("password: |\n  a\n b")
	f.Add("-----BEGIN PRIVATE KEY-----")
	f.Add("a:b=c://d:@e@f")
	for _, seed := range newPathSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		res, err := fuzzRedactor.RedactText(context.Background(), s)
		if err != nil {
			if !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrInputTooLarge) {
				t.Fatalf("unexpected error: %v", err)
			}
			if !res.Withheld || len(res.Findings) != 0 {
				t.Fatalf("error without withheld result: %+v", res)
			}
			return
		}
		if len(res.Findings) == 0 && res.Text != s {
			t.Fatalf("no findings but text changed:\n in %q\nout %q", s, res.Text)
		}
		prev := 0
		for _, fd := range res.Findings {
			if fd.Start < prev || fd.End <= fd.Start || fd.End > len(s) {
				t.Fatalf("bad finding %+v (prev end %d, len %d)", fd, prev, len(s))
			}
			prev = fd.End
		}
		if applyFindings(s, res.Findings) != res.Text {
			t.Fatalf("Text does not match Findings")
		}
	})
}

func FuzzRedactJSON(f *testing.F) {
	f.Add([]byte(`{"password": "x", "n": 12345678901234567890, "f": 1.10}`))
	f.Add([]byte(`{"body": "{\"token\": \"abc\", \"x\": [1, \"a@example.com\"]}"}`))
	f.Add([]byte(`["a", {"secret": {"x": "y", "z": [1, true, null, ""]}}]`))
	f.Add([]byte(`{"a@b.co": {"api_key": -1.5e3}}`))
	f.Add([]byte(`"\u0000\ud800 \\ \/"`))
	f.Add([]byte(`{"k": "{\"k\": \"{\\\"password\\\": 1}\"}"}`))
	f.Add([]byte(`{`))
	for _, c := range secretCorpus() {
		b, _ := json.Marshal(map[string]string{"text": c.text})
		f.Add(b)
	}
	for _, seed := range newPathSeeds() {
		b, _ := json.Marshal(map[string]any{"code": seed, "aws_access_key_id": seed, "n": []any{seed}})
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		valid := json.Valid(raw)
		out, findings, err := fuzzRedactor.RedactJSON(context.Background(), raw)
		switch {
		case errors.Is(err, ErrTimeout), errors.Is(err, ErrInputTooLarge):
			if out != nil {
				t.Fatalf("withheld output returned")
			}
			return
		case !valid:
			if !errors.Is(err, ErrInvalidJSON) || out != nil {
				t.Fatalf("invalid JSON: got %q, %v", out, err)
			}
			return
		case err != nil:
			t.Fatalf("unexpected error on valid JSON: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not valid JSON:\n in %q\nout %q", raw, out)
		}
		if len(findings) == 0 && !bytes.Equal(out, raw) {
			t.Fatalf("no findings but output changed:\n in %q\nout %q", raw, out)
		}
	})
}

// newPathSeeds are inputs for the paths added for issue 16: key-name
// assignments, prose after a key, quotes escaped several times, and JSON
// nested in strings (raw, as a string literal, truncated, past the depth
// limit).
func newPathSeeds() []string {
	inner := `{"db_password": "hunter2-Secret!", "secret": {"k": 1}, "aws_access_key_id": "AKIAq1w2"}`
	seeds := []string{
		"aws_access_key_id = AKIA1234abcd\nDB_PASSWORD_PROD=x # c\n?aws_secret_access_key=a&x=1",
		"How to reset your password: click Forgot password.\nPassword: must be at least 12 characters",
		"password: Tr0ub4dor&3 and more\nthe password: is required\npassword: swordfish for now",
		`{\"password\": \"a b\", \\\"token\\\": \\\"t\\\\\\\"x\\\"}`,
		`{\'password\': \'pw\'} {"pin_password": 12}] "password": \\`,
		`x = json.loads("{\"a\": [1, {\"password\": \"p\"}]}") + '{"token_v2": "t"}' + "{" + "[" + '"{'`,
		"[[[[{\"a\":[\"{\\\"b\\\": 1}\"]}]] {\"x\": \"\\u0000\"} [1, 2]",
	}
	for _, levels := range []int{1, 2, 3, 5, maxEmbeddedDepth + 1} {
		doc := nestJSON(inner, levels)
		seeds = append(seeds, "x = '"+doc+"'", "y = "+quoteJSON(doc), doc[:len(doc)-levels])
	}
	return seeds
}

func FuzzRedactValue(f *testing.F) {
	for _, seed := range newPathSeeds() {
		f.Add(seed)
	}
	for _, c := range secretCorpus() {
		f.Add(c.text)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, findings, err := fuzzRedactor.RedactValue(context.Background(), map[string]any{"code": s, "n": 1})
		if err != nil {
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("unexpected error: %v", err)
			}
			if out != nil || findings != nil {
				t.Fatalf("withheld result returned")
			}
			return
		}
		code, ok := out.(map[string]any)["code"].(string)
		if !ok {
			t.Fatalf("code is no longer a string: %#v", out)
		}
		if len(findings) == 0 && code != s {
			t.Fatalf("no findings but value changed:\n in %q\nout %q", s, code)
		}
		for _, fd := range findings {
			if !strings.HasPrefix(fd.Path, "/code") {
				t.Fatalf("finding outside the string: %+v", fd)
			}
			if fd.Path == "/code" && !fd.Key && (fd.Start < 0 || fd.End <= fd.Start || fd.End > len(s)) {
				t.Fatalf("bad finding %+v (len %d)", fd, len(s))
			}
		}
	})
}
