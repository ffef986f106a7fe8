package redact

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Tests for issue 16, "honest redaction": secret assignments recognised by
// the key name alone, prose after "password:" left alone, and secrets in
// JSON nested in strings at any (bounded) depth.

// TestSecretAssignmentExactOutput pins the output of the key-name rule: the
// value of a key whose name says it holds a secret is redacted whatever its
// format, and the key stays readable. gitleaks is off so the labels do not
// depend on its rule set.
func TestSecretAssignmentExactOutput(t *testing.T) {
	r := New(Options{DisableGitleaks: true})
	tests := []struct{ name, in, want string }{
		{"ini spaces", "aws_access_key_id = AKIA1234abcd", "aws_access_key_id = [REDACTED:secret-assignment]"},
		{"ini no spaces", "aws_access_key_id=AKIA1234abcd\nregion=eu-west-1", "aws_access_key_id=[REDACTED:secret-assignment]\nregion=eu-west-1"},
		{"env upper", "export AWS_ACCESS_KEY_ID=AKIAshort9", "export AWS_ACCESS_KEY_ID=[REDACTED:secret-assignment]"},
		{"yaml", "aws:\n  aws_access_key_id: AKIAzz99\n  region: x", "aws:\n  aws_access_key_id: [REDACTED:secret-assignment]\n  region: x"},
		{"json", `{"aws_access_key_id": "AKIAshort9", "region": "x"}`, `{"aws_access_key_id": "[REDACTED:secret-assignment]", "region": "x"}`},
		{"json camel", `{"AccessKeyId": "ASIA0000short"}`, `{"AccessKeyId": "[REDACTED:secret-assignment]"}`},
		{"url query", "https://s3.example.com/b?aws_access_key_id=AKIAq1w2e3&x=1", "https://s3.example.com/b?aws_access_key_id=[REDACTED:secret-assignment]&x=1"},
		{"url query secret access key", "/x?aws_secret_access_key=abc123&x=1", "/x?aws_secret_access_key=[REDACTED:api-key-pair]&x=1"},
		{"password with qualifier", "DB_PASSWORD_PROD=Sup3r$ecret!", "DB_PASSWORD_PROD=[REDACTED:secret-assignment]"},
		{"password numbered", "smtp_password_2: x7Qp9zL1", "smtp_password_2: [REDACTED:secret-assignment]"},
		{"secret in the middle", "client_secret_value: cs-9f8e7d", "client_secret_value: [REDACTED:secret-assignment]"},
		{"rails secret_key_base", "secret_key_base = 0a1b2c3d4e5f", "secret_key_base = [REDACTED:secret-assignment]"},
		{"vault secret_id", `vault_secret_id: "1f2e3d4c"`, `vault_secret_id: "[REDACTED:secret-assignment]"`},
		{"token with version", "github_token_v2 = ghx_123abc", "github_token_v2 = [REDACTED:secret-assignment]"},
		{"api key camel", `apiKeyV2: "k-123"`, `apiKeyV2: "[REDACTED:secret-assignment]"`},
		{"apikey joined", "STRIPE_APIKEY_LIVE=rk9x8y7", "STRIPE_APIKEY_LIVE=[REDACTED:secret-assignment]"},
		{"private key qualifier", "private_key_b64: TUlJQm9n", "private_key_b64: [REDACTED:secret-assignment]"},
		{"case insensitive", "Aws_Access_Key_Id = AKIA1234abcd", "Aws_Access_Key_Id = [REDACTED:secret-assignment]"},
		{"escaped json", `{\"aws_access_key_id\": \"AKIAzz\"}`, `{\"aws_access_key_id\": \"[REDACTED:secret-assignment]\"}`},
		// Names that merely mention a secret word, and placeholders, stay.
		{"hint", "password_hint: first pet", "password_hint: first pet"},
		{"policy", "password_min_length: 12", "password_min_length: 12"},
		{"secret name", "secret_name: db-creds\nsecretName: db", "secret_name: db-creds\nsecretName: db"},
		{"token type", `{"token_type": "bearer", "token_endpoint": "https://id.example.com/token"}`, `{"token_type": "bearer", "token_endpoint": "https://id.example.com/token"}`},
		{"api key header", "api_key_header: X-Api-Key", "api_key_header: X-Api-Key"},
		{"api key id", "api_key_id: key_123", "api_key_id: key_123"},
		{"expiry", "client_secret_expires_at: 1714557600", "client_secret_expires_at: 1714557600"},
		{"count", "token_count: 512\nmax_token_length: 4096", "token_count: 512\nmax_token_length: 4096"},
		{"aws docs example", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE  # from the AWS docs", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE  # from the AWS docs"},
		{"placeholder", "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID}\ngithub_token_v2: <token>", "AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID}\ngithub_token_v2: <token>"},
		{"spaces in key are prose", "the secret sauce: butter", "the secret sauce: butter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.RedactText(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.want {
				t.Errorf("\n in: %q\ngot: %q\nwant %q", tt.in, res.Text, tt.want)
			}
		})
	}
}

// TestSecretAssignmentYieldsToFormatRules checks that a value gitleaks
// recognises keeps gitleaks' more specific label, and that one it does not
// recognise is still removed by the key-name rule.
func TestSecretAssignmentYieldsToFormatRules(t *testing.T) {
	g := newFakeGen()
	akid := "AKIA" + g.pick(charsBase32, 16)
	odd := "AKIA" + g.pick(charsLowerAlnum, 12) // not in gitleaks' [A-Z2-7] alphabet
	r := New(Options{})
	tests := []struct{ in, secret, rule string }{
		{"aws_access_key_id = " + akid, akid, "aws-access-token"},
		{"aws_access_key_id = " + odd, odd, ruleSecretAssignment},
		{"AWS_ACCESS_KEY_ID=" + odd + "\n", odd, ruleSecretAssignment},
	}
	for _, tt := range tests {
		res, err := r.RedactText(context.Background(), tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Text, tt.secret) || !strings.Contains(res.Text, marker(tt.rule)) {
			t.Errorf("%q -> %q; want the value replaced by %s", tt.in, res.Text, marker(tt.rule))
		}
	}
}

func TestSecretAssignmentKey(t *testing.T) {
	yes := []string{
		"aws_access_key_id", "AWS_ACCESS_KEY_ID", "AccessKeyId", "awsAccessKeyId", "aws-access-key-id",
		"aws_secret_access_key_2", "DB_PASSWORD_PROD", "password_new", "passwd_old", "client_secret_value",
		"secret_key_base", "secret_id", "github_token_v2", "apiKeyV2", "api_key_live", "STRIPE_APIKEY_LIVE",
		"private_key_pem", "my_secret_value", "password_confirmation", "x.password.encrypted", "DB_PWD_PROD",
	}
	no := []string{
		"", "password", "api_key", "client_secret", "access_token", // the suffix rules' job
		"password_hint", "password_policy", "password_min_length", "max_password_length", "secret_name",
		"secretName", "secret_arn", "secret_ref", "token_type", "token_endpoint", "token_count", "max_tokens",
		"tokenizer", "api_key_header", "api_key_id", "token_id", "client_secret_expires_at", "password_reset_url",
		"is_password_set", "secret_scanning_push_protection", "id_token_signing_alg_values_supported",
		"access_key_rotation_days", "secrets_path", "the secret sauce", "password hint", "keyboard_layout",
		"OLDPWD", "pwd", "passwordless", "tokens_used", "pwd_length",
		strings.Repeat("a", 200) + "_password_x",
	}
	for _, k := range yes {
		if !secretAssignmentKey(k) {
			t.Errorf("secretAssignmentKey(%q) = false, want true", k)
		}
	}
	for _, k := range no {
		if secretAssignmentKey(k) {
			t.Errorf("secretAssignmentKey(%q) = true, want false", k)
		}
	}
}

// TestSecretAssignmentStructured checks the key-name rule in RedactJSON and
// RedactValue: scalar values are replaced, containers are not swept.
func TestSecretAssignmentStructured(t *testing.T) {
	r := New(Options{})
	in := `{"aws_access_key_id": "AKIAshort9", "secret_name": "db", "api_key_v2": 12345, "token_settings": {"ttl": 60}, "password_hint": "pet"}`
	want := `{"aws_access_key_id": "[REDACTED:secret-assignment]", "secret_name": "db", "api_key_v2": "[REDACTED:secret-assignment]", "token_settings": {"ttl": 60}, "password_hint": "pet"}`
	out, _, err := r.RedactJSON(context.Background(), []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Errorf("RedactJSON\n got %s\nwant %s", out, want)
	}
	var params any
	if err := json.Unmarshal([]byte(in), &params); err != nil {
		t.Fatal(err)
	}
	got, _, err := r.RedactValue(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	var wantV any
	_ = json.Unmarshal([]byte(want), &wantV)
	if !reflect.DeepEqual(got, wantV) {
		t.Errorf("RedactValue\n got %#v\nwant %#v", got, wantV)
	}
}

// TestProseIsNotASecret: the pair rules must tell a credential after
// "password:" from a sentence that merely continues after the colon.
func TestProseIsNotASecret(t *testing.T) {
	r := New(Options{DisableGitleaks: true})
	full := New(Options{})
	tests := []struct{ name, in, want string }{
		// Secrets: a credential-looking token, a quoted value, a single word.
		{"hunter2", "password: hunter2", "password: [REDACTED:password-pair]"},
		{"quoted passphrase", `password = "correct horse battery staple"`, `password = "[REDACTED:password-pair]"`},
		{"env symbols", "PASSWORD=Sup3r$ecret!", "PASSWORD=[REDACTED:password-pair]"},
		{"troubador", "password: Tr0ub4dor&3", "password: [REDACTED:password-pair]"},
		{"single plain word", "password: swordfish", "password: [REDACTED:password-pair]"},
		{"yaml passphrase", "db:\n  password: correct horse battery\n  port: 5432", "db:\n  password: [REDACTED:password-pair]\n  port: 5432"},
		{"credential after a stop word", "Password: use Tr0ub4dor&3 for now", "Password: [REDACTED:password-pair]"},
		{"credential in a sentence", "Log in with the admin password: x9Kq2mP7 (rotate it)", "Log in with the admin password: [REDACTED:password-pair] (rotate it)"},
		{"credential on a label line", "The admin password: x9Kq2mP7 (rotate it)", "The admin password: [REDACTED:password-pair]"},
		{"logfmt", "password=swordfish user=bob", "password=[REDACTED:password-pair] user=bob"},
		{"sample credentials file", "database admin\n  user: admin\n  password: hunter2\n", "database admin\n  user: admin\n  password: [REDACTED:password-pair]\n"},
		// Prose.
		{"reset click", "How to reset your password: click Forgot password.", "How to reset your password: click Forgot password."},
		{"must be", "Password: must be at least 12 characters", "Password: must be at least 12 characters"},
		{"quoted button", `Reset your password: click "Forgot password"`, `Reset your password: click "Forgot password"`},
		{"see the vault", "password: see the vault", "password: see the vault"},
		{"is required", "the password: is required", "the password: is required"},
		{"sample readme", "  notes/credentials.txt  a fake password and API key: reading it shows redaction", "  notes/credentials.txt  a fake password and API key: reading it shows redaction"},
		{"single stop word", "password: required\ntoken: invalid", "password: required\ntoken: invalid"},
		{"sentence", "Token: expires after 30 days, request a new one.", "Token: expires after 30 days, request a new one."},
		{"path in prose", "API key: required for every call to /v1/*.", "API key: required for every call to /v1/*."},
		{"hyphenated number", "Password: must be a 12-character string", "Password: must be a 12-character string"},
		{"pair after prose", "Password: see below, api_key=abc123 token: x9y8z7w6", "Password: see below, api_key=[REDACTED:api-key-pair] token: [REDACTED:token-pair]"},
		{"prose then secret", "password: see the vault, or use password=hunter2", "password: see the vault, or use password=[REDACTED:password-pair]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.RedactText(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if res.Text != tt.want {
				t.Errorf("own rules\n in: %q\ngot: %q\nwant %q", tt.in, res.Text, tt.want)
			}
			if tt.in == tt.want { // prose: gitleaks must not object either
				res, err := full.RedactText(context.Background(), tt.in)
				if err != nil {
					t.Fatal(err)
				}
				if res.Text != tt.in {
					t.Errorf("all rules changed prose (findings %v):\n in: %q\nout: %q", res.Findings, tt.in, res.Text)
				}
			}
		})
	}
}

// sampleReadme is the README of the server's zero-configuration sample data
// (pkg/tools/sampledata), which the prose rule must leave intact.
const sampleReadme = `agentmesh sample data
=====================

This directory is the zero-configuration filesystem root, mounted at /data.
Everything in it is fake.

  users.json             ten fake users (the same rows as users.db)
  users.db               SQLite database "users", table users
                         (id, name, email, role, created_at), opened read-only
  reports/q1.csv         a small quarterly report
  notes/credentials.txt  a fake password and API key: reading it shows redaction
  config/.env            blocked by the default glob **/.env: reading it is refused

Try: filesystem_read /data/users.json, filesystem_list /data,
database_query "SELECT name, role FROM users WHERE role = ?" with params ["engineer"].
`

// nestJSON wraps inner in n-1 further JSON documents, each holding the
// previous one as the string value of "config": level 1 is inner itself.
func nestJSON(inner string, levels int) string {
	s := inner
	for i := 1; i < levels; i++ {
		s = `{"config": ` + quoteJSON(s) + `}`
	}
	return s
}

// unnestJSON undoes nestJSON, checking that every level is valid JSON, and
// returns the innermost document decoded.
func unnestJSON(t *testing.T, s string, levels int) map[string]any {
	t.Helper()
	for i := 1; i <= levels; i++ {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatalf("level %d is not valid JSON (%v): %s", i, err, s)
		}
		if i == levels {
			return m
		}
		inner, ok := m["config"].(string)
		if !ok {
			t.Fatalf("level %d lost its nested document: %#v", i, m)
		}
		s = inner
	}
	return nil
}

// nestedCase is a secret in the innermost document of a nesting.
type nestedCase struct {
	name   string
	inner  string
	secret string
	key    string // member of the innermost document holding it
	rule   string
	text   bool // also found in plain text (not only structurally)
}

var nestedCases = []nestedCase{
	{"password", `{"db_password": "hunter2-Secret!", "host": "db"}`, "hunter2-Secret!", "db_password", rulePasswordPair, true},
	{"number", `{"pin_password": 987654, "host": "db"}`, "987654", "pin_password", rulePasswordPair, true},
	{"key name", `{"aws_access_key_id": "AKIAq1w2e3r4", "host": "db"}`, "AKIAq1w2e3r4", "aws_access_key_id", ruleSecretAssignment, true},
	{"sensitive container", `{"secret": {"user": "zqxwvu-9f3"}, "host": "db"}`, "zqxwvu-9f3", "secret", ruleSecretPair, false},
}

// TestNestedJSONInParams: a secret in JSON nested 1, 2, 3, 5 and 8 levels
// deep in a code_execute parameter, embedded raw (Python single quotes), as
// a double-quoted string literal, and as the whole parameter.
func TestNestedJSONInParams(t *testing.T) {
	r := New(Options{})
	for _, c := range nestedCases {
		for _, levels := range []int{1, 2, 3, 5, 8} {
			doc := nestJSON(c.inner, levels)
			wrappers := []struct {
				name, code string
				unwrap     func(string) string
			}{
				{"whole", doc, func(s string) string { return s }},
				{"raw", "import json\nx = '" + doc + "'\nprint(x)", func(s string) string {
					return strings.TrimSuffix(strings.TrimPrefix(s, "import json\nx = '"), "'\nprint(x)")
				}},
				{"literal", "cfg = json.loads(" + quoteJSON(doc) + ")", func(s string) string {
					var d string
					if err := json.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(s, "cfg = json.loads("), ")")), &d); err != nil {
						t.Fatalf("the string literal is no longer valid: %v: %s", err, s)
					}
					return d
				}},
			}
			for _, wr := range wrappers {
				t.Run(c.name+"/"+wr.name+"/"+itoa(levels), func(t *testing.T) {
					params := map[string]any{"code": wr.code, "language": "python"}
					out, fs, err := r.RedactValue(context.Background(), params)
					if err != nil {
						t.Fatal(err)
					}
					logged, _ := json.Marshal(out)
					if strings.Contains(string(logged), c.secret) {
						t.Fatalf("secret survived in the audit record: %s", logged)
					}
					code, _ := out.(map[string]any)["code"].(string)
					inner := unnestJSON(t, wr.unwrap(code), levels)
					if got, want := inner[c.key], any(marker(c.rule)); c.key != "secret" && got != want {
						t.Errorf("innermost %s = %#v, want %q", c.key, got, want)
					}
					if inner["host"] != "db" {
						t.Errorf("innermost document damaged: %#v", inner)
					}
					wantPath := "/code" + strings.Repeat("/config", levels-1) + "/" + c.key
					found := false
					for _, f := range fs {
						found = found || strings.HasPrefix(f.Path, wantPath) && f.RuleID == c.rule
					}
					if !found {
						t.Errorf("no %s finding at %s: %+v", c.rule, wantPath, fs)
					}
				})
			}
		}
	}
}

// TestIssue16CodeExecuteExample is the parameter quoted in the issue, as
// the audit log receives it: JSON in a string in a code_execute parameter.
func TestIssue16CodeExecuteExample(t *testing.T) {
	var params map[string]any
	raw := `{"code": "x = '{\"config\": \"{\\\"db_password\\\": \\\"hunter2-Secret!\\\"}\"}'"}`
	if err := json.Unmarshal([]byte(raw), &params); err != nil {
		t.Fatal(err)
	}
	out, fs, err := New(Options{}).RedactValue(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	logged, _ := json.Marshal(out)
	want := `{"code":"x = '{\"config\": \"{\\\"db_password\\\": \\\"[REDACTED:password-pair]\\\"}\"}'"}`
	if string(logged) != want {
		t.Errorf("audit record\n got %s\nwant %s", logged, want)
	}
	if len(fs) != 1 || fs[0].Path != "/code/config/db_password" || fs[0].RuleID != rulePasswordPair {
		t.Errorf("findings %+v, want one password-pair at /code/config/db_password", fs)
	}
}

// TestNestedJSONInOutputs: the same nestings in tool output text and in a
// JSON string of structured output.
func TestNestedJSONInOutputs(t *testing.T) {
	r := New(Options{})
	for _, c := range nestedCases {
		for _, levels := range []int{1, 2, 3, 5, 8} {
			code := "import json\nx = '" + nestJSON(c.inner, levels) + "'\n"
			t.Run(c.name+"/"+itoa(levels), func(t *testing.T) {
				if c.text {
					res, err := r.RedactText(context.Background(), code)
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(res.Text, c.secret) || !strings.Contains(res.Text, marker(c.rule)) {
						t.Errorf("RedactText: secret not replaced by %s:\n%s", marker(c.rule), res.Text)
					}
				}
				doc, _ := json.Marshal(map[string]any{"stdout": code, "exit_code": 0})
				out, _, err := r.RedactJSON(context.Background(), doc)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), c.secret) || !json.Valid(out) {
					t.Errorf("RedactJSON: secret survived or invalid output: %s", out)
				}
			})
		}
	}
}

// TestNestedJSONBrokenStillRedacted: when an embedded document does not
// parse (truncated, or nested deeper than the structural limit), the
// plain-text rules must still remove the secret however its quotes are
// escaped.
func TestNestedJSONBrokenStillRedacted(t *testing.T) {
	r := New(Options{})
	secret := "hunter2-Secret!"
	inner := `{"db_password": "` + secret + `", "host": "db"}`
	var codes []string
	for _, levels := range []int{1, 2, 3, 5} {
		doc := nestJSON(inner, levels)
		codes = append(codes, "x = '"+doc[:len(doc)-levels]+"'") // truncated: invalid at every level
	}
	codes = append(codes, "x = '"+nestJSON(inner, maxEmbeddedDepth+4)+"'") // past the depth limit
	codes = append(codes,
		`cfg = "{\"password\": \"`+secret+`\"}"`,
		`cfg = "{\\\"password\\\": \\\"`+secret+`\\\"}"`,
		`cfg = '{\'password\': \'`+secret+`\'}'`,
	)
	for i, code := range codes {
		res, err := r.RedactText(context.Background(), code)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Text, secret) {
			t.Errorf("%d: RedactText: secret survived: %s", i, around(res.Text, secret))
		}
		out, _, err := r.RedactValue(context.Background(), map[string]any{"code": code})
		if err != nil {
			t.Fatal(err)
		}
		if logged, _ := json.Marshal(out); strings.Contains(string(logged), secret) {
			t.Errorf("%d: RedactValue: secret survived: %s", i, around(string(logged), secret))
		}
	}
}

// TestEscapedQuotesExactOutput pins the plain-text rules on JSON whose
// quotes are escaped once, three times and seven times.
func TestEscapedQuotesExactOutput(t *testing.T) {
	r := New(Options{DisableGitleaks: true})
	tests := []struct{ in, want string }{
		{`{\"password\": \"p w\", \"n\": 1}`, `{\"password\": \"[REDACTED:password-pair]\", \"n\": 1}`},
		{`{\\\"password\\\": \\\"p w\\\", \\\"n\\\": 1}`, `{\\\"password\\\": \\\"[REDACTED:password-pair]\\\", \\\"n\\\": 1}`},
		{`{\\\\\\\"token\\\\\\\": \\\\\\\"t1\\\\\\\"}`, `{\\\\\\\"token\\\\\\\": \\\\\\\"[REDACTED:token-pair]\\\\\\\"}`},
		{`{\\\"password\\\": \\\"a\\\\\\\"b\\\"}`, `{\\\"password\\\": \\\"[REDACTED:password-pair]\\\"}`}, // escaped quote inside the value
		{`{\\\"pin_password\\\": 1234}`, `{\\\"pin_password\\\": [REDACTED:password-pair]}`},
		{`{"pin_password": 1234}`, `{"pin_password": [REDACTED:password-pair]}`},
		{`{\'password\': \'pw1\'}`, `{\'password\': \'[REDACTED:password-pair]\'}`},
	}
	for _, tt := range tests {
		res, err := r.RedactText(context.Background(), tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if res.Text != tt.want {
			t.Errorf("\n in: %s\ngot: %s\nwant %s", tt.in, res.Text, tt.want)
		}
	}
}

// TestEmbeddedJSONFindingOffsets checks that findings of the text rules in
// a string that also held embedded JSON index the original string.
func TestEmbeddedJSONFindingOffsets(t *testing.T) {
	s := `cfg = '{"db": "{\"password\": \"pw-1\"}"}'; mail bob@example.com`
	_, fs, err := New(Options{}).RedactValue(context.Background(), map[string]any{"code": s})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		if f.Path == "/code" {
			got = append(got, f.RuleID+":"+s[f.Start:f.End])
		} else {
			got = append(got, f.RuleID+"@"+f.Path)
		}
	}
	want := []string{"password-pair@/code/db/password", "email:bob@example.com"}
	if !sameSet(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
}

// around returns the part of s around the first occurrence of secret, so
// that failures on deeply escaped text stay readable.
func around(s, secret string) string {
	i := strings.Index(s, secret)
	if i < 0 {
		return "(not found)"
	}
	return "..." + s[max(0, i-60):min(len(s), i+len(secret)+20)] + "..."
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestJSONValueExtent(t *testing.T) {
	tests := []struct {
		in   string
		end  int
		want bool
	}{
		{`{"a": [1, 2]} tail`, 13, true},
		{`[{"s": "}]"}, true, null, -1.5e3]x`, 33, true},
		{`{"a": "x\"}"}`, 13, true},
		{`{'a': 1}`, 1, false},                   // single quotes: not JSON
		{`{\"a\": 1}`, 1, false},                 // escaped quotes: not JSON at this level
		{`{"a": "line` + "\n" + `"}`, 11, false}, // raw line break in a string
		{`[[[[`, 4, false},
		{`{ it's }`, 2, false},
	}
	for _, tt := range tests {
		end, ok := jsonValueExtent(tt.in, 0)
		if end != tt.end || ok != tt.want {
			t.Errorf("jsonValueExtent(%q) = %d, %v; want %d, %v", tt.in, end, ok, tt.end, tt.want)
		}
	}
}

func TestEscapedQuoteEnd(t *testing.T) {
	tests := []struct {
		in   string // the value after its opening quote
		q    byte
		run  int
		want int
	}{
		{`abc\" tail`, '"', 1, 3},
		{`a\\\"b\" tail`, '"', 1, 6}, // \\\" is a quote inside the value
		{`abc\\\", tail`, '"', 3, 3},
		{`abc\" tail`, '"', 3, 3}, // fewer backslashes: the enclosing string ends
		{`abc" tail`, '"', 1, 3},
		{`no end`, '"', 1, 6},
		{`pw1\', x`, '\'', 1, 3},
	}
	for _, tt := range tests {
		if got := escapedQuoteEnd(tt.in, 0, len(tt.in), tt.q, tt.run); got != tt.want {
			t.Errorf("escapedQuoteEnd(%q, run %d) = %d, want %d", tt.in, tt.run, got, tt.want)
		}
	}
}

func TestProseWordClasses(t *testing.T) {
	for _, w := range []string{"hunter2", "Sup3r$ecret!", "Tr0ub4dor&3", "x9Kq2mP7", "dbPass", `"p@ssw0rd"`, "sha256"} {
		if !credentialLike(w) {
			t.Errorf("credentialLike(%q) = false", w)
		}
	}
	for _, w := range []string{"swordfish", "Forgot", `"Forgot`, "password.", "12-character", "/v1/*.", "docs/setup.md", "self-service", "8+", "UTF-8", "https://x.io/a1"} {
		if credentialLike(w) {
			t.Errorf("credentialLike(%q) = true", w)
		}
	}
	for _, w := range []string{"click", "See", "the", "YOUR", "is", "must", "should", "forgot", "reset", "change", "enter", "at", "least", "(use", "required."} {
		if !isStopWord(w) {
			t.Errorf("isStopWord(%q) = false", w)
		}
	}
	for _, w := range []string{"hunter2", "swordfish", "admin", "changeme", "correct", "horse", "", "p@ss"} {
		if isStopWord(w) {
			t.Errorf("isStopWord(%q) = true", w)
		}
	}
}

func TestStartsPair(t *testing.T) {
	for w, want := range map[string]bool{
		"api_key=abc": true, "token:": true, "x:=1": true, "a=b": true,
		"dGVzdA==": false, "abc123==": false, "below;": false, "=x": false, "word": false, "https://x": false,
	} {
		if got := startsPair(w); got != want {
			t.Errorf("startsPair(%q) = %v, want %v", w, got, want)
		}
	}
}
