package mcpserver

import (
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/config"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "127.1.2.3": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "example.com": false, "::": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestListenHTTPRules: a non-loopback listener needs TLS (or a trusted
// proxy) and authentication, or the loud flag (which warns). The allowed
// cases use 192.0.2.1 (TEST-NET-1, on no interface here): the bind itself
// fails after the rules passed, so nothing listens beyond loopback.
func TestListenHTTPRules(t *testing.T) {
	tlsOn := config.HTTP{TLSCert: "c.pem", TLSKey: "k.pem"}
	proxied := config.HTTP{TrustedProxy: config.TrustedProxy{Any: true}}
	tests := []struct {
		name     string
		h        config.HTTP
		o        HTTPOptions
		want     string // in the error
		wantWarn bool
	}{
		{"malformed", config.HTTP{}, HTTPOptions{Addr: "nonsense"}, "want HOST:PORT", false},
		{"plain, unauthenticated", config.HTTP{}, HTTPOptions{Addr: "0.0.0.0:0"}, "would serve plain HTTP: set http.tls_cert and http.tls_key, or http.trusted_proxy when a TLS-terminating proxy is in front; and no client authentication is configured", false},
		{"TLS, unauthenticated", tlsOn, HTTPOptions{Addr: "0.0.0.0:0"}, "no client authentication is configured, so anyone who can reach it could call tools: configure authentication (or http.client_ca), or pass --allow-unauthenticated-non-loopback", false},
		{"plain, authenticated", config.HTTP{}, HTTPOptions{Addr: "0.0.0.0:0", Authenticated: true}, "would serve plain HTTP", false},
		{"plain, loud flag", config.HTTP{}, HTTPOptions{Addr: "0.0.0.0:0", AllowUnauthenticated: true}, "would serve plain HTTP", false},
		{"TLS, loud flag", tlsOn, HTTPOptions{Addr: "192.0.2.1:0", AllowUnauthenticated: true}, "--http 192.0.2.1:0: listen tcp", true},
		{"proxy, loud flag", proxied, HTTPOptions{Addr: "192.0.2.1:0", AllowUnauthenticated: true}, "--http 192.0.2.1:0: listen tcp", true},
		{"TLS, authenticated", tlsOn, HTTPOptions{Addr: "192.0.2.1:0", Authenticated: true}, "--http 192.0.2.1:0: listen tcp", false},
		{"mutual TLS", config.HTTP{TLSCert: "c", TLSKey: "k", ClientCA: "ca"}, HTTPOptions{Addr: "192.0.2.1:0"}, "--http 192.0.2.1:0: listen tcp", false},
	}
	for _, tt := range tests {
		var warned []string
		ln, err := ListenHTTP(tt.h, tt.o, func(m string) { warned = append(warned, m) })
		if ln != nil {
			ln.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
		if got := len(warned) > 0 && strings.HasPrefix(warned[0], "UNAUTHENTICATED: serving non-loopback"); got != tt.wantWarn {
			t.Errorf("%s: warnings %q, want the loud one: %v", tt.name, warned, tt.wantWarn)
		}
	}
	ln, err := ListenHTTP(config.HTTP{}, HTTPOptions{Addr: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatalf("loopback: %v", err)
	}
	ln.Close()
}
