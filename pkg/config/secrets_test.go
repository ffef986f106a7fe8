package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/secretref"
)

const secretsYAML = `upstreams:
  - name: files
    command: files-server
    env:
      API_KEY: "${env:FILES_KEY}"
      LOG_LEVEL: warn
      PRICE: "$$5 and $${not-a-ref}"
  - name: remote
    url: https://mcp.example.com/mcp
    headers: {Authorization: "Bearer ${file:secrets/remote}"}
tools:
  api:
    endpoints:
      - url: https://api.weather.com/*
        methods: [GET]
        headers:
          Authorization: "Bearer ${env:WX_TOKEN}"
          X-Client: agentmesh
auth:
  resource: https://mcp.example.com/mcp
  issuers:
    - issuer: https://login.example.com
      introspection: {client_id: agentmesh, client_secret: "${file:~/introspection}"}
`

// secretsWorkspace writes secretsYAML and its secret files, and returns
// the parsed configuration and a resolver over a fake environment.
func secretsWorkspace(t *testing.T, env map[string]string) (*Config, secretref.Resolver) {
	t.Helper()
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for name, data := range map[string]string{"secrets/remote": "remote-tok\n", "home/introspection": "intro-secret"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "agentmesh.yaml")
	cfg, err := Parse(file, []byte(secretsYAML))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Source.File = file
	return cfg, secretref.Resolver{Getenv: func(k string) string { return env[k] }, Home: home}
}

func TestResolveSecrets(t *testing.T) {
	cfg, r := secretsWorkspace(t, map[string]string{"FILES_KEY": "files-key-123", "WX_TOKEN": "wx-tok-456"})
	out, secrets, err := cfg.ResolveSecrets(r)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ what, got, want string }{
		{"upstream env", out.Upstreams[0].Env["API_KEY"], "files-key-123"},
		{"literal env", out.Upstreams[0].Env["LOG_LEVEL"], "warn"},
		{"escaped env", out.Upstreams[0].Env["PRICE"], "$$5 and ${not-a-ref}"},
		{"upstream header (file, one newline stripped)", out.Upstreams[1].Headers["Authorization"], "Bearer remote-tok"},
		{"api header", out.Tools.API.Endpoints[0].Headers["Authorization"], "Bearer wx-tok-456"},
		{"literal api header", out.Tools.API.Endpoints[0].Headers["X-Client"], "agentmesh"},
		{"client secret (~/)", out.Auth.Issuers[0].Introspection.ClientSecret, "intro-secret"},
		// The parsed configuration keeps its references.
		{"original env", cfg.Upstreams[0].Env["API_KEY"], "${env:FILES_KEY}"},
		{"original header", cfg.Tools.API.Endpoints[0].Headers["Authorization"], "Bearer ${env:WX_TOKEN}"},
		{"original client secret", cfg.Auth.Issuers[0].Introspection.ClientSecret, "${file:~/introspection}"},
		{"original escape", cfg.Upstreams[0].Env["PRICE"], "$$5 and $${not-a-ref}"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	var got []string
	for _, s := range secrets {
		got = append(got, s.Where()+"="+s.Value)
	}
	file := cfg.Source.File
	want := []string{
		file + ":5:16: upstreams[0].env.API_KEY: ${env:FILES_KEY}=files-key-123",
		file + ":10:30: upstreams[1].headers.Authorization: ${file:secrets/remote}=remote-tok",
		file + ":17:26: tools.api.endpoints[0].headers.Authorization: ${env:WX_TOKEN}=wx-tok-456",
		file + ":23:60: auth.issuers[0].introspection.client_secret: ${file:~/introspection}=intro-secret",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("secrets:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if v := SecretValues(secrets); len(v) != 4 || v[0] != "files-key-123" || v[3] != "intro-secret" {
		t.Errorf("SecretValues = %q", v)
	}
	refs := cfg.SecretRefs()
	if len(refs) != 4 || refs[2].Key != "tools.api.endpoints[0].headers.Authorization" || refs[2].Ref != (secretref.Ref{Scheme: secretref.Env, Arg: "WX_TOKEN"}) || refs[2].Pos.Line != 17 {
		t.Errorf("SecretRefs = %+v", refs)
	}
}

// TestResolveSecretsFailsClosed: every reference that cannot be resolved
// is reported, with the key, where it was written and why, and no value
// (neither the secrets that did resolve nor a file's contents).
func TestResolveSecretsFailsClosed(t *testing.T) {
	cfg, r := secretsWorkspace(t, map[string]string{"WX_TOKEN": "wx-tok-456"})
	dir := filepath.Dir(cfg.Source.File)
	if runtime.GOOS != "windows" {
		if err := os.Chmod(filepath.Join(dir, "secrets/remote"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, "home/introspection")); err != nil {
		t.Fatal(err)
	}
	out, secrets, err := cfg.ResolveSecrets(r)
	if err == nil || out != nil || secrets != nil {
		t.Fatalf("ResolveSecrets = %v, %v, %v; want an error only", out, secrets, err)
	}
	file := cfg.Source.File
	want := []string{
		file + ":5:16: upstreams[0].env.API_KEY: ${env:FILES_KEY}: environment variable FILES_KEY is not set (or empty)",
		file + ":23:60: auth.issuers[0].introspection.client_secret: ${file:~/introspection}: " + filepath.Join(dir, "home/introspection") + ": no such file or directory",
	}
	if runtime.GOOS != "windows" {
		want = append(want, file+":10:30: upstreams[1].headers.Authorization: ${file:secrets/remote}: secret file is accessible by others: "+filepath.Join(dir, "secrets/remote")+" has mode 0644")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	for _, v := range []string{"wx-tok-456", "remote-tok"} {
		if strings.Contains(err.Error(), v) {
			t.Errorf("the error holds a secret value %q:\n%v", v, err)
		}
	}
}

func TestResolveSecretsRefusesWhatCannotBeSent(t *testing.T) {
	cfg, r := secretsWorkspace(t, map[string]string{"FILES_KEY": "k", "WX_TOKEN": "tok"})
	// Two trailing newlines: one is stripped, the other would split the
	// header.
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg.Source.File), "secrets/remote"), []byte("remote-tok\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := cfg.ResolveSecrets(r)
	if err == nil || !strings.Contains(err.Error(), "upstreams[1].headers.Authorization: the value holds a line break or another control character") || strings.Contains(err.Error(), "remote-tok") {
		t.Fatalf("a header value with a line break: %v", err)
	}
}

func TestSecretsValidation(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"old ${VAR} form", "upstreams:\n  - name: a\n    command: x\n    env: {K: \"${TOKEN}\"}\n",
			`c.yaml:4:14: upstreams[0].env.K: at byte 0: ${TOKEN} is not a reference: write ${env:TOKEN}`},
		{"unknown scheme", "tools:\n  api:\n    endpoints:\n      - {url: \"https://a.example/*\", methods: [GET], headers: {X-Key: \"${vault:kv}\"}}\n",
			`c.yaml:4:71: tools.api.endpoints[0].headers.X-Key: at byte 0: unknown reference scheme "vault"`},
		{"unterminated", "auth:\n  resource: https://m.example/mcp\n  issuers: [{issuer: https://as.example, introspection: {client_id: a, client_secret: \"x${env:S\"}}]\n",
			`auth.issuers[0].introspection.client_secret: at byte 1: a reference starting with ${ has no closing }`},
		{"reference in args", "upstreams:\n  - name: a\n    command: x\n    args: [--token, \"${env:TOKEN}\"]\n",
			`c.yaml:4:21: secret references are not resolved in args`},
		{"reference in url", "upstreams:\n  - name: a\n    url: \"https://m.example/mcp?key=${env:K}\"\n",
			`c.yaml:3:10: secret references are not resolved in url`},
		{"bad header name", "upstreams:\n  - name: a\n    url: https://m.example/mcp\n    headers: {\"Bad Name\": x}\n",
			`upstreams[0].headers.Bad Name: "Bad Name" is not an HTTP header name`},
		{"header twice", "tools:\n  api:\n    endpoints:\n      - {url: \"https://a.example/*\", headers: {authorization: a, Authorization: b}}\n",
			`header "authorization" is listed twice (as "Authorization" too`},
		{"literal header with a line break", "tools:\n  api:\n    endpoints:\n      - {url: \"https://a.example/*\", methods: [GET], headers: {X-A: \"a\\nb\"}}\n",
			`tools.api.endpoints[0].headers.X-A: a header value cannot hold a line break`},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v\nwant %q", tt.name, err, tt.want)
		}
	}
	// A literal $ and the escape are fine; the literal text of an escape
	// is not a reference.
	ok := "upstreams:\n  - name: a\n    command: x\n    args: [\"$${env:NOT_A_REF}\", \"$HOME\"]\n    env: {P: \"pa$$word\", Q: \"$${env:X}\"}\n"
	if _, err := Parse("c.yaml", []byte(ok)); err != nil {
		t.Errorf("literal dollars: %v", err)
	}
}
