// Package httpguard is the hardened front of agentmesh's streamable HTTP
// MCP endpoint: what mcp-go's handler does not enforce, enforced before a
// request reaches it (MCP 2025-11-25 and 2026-07-28, "Transports:
// Streamable HTTP" and "Security Best Practices").
//
// In order, for every request: a declared trusted proxy's address list
// (403 for other peers), the Origin check (403), the mutual-TLS caller
// (403 for a verified certificate no name is mapped to), then on the MCP
// endpoint the transport's rules (405, 406, 415, 413, 408, 400, 404, 503)
// and a write deadline per write. mcp-go's own DNS-rebinding check (the
// Host of a loopback connection) stays on behind it.
package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// Options configure a Guard.
type Options struct {
	// Endpoint is the MCP endpoint's path ("/mcp").
	Endpoint string
	// Sessions is the session registry mcp-go's handler also uses
	// (server.WithSessionIdManager).
	Sessions *Sessions
	// MaxBody bounds a request body (413 beyond).
	MaxBody int64
	// WriteTimeout bounds each write of a response.
	WriteTimeout time.Duration
	// SessionIdleTTL is how long an idle session lives: Retry-After of a
	// 503 for too many sessions is derived from it.
	SessionIdleTTL time.Duration
	// MaxSessions bounds live sessions (503 for initialize beyond).
	MaxSessions int
	// AllowedOrigins are listed origins besides the listener's own.
	AllowedOrigins []string
	// ClientCerts maps client certificate names to caller names (mutual
	// TLS); nil when mutual TLS is off.
	ClientCerts map[string]string
	// TrustedProxy limits peers to a TLS-terminating proxy's addresses.
	TrustedProxy config.TrustedProxy
}

// Guard is the http.Handler in front of the MCP handler.
type Guard struct {
	next    http.Handler
	o       Options
	origins map[string]bool
}

// New returns a guard in front of next (a mux holding the MCP endpoint).
func New(next http.Handler, o Options) *Guard {
	g := &Guard{next: next, o: o, origins: map[string]bool{}}
	for _, s := range o.AllowedOrigins {
		if n, err := config.NormalizeOrigin(s); err == nil {
			g.origins[n] = true
		}
	}
	return g
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(g.o.TrustedProxy.Nets) > 0 && !g.o.TrustedProxy.Allows(peerIP(r)) {
		writeError(w, http.StatusForbidden, "connections must come through the trusted proxy (http.trusted_proxy)")
		return
	}
	if !g.originAllowed(r) {
		writeError(w, http.StatusForbidden, "Origin "+quote(r.Header.Get("Origin"))+" is not allowed (http.allowed_origins)")
		return
	}
	if g.o.ClientCerts != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		name, ok := callerName(r.TLS.VerifiedChains[0][0], g.o.ClientCerts)
		if !ok {
			writeError(w, http.StatusForbidden, "the client certificate is valid but maps to no caller (http.client_certs)")
			return
		}
		r = r.WithContext(caller.NewContext(r.Context(), caller.ForCertificate(name)))
	}
	if g.o.WriteTimeout > 0 {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: g.o.WriteTimeout}
		// The server keeps a connection's deadline from one request to
		// the next: give what is left of this response (the final flush)
		// a fresh one.
		defer dw.arm()
		w = dw
	}
	if r.URL.Path != g.o.Endpoint {
		g.next.ServeHTTP(w, r)
		return
	}
	g.serveEndpoint(w, r)
}

func peerIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		a, _ := netip.ParseAddr(host)
		return a
	}
	return ap.Addr()
}
