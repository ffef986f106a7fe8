package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHTTPParse(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "agentmesh.yaml")
	cfg, err := Parse(file, []byte(`http:
  listen: 0.0.0.0:8443
  max_body: 65536
  read_timeout: 5s
  session_idle_ttl: 10m
  max_sessions: 50
  allowed_origins: ["https://App.Example.com:443"]
  tls_cert: cert.pem
  tls_key: key.pem
  client_ca: ca.pem
  client_certs: {ci.example.com: ci-bot}
  trusted_proxy: [10.0.0.0/8, 192.168.1.7]
`))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.HTTP
	if h.MaxBody != 65536 || h.ReadTimeout.D().Seconds() != 5 || h.MaxSessions != 50 || h.ClientCerts["ci.example.com"] != "ci-bot" {
		t.Errorf("parsed %+v", h)
	}
	if h.WriteTimeout != DefaultHTTP().WriteTimeout || h.IdleTimeout != DefaultHTTP().IdleTimeout {
		t.Errorf("defaults lost: %+v", h)
	}
	tp := h.TrustedProxy
	if !tp.Enabled() || tp.Any || !tp.Allows(netip.MustParseAddr("10.1.2.3")) || !tp.Allows(netip.MustParseAddr("::ffff:192.168.1.7")) || tp.Allows(netip.MustParseAddr("192.168.1.8")) {
		t.Errorf("trusted_proxy %+v", tp)
	}
	if o, _ := NormalizeOrigin(h.AllowedOrigins[0]); o != "https://app.example.com" {
		t.Errorf("normalized origin %q", o)
	}
	cfg, err = Parse(file, []byte("http:\n  trusted_proxy: true\n"))
	if err != nil || !cfg.HTTP.TrustedProxy.Any || !cfg.HTTP.TrustedProxy.Allows(netip.MustParseAddr("203.0.113.9")) {
		t.Errorf("trusted_proxy: true: %+v %v", cfg, err)
	}
}

func TestHTTPParseErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("x"), 0o600)
	file := filepath.Join(dir, "c.yaml")
	tests := []struct{ yaml, want string }{
		{"http:\n  max_body: 10\n", "c.yaml:2:13: must be between 1024 (1 KiB) and 1073741824 (1 GiB) bytes, got 10"},
		{"http:\n  read_timeout: 0s\n", "c.yaml:2:17: must be between 1s and 1h0m0s, got 0s"},
		{"http:\n  idle_timeout: 30\n", "c.yaml:2:17: http.idle_timeout: expected a duration"},
		{"http:\n  session_idle_ttl: 10ms\n", "c.yaml:2:21: must be between 1s and 168h0m0s"},
		{"http:\n  max_sessions: 0\n", "c.yaml:2:17: must be between 1 and 1000000"},
		{"http:\n  allowed_origins: [\"https://app.example.com/path\"]\n", "c.yaml:2:21: want an origin such as"},
		{"http:\n  allowed_origins: [\"*\"]\n", "want an origin such as"},
		{"http:\n  tls_cert: cert.pem\n", "c.yaml:2:13: tls_cert and tls_key go together"},
		{"http:\n  tls_cert: cert.pem\n  tls_key: missing.pem\n", "c.yaml:3:12: stat " + filepath.Join(dir, "missing.pem") + ": no such file"},
		{"http:\n  client_ca: cert.pem\n", "client certificates need TLS"},
		{"http:\n  client_certs: {a: b}\n", "set client_ca"},
		{"http:\n  trusted_proxy: [10.0.0.0/33]\n", `"10.0.0.0/33" is not a CIDR`},
		{"http:\n  trusted_proxy: maybe\n", "expected true, false or a list of CIDRs"},
		{"http:\n  listen: 8080\n", "want HOST:PORT"},
	}
	for _, tt := range tests {
		_, err := Parse(file, []byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
