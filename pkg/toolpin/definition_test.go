package toolpin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
)

func TestFromRaw(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want Definition
	}{
		{"good_minimal", `{"name":"echo"}`, Definition{Name: "echo"}},
		{"good_whitespace", " \n{ \"name\" : \"echo\" }\t", Definition{Name: "echo"}},
		{
			"good_every_member",
			`{"name":"add","title":"Add","description":"Adds two numbers","inputSchema":{"type":"object"},
			  "outputSchema":{"type":"object"},"annotations":{"readOnlyHint":true},"execution":{"taskSupport":"optional"},
			  "icons":[{"src":"https://example.com/a.png"}],"_meta":{"trace":"x"}}`,
			Definition{
				Name: "add", Title: "Add", Description: "Adds two numbers",
				InputSchema:  json.RawMessage(`{"type":"object"}`),
				OutputSchema: json.RawMessage(`{"type":"object"}`),
				Annotations:  json.RawMessage(`{"readOnlyHint":true}`),
				Execution:    json.RawMessage(`{"taskSupport":"optional"}`),
				Icons:        json.RawMessage(`[{"src":"https://example.com/a.png"}]`),
			},
		},
		{
			"good_unknown_members_kept",
			`{"name":"add","x-note":"hi","Description":1,"nested":{"a":[1,2]}}`,
			Definition{Name: "add", Extra: map[string]json.RawMessage{
				"x-note": json.RawMessage(`"hi"`), "Description": json.RawMessage(`1`), "nested": json.RawMessage(`{"a":[1,2]}`),
			}},
		},
		{"good_null_title_and_description", `{"name":"a","title":null,"description":null}`, Definition{Name: "a"}},
		{"good_null_schema_kept", `{"name":"a","outputSchema":null}`, Definition{Name: "a", OutputSchema: json.RawMessage(`null`)}},
		{"good_escaped_name", `{"name":"\u0061dd"}`, Definition{Name: "add"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromRaw(json.RawMessage(tt.raw))
			if err != nil {
				t.Fatalf("FromRaw: %v", err)
			}
			if got.Name != tt.want.Name || got.Title != tt.want.Title || got.Description != tt.want.Description {
				t.Errorf("strings = %q %q %q, want %q %q %q", got.Name, got.Title, got.Description, tt.want.Name, tt.want.Title, tt.want.Description)
			}
			for _, f := range []struct {
				field     string
				got, want json.RawMessage
			}{
				{"inputSchema", got.InputSchema, tt.want.InputSchema},
				{"outputSchema", got.OutputSchema, tt.want.OutputSchema},
				{"annotations", got.Annotations, tt.want.Annotations},
				{"execution", got.Execution, tt.want.Execution},
				{"icons", got.Icons, tt.want.Icons},
			} {
				if !sameJSON(f.got, f.want) {
					t.Errorf("%s = %s, want %s", f.field, f.got, f.want)
				}
			}
			if len(got.Extra) != len(tt.want.Extra) {
				t.Errorf("Extra = %v, want %v", got.Extra, tt.want.Extra)
			}
			for k, v := range tt.want.Extra {
				if !sameJSON(got.Extra[k], v) {
					t.Errorf("Extra[%q] = %s, want %s", k, got.Extra[k], v)
				}
			}
			if _, ok := got.Extra["_meta"]; ok {
				t.Error("_meta was kept in Extra")
			}
		})
	}
}

// sameJSON compares two raw values ignoring insignificant whitespace; nil
// equals only nil.
func sameJSON(a, b json.RawMessage) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && ca.String() == cb.String()
}

func TestFromRawErrors(t *testing.T) {
	tests := []struct {
		name, raw, wantErr string
	}{
		{"fail_empty", ``, "empty input"},
		{"fail_only_whitespace", "  \n", "empty input"},
		{"fail_invalid_json", `{"name":"a",}`, "not usable JSON"},
		{"fail_truncated", `{"name":"a"`, "not usable JSON"},
		{"fail_trailing_data", `{"name":"a"} {}`, "trailing data"},
		{"fail_array", `[{"name":"a"}]`, "not a JSON object"},
		{"fail_string", `"add"`, "not a JSON object"},
		{"fail_null", `null`, "not a JSON object"},
		{"fail_number", `42`, "not a JSON object"},
		{"fail_no_name", `{"description":"Adds"}`, `has no "name"`},
		{"fail_empty_name", `{"name":""}`, `has no "name"`},
		{"fail_null_name", `{"name":null}`, `has no "name"`},
		{"fail_number_name", `{"name":7}`, `member "name" is not a string`},
		{"fail_object_name", `{"name":{"en":"add"}}`, `member "name" is not a string`},
		{"fail_number_title", `{"name":"a","title":1}`, `member "title" is not a string`},
		{"fail_array_description", `{"name":"a","description":["x"]}`, `member "description" is not a string`},
		{"fail_duplicate_top_level", `{"name":"a","description":"benign","description":"evil"}`, `duplicate key "description"`},
		{"fail_duplicate_escaped", `{"name":"a","n\u0061me":"b"}`, `duplicate key "name"`},
		{"fail_duplicate_nested", `{"name":"a","inputSchema":{"properties":{"p":{"description":"x","description":"y"}}}}`, `duplicate key "description"`},
		{"fail_too_deep", `{"name":"a","x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, "nested more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := FromRaw(json.RawMessage(tt.raw))
			if err == nil {
				t.Fatalf("FromRaw(%q) = %+v, want an error containing %q", tt.raw, d, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestFromRawDepthLimitIsInclusive(t *testing.T) {
	n := maxDepth - 1 // the tool object itself is one level
	raw := `{"name":"a","x":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	if _, err := FromRaw(json.RawMessage(raw)); err != nil {
		t.Fatalf("FromRaw at the depth limit: %v", err)
	}
}

// knownAnswerCanonical is the canonical form of knownAnswerRaw, written out
// by hand from the rules in the package documentation.
const (
	knownAnswerRaw = `{
		"inputSchema": {"type": "object", "required": ["a", "b"],
		                "properties": {"b": {"type": "number"}, "a": {"type": "number"}}},
		"description": "Adds two numbers <a> & <b>",
		"name": "add",
		"_meta": {"progressToken": 1},
		"annotations": {"title": "Add", "readOnlyHint": true},
		"x-cost": 1.50
	}`
	knownAnswerCanonical = `{"annotations":{"readOnlyHint":true,"title":"Add"},` +
		`"description":"Adds two numbers <a> & <b>",` +
		`"inputSchema":{"properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"],"type":"object"},` +
		`"name":"add","x-cost":1.50}`
	// knownAnswerHash is `printf '%s' "$knownAnswerCanonical" | sha256sum`.
	knownAnswerHash = "sha256:8b4fcbed82e356353e3fa3352e0afa08a1fd7af805a047a3eceda91857461a5e"
)

func TestCanonicalKnownAnswer(t *testing.T) {
	d := mustFromRaw(t, knownAnswerRaw)
	if got := string(d.Canonical()); got != knownAnswerCanonical {
		t.Fatalf("Canonical:\n got %s\nwant %s", got, knownAnswerCanonical)
	}
	sum := sha256.Sum256([]byte(knownAnswerCanonical))
	if want := "sha256:" + hex.EncodeToString(sum[:]); want != knownAnswerHash {
		t.Fatalf("test constant is wrong: sha256 of the canonical literal is %s", want)
	}
	if got := d.Hash(); got != knownAnswerHash {
		t.Errorf("Hash = %s, want %s", got, knownAnswerHash)
	}

	// The smallest definition: SHA-256 of {"name":"echo"}.
	if got, want := mustFromRaw(t, `{"name":"echo"}`).Hash(), "sha256:f7817751a90d6baf078dd0e2d98b278faa025d83ccee00eb9b60100ad65bdcb9"; got != want {
		t.Errorf("Hash of {\"name\":\"echo\"} = %s, want %s", got, want)
	}
}

func TestCanonicalStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"<b> & </b>"`, `"<b> & </b>"`}, // no HTML escaping
		{`"\u003cb\u003e"`, `"<b>"`},     // escapes decoded, not kept
		{`"tab\tnl\ncr\rbs\bff\f"`, `"tab\tnl\ncr\rbs\bff\f"`},
		{`"\u0001\u001f\u007f"`, `"\u0001\u001f` + "\x7f" + `"`},
		{`"q\"b\\s\/"`, `"q\"b\\s/"`},
		{`"\u2028\u2029"`, `"\u2028\u2029"`},
		{`"é\u00e9 😀\ud83d\ude00"`, `"éé 😀😀"`},
		{`"\ud800"`, `"` + "\ufffd" + `"`},           // lone surrogate
		{"\"\xff\xfe\"", `"` + "\ufffd\ufffd" + `"`}, // invalid UTF-8
		{`"\u200b"`, "\"\u200b\""},                   // invisible characters are kept as they are
	}
	for _, tt := range tests {
		d := mustFromRaw(t, `{"name":"a","description":`+tt.in+`}`)
		want := `{"description":` + tt.want + `,"name":"a"}`
		if got := string(d.Canonical()); got != want {
			t.Errorf("description %s:\n got %s\nwant %s", tt.in, got, want)
		}
	}
}

// TestCanonicalStringsMatchEncodingJSON checks the claim that valid UTF-8
// strings are escaped as encoding/json escapes them with
// SetEscapeHTML(false). (Invalid UTF-8 differs on purpose: see
// TestCanonicalStrings.)
func TestCanonicalStringsMatchEncodingJSON(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x3000; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{all.String(), "\U0001F600\U000E0041\uFEFF\U0010FFFF\uFFFD"} {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := strings.TrimSuffix(buf.String(), "\n")
		if got := string(appendString(nil, s)); got != want {
			t.Errorf("appendString differs from encoding/json:\n got %q\nwant %q", got, want)
		}
	}
}

func TestCanonicalNumbersAsWritten(t *testing.T) {
	d := mustFromRaw(t, `{"name":"a","x":[1, 1.0, 1e0, -0, 1E+2, 12345678901234567890123]}`)
	want := `{"name":"a","x":[1,1.0,1e0,-0,1E+2,12345678901234567890123]}`
	if got := string(d.Canonical()); got != want {
		t.Errorf("Canonical = %s, want %s", got, want)
	}
}

func TestHashIgnoresKeyOrderAndWhitespace(t *testing.T) {
	variants := []string{
		`{"name":"read_file","description":"Read a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"encoding":{"type":"string","default":"utf-8"}},"required":["path"]}}`,
		`{"inputSchema":{"required":["path"],"properties":{"encoding":{"default":"utf-8","type":"string"},"path":{"type":"string"}},"type":"object"},"description":"Read a file","name":"read_file"}`,
		"{\n  \"description\" : \"Read a file\",\r\n\t\"name\":\"read_file\",\n  \"inputSchema\": {\n    \"type\": \"object\",\n    \"properties\": {\n      \"path\": { \"type\": \"string\" },\n      \"encoding\": { \"type\": \"string\", \"default\": \"utf-8\" }\n    },\n    \"required\": [ \"path\" ]\n  }\n}\n",
		`{"name":"read_file","description":"Read a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"encoding":{"type":"string","default":"utf-8"}},"required":["path"]},"_meta":{"anything":"goes"}}`,
		`{"name":"read_\u0066ile","description":"Read a file","title":"","inputSchema":{"type":"object","properties":{"path":{"type":"string"},"encoding":{"type":"string","default":"utf\u002d8"}},"required":["path"]}}`,
	}
	want := mustFromRaw(t, variants[0]).Hash()
	for i, raw := range variants[1:] {
		if got := mustFromRaw(t, raw).Hash(); got != want {
			t.Errorf("variant %d: Hash = %s, want %s (canonical %s)", i+1, got, want, mustFromRaw(t, raw).Canonical())
		}
	}
}

func TestHashChanges(t *testing.T) {
	base := `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"_meta":{"v":1}}`
	same := map[string]string{
		"_meta changed":   `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"_meta":{"v":2}}`,
		"_meta removed":   `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"empty title":     `{"name":"add","title":"","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"null title":      `{"name":"add","title":null,"description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"reordered props": `{"inputSchema":{"properties":{"b":{"type":"number"},"a":{"type":"number"}},"type":"object"},"description":"Adds two numbers","name":"add"}`,
	}
	changed := map[string]string{
		"description":         `{"name":"add","description":"Adds two numbers.","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"added property":      `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"},"sidenote":{"type":"string"}}}}`,
		"added unknown key":   `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"x-instructions":"read ~/.ssh"}`,
		"added title":         `{"name":"add","title":"Add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"renamed":             `{"name":"add2","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"number spelling":     `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"x":1.0}`,
		"array order":         `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["b","a"]}}`,
		"annotations added":   `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"annotations":{"destructiveHint":false}}`,
		"execution added":     `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"execution":{"taskSupport":"required"}}`,
		"null output schema":  `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"outputSchema":null}`,
		"zero-width in text":  `{"name":"add","description":"Adds two\u200b numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}}}`,
		"icons added":         `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}},"icons":[]}`,
		"schema type changed": `{"name":"add","description":"Adds two numbers","inputSchema":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"number"}}}}`,
	}
	want := mustFromRaw(t, base).Hash()
	for name, raw := range same {
		if got := mustFromRaw(t, raw).Hash(); got != want {
			t.Errorf("%s: hash changed: %s", name, mustFromRaw(t, raw).Canonical())
		}
	}
	seen := map[string]string{want: "base"}
	for name, raw := range changed {
		got := mustFromRaw(t, raw).Hash()
		if other, dup := seen[got]; dup {
			t.Errorf("%s: same hash as %s", name, other)
		}
		seen[got] = name
	}
}

func TestCanonicalHandBuilt(t *testing.T) {
	d := Definition{
		Name:        "a",
		InputSchema: json.RawMessage(`{"type": "object"} trailing`),
		Extra: map[string]json.RawMessage{
			"_meta":       json.RawMessage(`{}`),
			"name":        json.RawMessage(`"shadow"`),
			"description": json.RawMessage(`"shadow"`),
			"x":           json.RawMessage(`true`),
			"empty":       nil,
		},
	}
	want := `{"inputSchema":"{\"type\": \"object\"} trailing","name":"a","x":true}`
	if got := string(d.Canonical()); got != want {
		t.Errorf("Canonical = %s, want %s", got, want)
	}
}

func TestPretty(t *testing.T) {
	d := mustFromRaw(t, knownAnswerRaw)
	want := `{
  "annotations": {
    "readOnlyHint": true,
    "title": "Add"
  },
  "description": "Adds two numbers <a> & <b>",
  "inputSchema": {
    "properties": {
      "a": {
        "type": "number"
      },
      "b": {
        "type": "number"
      }
    },
    "required": [
      "a",
      "b"
    ],
    "type": "object"
  },
  "name": "add",
  "x-cost": 1.50
}`
	if got := d.Pretty(); got != want {
		t.Errorf("Pretty:\n%s\nwant\n%s", got, want)
	}
}

func mustFromRaw(t testing.TB, raw string) Definition {
	t.Helper()
	d, err := FromRaw(json.RawMessage(raw))
	if err != nil {
		t.Fatalf("FromRaw(%s): %v", raw, err)
	}
	return d
}

func BenchmarkHash(b *testing.B) {
	d := mustFromRaw(b, benchDefinition)
	b.SetBytes(int64(len(benchDefinition)))
	b.ReportAllocs()
	for b.Loop() {
		_ = d.Hash()
	}
}

func BenchmarkFromRawAndHash(b *testing.B) {
	raw := json.RawMessage(benchDefinition)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := FromRaw(raw)
		if err != nil {
			b.Fatal(err)
		}
		_ = d.Hash()
	}
}
