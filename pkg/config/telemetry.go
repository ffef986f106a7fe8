package config

import (
	"net/url"
	"strings"
)

// Telemetry configures OpenTelemetry traces: spans are exported over
// OTLP/HTTP to OTLPEndpoint (or, when it is empty, to the standard
// OTEL_EXPORTER_OTLP_ENDPOINT). Without either nothing is traced.
type Telemetry struct {
	// OTLPEndpoint is the collector's base URL, http(s)://host:port;
	// spans are posted to its /v1/traces (OTLP/HTTP, protobuf).
	OTLPEndpoint string `yaml:"otlp_endpoint"`
}

func (v *validator) checkTelemetry(t Telemetry) {
	if t.OTLPEndpoint == "" {
		return
	}
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" && !strings.HasSuffix(u.Path, "/v1/traces") {
		v.errorf("telemetry.otlp_endpoint", "want the collector's http(s)://HOST:PORT (OTLP/HTTP), got %q", t.OTLPEndpoint)
	}
}
