package main

import (
	"encoding/json"
	"testing"
)

// FuzzParseClaudeConfig: whatever the bytes, parsing does not panic; what
// parses formats as valid JSON that parses to the same tree again.
func FuzzParseClaudeConfig(f *testing.F) {
	f.Add([]byte(`{"mcpServers": {"a": {"command": "x", "args": ["y"]}}}`))
	f.Add([]byte("{\n  // a comment\n  \"mcpServers\": {\"a\": {\"command\": \"x\",},},\n}\n"))
	f.Add([]byte("\ufeff{/* c */\"k\": [1, 2.5e3, true, null, \"\\u00e9\"]}"))
	f.Add([]byte(`{"a": 1, "a": 2}`))
	f.Add([]byte(`{"a": [[[[[[[[[[[[]]]]]]]]]]]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		top, src, err := parseClaudeConfig("f.json", data)
		if err != nil {
			return
		}
		out := src.format(top)
		if !json.Valid(out) {
			t.Fatalf("%q formats as invalid JSON %q", data, out)
		}
		again, src2, err := parseClaudeConfig("f.json", out)
		if err != nil {
			t.Fatalf("the formatted output %q does not parse: %v", out, err)
		}
		if string(src2.format(again)) != string(out) {
			t.Fatalf("formatting is not stable: %q then %q", out, src2.format(again))
		}
	})
}
