package mcpserver

import (
	"fmt"
	"net"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// ListenHTTP checks `serve --http ADDR` against the listener rules and
// binds it. A loopback address is always allowed. A non-loopback one
// (MCP "Security Warning": servers SHOULD authenticate every connection,
// and a token or key sent in clear text is anyone's) needs
//
//   - TLS: http.tls_cert and http.tls_key, or http.trusted_proxy for a
//     TLS-terminating proxy in front; and
//   - client authentication (o.Authenticated, or mutual TLS with
//     http.client_ca), unless o.AllowUnauthenticated
//     (--allow-unauthenticated-non-loopback, http.allow_unauthenticated),
//     which warn is told about loudly.
func ListenHTTP(h config.HTTP, o HTTPOptions, warn func(string)) (net.Listener, error) {
	addr := o.Addr
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("--http %q: want HOST:PORT such as 127.0.0.1:8080", addr)
	}
	if !isLoopback(host) {
		var missing []string
		if !h.TLS() && !h.TrustedProxy.Enabled() {
			missing = append(missing, "it would serve plain HTTP: set http.tls_cert and http.tls_key, or http.trusted_proxy when a TLS-terminating proxy is in front")
		}
		authenticated := o.Authenticated || h.ClientCA != ""
		if !authenticated && !o.AllowUnauthenticated {
			missing = append(missing, "no client authentication is configured, so anyone who can reach it could call tools: configure authentication (or http.client_ca), or pass --allow-unauthenticated-non-loopback to serve it unauthenticated anyway")
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("--http %s is not a loopback address and %s", addr, strings.Join(missing, "; and "))
		}
		if !authenticated && warn != nil {
			warn(fmt.Sprintf("UNAUTHENTICATED: serving non-loopback %s without client authentication: anyone who can reach it can call tools (governed, but unauthenticated); `agentmesh status` reports this as critical", addr))
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w", addr, err)
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
