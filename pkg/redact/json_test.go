package redact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestRedactJSONExact(t *testing.T) {
	ghp := "gh" + "p_" + newFakeGen().pick(charsAlnum, 36)
	tests := []struct{ name, in, want string }{
		{
			"numbers preserved exactly",
			`{"big": 12345678901234567890, "price": 1.10, "exp": 1e400, "neg": -0.0, "password": "x"}`,
			`{"big": 12345678901234567890, "price": 1.10, "exp": 1e400, "neg": -0.0, "password": "[REDACTED:password-pair]"}`,
		},
		{
			"key order and formatting preserved",
			"{\n  \"zeta\": 1,\n  \"alpha\": \"mail bob@example.com\",\n  \"mid\": [ 1 , 2 ]\n}",
			"{\n  \"zeta\": 1,\n  \"alpha\": \"mail [REDACTED:email]\",\n  \"mid\": [ 1 , 2 ]\n}",
		},
		{
			"sensitive key with number and nested values",
			`{"api_key": 123, "secret": {"a": "b", "n": [7, true, null, ""]}, "token": "", "pwd": null}`,
			`{"api_key": "[REDACTED:api-key-pair]", "secret": {"a": "[REDACTED:secret-pair]", "n": ["[REDACTED:secret-pair]", true, null, ""]}, "token": "", "pwd": null}`,
		},
		{
			"escaped key name is still sensitive",
			`{"pass\u0077ord": "hunter2"}`,
			`{"pass\u0077ord": "[REDACTED:password-pair]"}`,
		},
		{
			"embedded JSON string",
			`{"content": [{"type": "text", "text": "{\"db\": {\"password\": \"pw\", \"port\": 5432}}"}]}`,
			`{"content": [{"type": "text", "text": "{\"db\": {\"password\": \"[REDACTED:password-pair]\", \"port\": 5432}}"}]}`,
		},
		{
			"embedded JSON twice",
			`{"a": "{\"b\": \"{\\\"token\\\": \\\"t\\\"}\"}"}`,
			`{"a": "{\"b\": \"{\\\"token\\\": \\\"[REDACTED:token-pair]\\\"}\"}"}`,
		},
		{
			"gitleaks in a value, key kept",
			`{"note": "deploy with ` + ghp + `", "n": 1}`,
			`{"note": "deploy with [REDACTED:github-pat]", "n": 1}`,
		},
		{
			"secret in a key",
			`{"alice@example.com": {"role": "admin"}}`,
			`{"[REDACTED:email]": {"role": "admin"}}`,
		},
		{
			"top-level string",
			`"postgres://u:pw@h/db"`,
			`"postgres://u:[REDACTED:url-credentials]@h/db"`,
		},
		{
			"value with escapes",
			`{"log": "line1\nAuthorization: Bearer abc\u0031\t\"q\""}`,
			`{"log": "line1\nAuthorization: Bearer [REDACTED:authorization-header]\t\"q\""}`,
		},
		{
			"pagination cursor kept",
			`{"nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRjZDhxM2JxaTN6ZDA4EAE"}`,
			`{"nextPageToken": "CiAKGjBpNDd2Nmp2Zml2cXRjZDhxM2JxaTN6ZDA4EAE"}`,
		},
	}
	r := New(Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := r.RedactJSON(context.Background(), []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("\n in: %s\ngot: %s\nwant %s", tt.in, out, tt.want)
			}
			if !json.Valid(out) {
				t.Errorf("output is not valid JSON: %s", out)
			}
		})
	}
}

func TestRedactJSONFindingPaths(t *testing.T) {
	in := `{"users": [{"name": "a", "password": "pw"}, {"mail": "x y@example.com"}], "b~/c": {"token": 5}, "me@example.com": {"secret": "s"}}`
	_, fs, err := New(Options{}).RedactJSON(context.Background(), []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.RuleID+" "+f.Path)
	}
	want := []string{ // in document order
		"password-pair /users/0/password",
		"email /users/1/mail",
		"token-pair /b~0~1c/token",
		"email /[REDACTED:email]",
		"secret-pair /[REDACTED:email]/secret", // the path never carries the redacted key
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
	for _, f := range fs {
		if strings.Contains(f.Path, "me@example.com") {
			t.Errorf("a finding path leaks the redacted key: %q", f.Path)
		}
	}
}

func sameSet(a, b []string) bool {
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestRedactJSONBenignUnchanged(t *testing.T) {
	r := New(Options{})
	docs := [][]byte{benignJSON(4 << 10), []byte(`{}`), []byte(`[]`), []byte(`null`), []byte(` "plain" `), []byte(`[1, 2.50, -3e-7]`)}
	for _, c := range benignCorpus {
		if json.Valid([]byte(c.text)) {
			docs = append(docs, []byte(c.text))
		}
	}
	for _, doc := range docs {
		out, fs, err := r.RedactJSON(context.Background(), doc)
		if err != nil {
			t.Fatalf("%s: %v", doc, err)
		}
		if !bytes.Equal(out, doc) || len(fs) != 0 {
			t.Errorf("benign JSON changed (findings %v):\n in: %s\nout: %s", fs, doc, out)
		}
	}
}

func TestRedactJSONCorpusStaysValid(t *testing.T) {
	// Every corpus text, wrapped as a JSON string and as an object value,
	// is redacted and still valid JSON with the secret gone.
	r := New(Options{})
	for _, c := range secretCorpus() {
		enc, _ := json.Marshal(map[string]any{"output": c.text, "n": json.Number("12345678901234567890")})
		out, _, err := r.RedactJSON(context.Background(), enc)
		if err != nil {
			t.Fatalf("%s: %v", c.kind, err)
		}
		if !json.Valid(out) {
			t.Fatalf("%s: invalid JSON after redaction: %s", c.kind, out)
		}
		if !bytes.Contains(out, []byte("12345678901234567890")) {
			t.Errorf("%s: number not preserved: %s", c.kind, out)
		}
		var decoded struct{ Output string }
		if err := json.Unmarshal(out, &decoded); err != nil {
			t.Fatal(err)
		}
		for _, s := range c.secrets {
			if strings.Contains(decoded.Output, s) {
				t.Errorf("%s: secret %q survived in JSON: %s", c.kind, s, decoded.Output)
			}
		}
	}
}

func TestRedactJSONInvalid(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a": 1,}`, `[1] [2]`, `{"password": "x"`, "\"\xff"} {
		out, fs, err := New(Options{}).RedactJSON(context.Background(), []byte(in))
		if !errors.Is(err, ErrInvalidJSON) || out != nil || fs != nil {
			t.Errorf("RedactJSON(%q) = %q, %v, %v; want nil, nil, ErrInvalidJSON", in, out, fs, err)
		}
	}
}

func TestRedactValue(t *testing.T) {
	params := map[string]any{
		"query":    "select * from users where email = 'bob@example.com'",
		"password": "hunter2",
		"limit":    float64(10),
		"api_key":  json.Number("123456"),
		"options":  map[string]any{"token": 42, "verbose": true, "tags": []any{"a", "me@example.org"}},
		"body":     `{"client_secret": "cs", "ok": 1}`,
		"headers":  map[string]string{"Authorization": "Bearer abcdef", "Accept": "*/*"},
		"note":     nil,
	}
	orig := deepCopyJSON(t, params)
	got, fs, err := New(Options{}).RedactValue(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"query":    "select * from users where email = '[REDACTED:email]'",
		"password": "[REDACTED:password-pair]",
		"limit":    float64(10),
		"api_key":  "[REDACTED:api-key-pair]",
		"options":  map[string]any{"token": "[REDACTED:token-pair]", "verbose": true, "tags": []any{"a", "[REDACTED:email]"}},
		"body":     `{"client_secret": "[REDACTED:secret-pair]", "ok": 1}`,
		"headers":  map[string]any{"Authorization": "[REDACTED:authorization-header]", "Accept": "*/*"},
		"note":     nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RedactValue\n got %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(deepCopyJSON(t, params), orig) {
		t.Errorf("RedactValue modified its input: %#v", params)
	}
	var paths []string
	for _, f := range fs {
		paths = append(paths, f.RuleID+" "+f.Path)
	}
	wantPaths := []string{
		"email /query", "password-pair /password", "api-key-pair /api_key", "token-pair /options/token",
		"email /options/tags/1", "secret-pair /body/client_secret", "authorization-header /headers/Authorization",
	}
	if !sameSet(paths, wantPaths) {
		t.Errorf("findings\n got %q\nwant %q", paths, wantPaths)
	}
}

func TestRedactValueScalarsAndUnknownTypes(t *testing.T) {
	r := New(Options{})
	type login struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"string", "mail bob@example.com", "mail [REDACTED:email]"},
		{"nil", nil, nil},
		{"number", 12.5, 12.5},
		{"clean struct returned as is", login{User: "bob"}, login{User: "bob"}},
		{"struct with secret", login{User: "bob", Password: "pw"}, map[string]any{"user": "bob", "password": "[REDACTED:password-pair]"}},
		{"string slice", []string{"x", "to carol@example.com"}, []any{"x", "to [REDACTED:email]"}},
		{"key with secret", map[string]any{"dave@example.com": 1}, map[string]any{"[REDACTED:email]": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := r.RedactValue(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, _, err := r.RedactValue(context.Background(), map[string]any{"f": func() {}}); !errors.Is(err, ErrScanFailed) {
		t.Errorf("unencodable value: err = %v, want ErrScanFailed", err)
	}
}

// deepCopyJSON snapshots a value through JSON to detect mutation.
func deepCopyJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
