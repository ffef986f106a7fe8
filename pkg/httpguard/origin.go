package httpguard

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// originAllowed decides the Origin check of MCP 2025-11-25 and 2026-07-28
// ("Security Warning": servers MUST validate Origin; a present, invalid
// one gets 403). A request without Origin is not from a browser page and
// passes. Otherwise the origin must be listed (allowed_origins) or be the
// listener itself: the same scheme, and the IP address and port the
// connection reached — or, on a loopback connection, localhost or any
// loopback address with that port.
//
// Host names are never taken as same-origin from the request: a DNS
// rebinding page (MCP "Security Best Practices", "Local MCP Server
// Compromise") sends an Origin and a Host that agree with each other. A
// name under which the server is really reached is listed in
// allowed_origins.
func (g *Guard) originAllowed(r *http.Request) bool {
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return true
	}
	if len(origins) > 1 {
		return false
	}
	origin := origins[0]
	if g.origins[origin] {
		return true
	}
	norm, err := config.NormalizeOrigin(origin)
	if err != nil {
		return false // "null" included: an opaque origin is nobody's
	}
	if g.origins[norm] {
		return true
	}
	return sameOriginAsListener(r, norm)
}

func sameOriginAsListener(r *http.Request, origin string) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lap, err := netip.ParseAddrPort(local.String())
	if err != nil {
		return false
	}
	scheme, hostport, _ := strings.Cut(origin, "://")
	want, defaultPort := "http", "80"
	if r.TLS != nil {
		want, defaultPort = "https", "443"
	}
	if scheme != want {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil { // NormalizeOrigin left the scheme's default port out
		host, port = strings.Trim(hostport, "[]"), defaultPort
	}
	if port != strconv.Itoa(int(lap.Port())) {
		return false
	}
	ip := lap.Addr().Unmap()
	if ip.IsLoopback() && host == "localhost" {
		return true
	}
	oip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	oip = oip.Unmap()
	return oip == ip || (ip.IsLoopback() && oip.IsLoopback())
}
