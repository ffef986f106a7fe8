package redact

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// TestOwnRulesExactOutput pins the exact output of the package's own rules:
// the key is kept and only the value is replaced. gitleaks is disabled so
// the expectations do not depend on its rule set.
func TestOwnRulesExactOutput(t *testing.T) {
	r := New(Options{DisableGitleaks: true})
	tests := []struct{ name, in, want string }{
		{"plain colon", "password: hunter2", "password: [REDACTED:password-pair]"},
		{"plain equals", "password=hunter2 user=bob", "password=[REDACTED:password-pair] user=bob"},
		{"json", `{"password": "x", "user": "bob"}`, `{"password": "[REDACTED:password-pair]", "user": "bob"}`},
		{"json compact number", `{"api_key":123,"n":1}`, `{"api_key":[REDACTED:api-key-pair],"n":1}`},
		{"json escaped in string", `"{\"token\":\"abc\"}"`, `"{\"token\":\"[REDACTED:token-pair]\"}"`},
		{"yaml indented", "db:\n  password: correct horse battery\n  port: 5432", "db:\n  password: [REDACTED:password-pair]\n  port: 5432"},
		{"yaml list item", "- name: x\n  client_secret: 'abc def'", "- name: x\n  client_secret: '[REDACTED:secret-pair]'"},
		{"yaml block scalar", "private_key: |\n  AAAA\n  BBBB\nnext: 1", "private_key: |\n[REDACTED:secret-pair]\nnext: 1"},
		{"env", "DB_PASSWORD=s3cret\nPWD=/home/alice", "DB_PASSWORD=[REDACTED:password-pair]\nPWD=/home/alice"},
		{"ini spaces", "[db]\npasswd = p@ss word", "[db]\npasswd = [REDACTED:password-pair]"},
		{"xml element", "<password>x</password>", "<password>[REDACTED:password-pair]</password>"},
		{"xml namespaced cdata", "<cfg:apiKey><![CDATA[k1k2]]></cfg:apiKey>", "<cfg:apiKey><![CDATA[[REDACTED:api-key-pair]]]></cfg:apiKey>"},
		{"xml attribute", `<add key="DbPassword" value="pw1"/>`, `<add key="DbPassword" value="[REDACTED:password-pair]"/>`},
		{"html input", `<input name="password" value="pw2">`, `<input name="password" value="[REDACTED:password-pair]">`},
		{"url query", "/v1?api_key=abc123&token=zzz&page=2", "/v1?api_key=[REDACTED:api-key-pair]&token=[REDACTED:token-pair]&page=2"},
		{"url userinfo", "https://user:pa55@host/x", "https://user:[REDACTED:url-credentials]@host/x"},
		{"postgres", "postgres://app:Sup3r@db:5432/o", "postgres://app:[REDACTED:url-credentials]@db:5432/o"},
		{"redis no user", "redis://:pw@cache:6379", "redis://:[REDACTED:url-credentials]@cache:6379"},
		{"ado.net", "Server=x;User Id=sa;Password=my pass;Encrypt=true", "Server=x;User Id=sa;Password=[REDACTED:password-pair];Encrypt=true"},
		{"auth header", "Authorization: Bearer abc.def", "Authorization: Bearer [REDACTED:authorization-header]"},
		{"auth header curl", `curl -H "Authorization: Basic dXNlcjpwdw==" x`, `curl -H "Authorization: Basic [REDACTED:authorization-header]" x`},
		{"auth header json", `{"Authorization": "Token t0k"}`, `{"Authorization": "Token [REDACTED:authorization-header]"}`},
		{"x-api-key header", "X-Api-Key: k-123\nAccept: */*", "X-Api-Key: [REDACTED:api-key-pair]\nAccept: */*"},
		{"multiword label", "Client Secret: abc123", "Client Secret: [REDACTED:secret-pair]"},
		{"go assign", `token := "t1"`, `token := "[REDACTED:token-pair]"`},
		{"ruby hash", `:password => 'pw'`, `:password => '[REDACTED:password-pair]'`},
		{"docker auth", `{"auths": {"r.io": {"auth": "dXM6cHc="}}}`, `{"auths": {"r.io": {"auth": "[REDACTED:token-pair]"}}}`},
		{"comment key", "// token: abc", "// token: [REDACTED:token-pair]"},
		{"sas sig", "?sv=1&sig=AbC%3D&se=2", "?sv=1&sig=[REDACTED:token-pair]&se=2"},
		{"bearer in log", "retry with bearer abcdefgh12345678", "retry with bearer [REDACTED:bearer-token]"},
		{"ai key", "key sk-proj-abcdefghij0123456789XYZ", "key [REDACTED:ai-api-key]"},
		{"agentmesh key", "X-API-Key=amk_abcd2345_" + strings.Repeat("q7", 26) + " done", "X-API-Key=[REDACTED:api-key-pair] done"},
		{"agentmesh key alone", "use amk_abcd2345_" + strings.Repeat("q7", 26) + ".", "use [REDACTED:agentmesh-api-key]."},
		{"agentmesh key in a word", "xamk_abcd2345_" + strings.Repeat("q7", 26), "xamk_abcd2345_" + strings.Repeat("q7", 26)},
		{"agentmesh key too short", "amk_abcd2345_" + strings.Repeat("q7", 25), "amk_abcd2345_" + strings.Repeat("q7", 25)},
		{"jwt", "t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl;", "t=[REDACTED:jwt];"},
		{"pem", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----[REDACTED:private-key]-----END PRIVATE KEY-----"},
		{"pem truncated", "-----BEGIN RSA PRIVATE KEY-----\nMIIB...", "-----BEGIN RSA PRIVATE KEY-----[REDACTED:private-key]"},
		{"public key kept", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"},
		{"placeholders kept", "password: ${DB_PASSWORD}\ntoken=<token>\nsecret: ***", "password: ${DB_PASSWORD}\ntoken=<token>\nsecret: ***"},
		{"idempotent", "password: [REDACTED:password-pair]", "password: [REDACTED:password-pair]"},
		{"comparison kept", "if password == expected {", "if password == expected {"},
		{"not a key suffix", "password_hint: cat\nmax_tokens: 10\ntokenizer: bpe", "password_hint: cat\nmax_tokens: 10\ntokenizer: bpe"},
		{"nested structure kept", "secret: {name: db}", "secret: {name: db}"},
		{"email", "mail alice@example.com now", "mail [REDACTED:email] now"},
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

func TestFindingsOffsetsPointAtRemovedText(t *testing.T) {
	in := "user=bob password=hunter2 mail=alice@example.com"
	res, err := New(Options{}).RedactText(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range res.Findings {
		got = append(got, f.RuleID+":"+in[f.Start:f.End])
	}
	want := []string{"password-pair:hunter2", "email:alice@example.com"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("findings %v, want %v", got, want)
	}
}

func TestMergeFindings(t *testing.T) {
	tests := []struct {
		name string
		in   []Finding
		want []Finding
	}{
		{"empty", nil, nil},
		{"drop empty span", []Finding{{"a", 3, 3, "", false}}, []Finding{}},
		{"disjoint sorted", []Finding{{"b", 5, 7, "", false}, {"a", 0, 2, "", false}}, []Finding{{"a", 0, 2, "", false}, {"b", 5, 7, "", false}}},
		{"touching stay separate", []Finding{{"a", 0, 2, "", false}, {"b", 2, 4, "", false}}, []Finding{{"a", 0, 2, "", false}, {"b", 2, 4, "", false}}},
		{"overlap extends", []Finding{{"a", 0, 5, "", false}, {"b", 3, 9, "", false}}, []Finding{{"a", 0, 9, "", false}}},
		{"contained", []Finding{{"b", 2, 4, "", false}, {"a", 0, 9, "", false}}, []Finding{{"a", 0, 9, "", false}}},
		{"same start longer wins", []Finding{{"short", 0, 3, "", false}, {"long", 0, 8, "", false}}, []Finding{{"long", 0, 8, "", false}}},
		{"chain", []Finding{{"a", 0, 3, "", false}, {"b", 2, 6, "", false}, {"c", 5, 8, "", false}}, []Finding{{"a", 0, 8, "", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeFindings(append([]Finding(nil), tt.in...))
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOverlappingDetectorsGiveOneMarker(t *testing.T) {
	// The JWT rule and the token-pair rule both cover the value; the
	// output must hold one marker, not nested or doubled ones.
	in := `access_token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl&x=1`
	res, err := New(Options{}).RedactText(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := "access_token=[REDACTED:token-pair]&x=1"; res.Text != want {
		t.Errorf("got %q, want %q", res.Text, want)
	}
	if n := strings.Count(res.Text, "[REDACTED:"); n != 1 {
		t.Errorf("%d markers, want 1", n)
	}
}

func TestGitleaksAllowCommentDoesNotExempt(t *testing.T) {
	pat := "gh" + "p_" + newFakeGen().pick(charsAlnum, 36)
	res, err := New(Options{}).RedactText(context.Background(), "deploy uses "+pat+" # gitleaks:allow")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Text, pat) {
		t.Errorf("a gitleaks:allow comment exempted a secret: %s", res.Text)
	}
}

func TestSensitiveKeyRule(t *testing.T) {
	tests := []struct {
		key  string
		rule string
	}{
		{"password", rulePasswordPair}, {"DB_PASSWORD", rulePasswordPair}, {"dbPassword", rulePasswordPair},
		{"passwd", rulePasswordPair}, {"PWD", rulePasswordPair}, {"gpg.passphrase", rulePasswordPair},
		{"client_secret", ruleSecretPair}, {"private-key", ruleSecretPair}, {"AccountKey", ruleSecretPair},
		{"aws_secret_access_key", ruleAPIKeyPair}, {"x-api-key", ruleAPIKeyPair}, {"apikey", ruleAPIKeyPair},
		{"access_token", ruleTokenPair}, {"GITHUB_TOKEN", ruleTokenPair}, {"auth", ruleTokenPair}, {"sig", ruleTokenPair},
		{"Authorization", ruleAuthHeader}, {"curl -H Authorization", ruleAuthHeader}, {"Proxy-Authorization", ruleAuthHeader},
		{"API key", ruleAPIKeyPair},
		{"password_hint", ""}, {"max_tokens", ""}, {"tokenizer", ""}, {"token_count", ""}, {"nextPageToken", ""},
		{"oauth", ""}, {"signature", ""}, {"key", ""}, {"public_key", ""}, {"secretName", ""}, {"", ""},
	}
	for _, tt := range tests {
		rule, ok := sensitiveKeyRule(tt.key)
		if rule != tt.rule || ok != (tt.rule != "") {
			t.Errorf("sensitiveKeyRule(%q) = %q, %v; want %q", tt.key, rule, ok, tt.rule)
		}
	}
}
