package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestObservabilityKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agentmesh.yaml")
	cfg, err := Parse(file, []byte("http:\n  metrics_addr: 127.0.0.1:9464\ntelemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.MetricsAddr != "127.0.0.1:9464" || cfg.Telemetry.OTLPEndpoint != "http://127.0.0.1:4318" {
		t.Errorf("parsed %+v %+v", cfg.HTTP, cfg.Telemetry)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"http:\n  metrics_addr: 9464\n", "agentmesh.yaml:2:17: want HOST:PORT"},
		{"http:\n  metrics_addr: localhost:metrics\n", `port "metrics" is not a number`},
		{"telemetry:\n  otlp_endpoint: 127.0.0.1:4318\n", "agentmesh.yaml:2:18: want the collector's http(s)://HOST:PORT"},
		{"telemetry:\n  otlp_endpoint: grpc://collector:4317\n", `got "grpc://collector:4317"`},
	} {
		_, err := Parse(file, []byte(bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error containing %q", bad.yaml, err, bad.want)
		}
	}
}
