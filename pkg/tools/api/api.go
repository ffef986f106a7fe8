// Package api is the api_call tool: HTTP requests to an allowlist of
// endpoints, safe against server-side request forgery.
//
// Three independent guards must all agree before a byte leaves the host:
//
//   - the URL must be in canonical form (no user info, no numeric host
//     spellings other than dotted quads, no IPv4-mapped IPv6 literals, no
//     dot segments), so every parser reads the same host;
//   - the canonical URL must be covered by an allowlisted endpoint with the
//     call's method; endpoint URL patterns are scope.Resource values of kind
//     api, so the allowlist and the capability scopes share one matcher;
//   - at connect time, in net.Dialer.Control, the resolved address must not
//     be in a refused range (code.dny.dev/ssrf's deny list). Loopback and
//     private addresses pass only when the endpoint that matched that hop's
//     URL says allow_private: true.
//
// Redirects are followed by hand, at most MaxRedirects times, and each hop
// goes through all three guards again with a dialer built for that hop.
// There is no proxy, no connection reuse and no transparent decompression.
package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Name is the MCP tool name.
const Name = "api_call"

// Defaults for zero Options fields.
const (
	DefaultTimeout          = 10 * time.Second
	DefaultMaxResponseBytes = 1 << 20
)

// Limits on what a call may send.
const (
	maxRequestBody   = 1 << 20
	maxHeaders       = 32
	maxHeaderBytes   = 8 << 10
	maxResponseHdrs  = 64 << 10
	maxDialTimeout   = 5 * time.Second
	maxTLSHandshake  = 10 * time.Second
	defaultUserAgent = "agentmesh-api_call/1"
)

// Endpoint is one allowlisted URL pattern (config: tools.api.endpoints).
type Endpoint struct {
	// URL is an api scope pattern: "https://api.weather.com/*". Scheme,
	// host and port match exactly; the path by components.
	URL string
	// Methods allowed on it; empty means GET.
	Methods []string
	// AllowPrivate permits loopback and private (RFC 1918, fc00::/7)
	// addresses for this endpoint's host.
	AllowPrivate bool
	// Headers are added to every request to a URL this endpoint matches
	// (an Authorization header, an API key resolved from a secret
	// reference). The caller cannot set a header of the same name (the
	// call is refused) and never sees their values; they are not carried
	// to the next hop of a redirect, which gets those of the endpoint
	// matching its own URL (headers.go).
	Headers map[string]string
}

// Options configure the tool.
type Options struct {
	Endpoints []Endpoint
	// Timeout bounds the whole call: every hop, headers and body.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// HeaderTimeout bounds the wait for each response's headers. Zero
	// means Timeout.
	HeaderTimeout time.Duration
	// MaxResponseBytes caps the body returned; a longer body is truncated
	// and flagged. Zero means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// MaxRedirects is how many redirects one call follows; zero follows
	// none (a redirect is then refused).
	MaxRedirects int
	// Resolver resolves host names; nil means the system resolver.
	Resolver Resolver
	// DialControl, when set, runs after the SSRF guard accepts an address
	// (tests only).
	DialControl DialControl
}

// Tool is api_call.
type Tool struct {
	opts      Options
	endpoints []endpoint
}

type endpoint struct {
	Endpoint
	resource scope.Resource
	methods  map[string]bool
	// inject are Headers, canonical.
	inject http.Header
}

var _ tools.Tool = (*Tool)(nil)

// New checks the endpoints and returns the tool.
func New(opts Options) (*Tool, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.HeaderTimeout <= 0 || opts.HeaderTimeout > opts.Timeout {
		opts.HeaderTimeout = opts.Timeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.MaxRedirects < 0 {
		opts.MaxRedirects = 0
	}
	if opts.Resolver == nil {
		opts.Resolver = defaultResolver
	}
	t := &Tool{opts: opts}
	for i, e := range opts.Endpoints {
		ep, err := parseEndpoint(e)
		if err != nil {
			return nil, fmt.Errorf("api endpoint %d (%q): %w", i+1, e.URL, err)
		}
		t.endpoints = append(t.endpoints, ep)
	}
	return t, nil
}

func parseEndpoint(e Endpoint) (endpoint, error) {
	res, err := scope.ParseResource("api:" + e.URL)
	if err != nil {
		return endpoint{}, err
	}
	// The origin must be canonical too, or no canonical target could ever
	// match it ("https://API.example.com:443" would silently match nothing).
	origin, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(e.URL, "https://"), "http://"), "/")
	scheme, _, _ := strings.Cut(e.URL, "://")
	t, err := canonicalURL(scheme + "://" + origin + "/")
	if err != nil {
		return endpoint{}, fmt.Errorf("origin is not canonical: %v", err)
	}
	if want := t.canonical; want != scheme+"://"+origin+"/" {
		return endpoint{}, fmt.Errorf("write the origin as %q (lower case, no default port)", strings.TrimSuffix(want, "/"))
	}
	inject, err := injectedHeaders(e.Headers)
	if err != nil {
		return endpoint{}, err
	}
	ep := endpoint{Endpoint: e, resource: res, methods: map[string]bool{}, inject: inject}
	if len(e.Methods) == 0 {
		ep.methods[http.MethodGet] = true
	}
	for _, m := range e.Methods {
		mu, err := checkMethod(m)
		if err != nil {
			return endpoint{}, err
		}
		ep.methods[mu] = true
	}
	return ep, nil
}

// Definition is the MCP tool definition.
func (t *Tool) Definition() mcp.Tool {
	return mcp.NewTool(Name,
		mcp.WithDescription("Call an allowlisted HTTP API endpoint. Allowed: "+t.allowlist()+". "+
			"Returns the status, a safe subset of the response headers and the body (truncated beyond the configured size). "+
			"Never put secrets in the URL, headers or body: calls carrying them are refused."),
		mcp.WithString("url", mcp.Required(), mcp.Description("Absolute http(s) URL matching one of: "+t.allowlist())),
		mcp.WithString("method", mcp.DefaultString("GET"), mcp.Description("HTTP method; the endpoint must allow it."),
			mcp.Enum("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
		mcp.WithObject("headers", mcp.Description("Request headers, name to string value."),
			mcp.AdditionalProperties(map[string]any{"type": "string"})),
		mcp.WithString("body", mcp.Description("Request body.")),
		mcp.WithString("expect", mcp.Enum("json"), mcp.Description(`"json": refuse the response unless it is JSON.`)),
		mcp.WithReadOnlyHintAnnotation(false),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(true),
	)
}

// Access validates the arguments and names the URL, in canonical form. It
// runs the guards that need no network before anything else: a host that
// is a loopback, private or otherwise special address literal (or
// "localhost") is refused as "ssrf" unless the endpoint matching it says
// allow_private; a URL no endpoint allows is "endpoint", a method it does
// not allow "method". Names that resolve to such addresses are refused at
// connect time (the dialer's control hook).
// AccessKind is the kind and action of every call (tools.Kinded).
func (t *Tool) AccessKind() tools.Access { return tools.Access{Kind: scope.API, Action: scope.Call} }

func (t *Tool) Access(args map[string]any) (tools.Access, error) {
	req, err := parseArgs(args)
	if err != nil {
		return tools.Access{}, err
	}
	safe := req.method == http.MethodGet || req.method == http.MethodHead
	acc := tools.Access{Kind: scope.API, Target: req.target.canonical, Action: scope.Call, Changes: !safe}
	if _, err := t.preflight(req); err != nil {
		return acc, err // what it would have sent is still judged
	}
	return acc, nil
}

// preflight runs the guards that need no network and returns the endpoint
// allowing the request.
func (t *Tool) preflight(req request) (*endpoint, error) {
	ep, check := t.match(req.target.canonical, req.method)
	if err := literalSSRF(req.target.url.Hostname(), ep); err != nil {
		return nil, err
	}
	switch check {
	case "endpoint":
		return nil, tools.Refuse("endpoint", "%s is not an allowlisted API endpoint; allowed: %s", req.target.canonical, t.allowlist())
	case "method":
		return nil, tools.Refuse("method", "method %s is not allowed for %s; allowed: %s", req.method, req.target.canonical, t.allowlist())
	}
	if err := ep.refuseOverride(req); err != nil {
		return nil, err
	}
	return ep, nil
}

// literalSSRF refuses a host that is, as written, a loopback, private or
// special-purpose address (or localhost), unless ep allows private
// addresses.
func literalSSRF(host string, ep *endpoint) error {
	allowPrivate := ep != nil && ep.AllowPrivate
	if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		if allowPrivate {
			return nil
		}
		return tools.Refuse("ssrf", "%s names this machine (loopback); no endpoint allows private addresses there", host)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil // a name: checked when it resolves
	}
	if err := checkAddr(ip, allowPrivate); err != nil {
		return tools.Refuse("ssrf", "%v", err)
	}
	return nil
}

// allowlist describes the configured endpoints and their methods.
func (t *Tool) allowlist() string {
	var parts []string
	for _, e := range t.endpoints {
		var ms []string
		for m := range e.methods {
			ms = append(ms, m)
		}
		slices.Sort(ms)
		desc := strings.Join(ms, ", ")
		if len(e.inject) > 0 {
			desc += "; agentmesh adds " + strings.Join(slices.Sorted(maps.Keys(e.inject)), ", ")
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", e.URL, desc))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// match returns the endpoint allowing method on the canonical target: the
// first in configuration order that covers the URL and allows the method.
// check is "endpoint" when none covers the URL, "method" when some cover it
// but none allows the method.
func (t *Tool) match(canonical, method string) (ep *endpoint, check string) {
	covered := false
	for i := range t.endpoints {
		e := &t.endpoints[i]
		if !e.resource.Covers(scope.API, canonical) {
			continue
		}
		covered = true
		if e.methods[method] {
			return e, ""
		}
	}
	if covered {
		return nil, "method"
	}
	return nil, "endpoint"
}

// Allowed reports whether a call with this raw URL and method would pass the
// URL and allowlist guards (not the connect-time address check), and the
// canonical URL. It is what FuzzAPIURL exercises.
func (t *Tool) Allowed(rawURL, method string) (canonical string, ok bool) {
	tg, err := canonicalURL(rawURL)
	if err != nil {
		return "", false
	}
	m, err := checkMethod(method)
	if err != nil {
		return "", false
	}
	ep, _ := t.match(tg.canonical, m)
	return tg.canonical, ep != nil
}

// newClient builds the HTTP client for one hop: its dialer carries the
// allow_private decision of the endpoint that matched this hop's URL.
func (t *Tool) newClient(ep *endpoint) (*http.Client, *http.Transport) {
	dialTimeout := min(t.opts.Timeout, maxDialTimeout)
	d := &hopDialer{allowPrivate: ep.AllowPrivate, resolve: t.opts.Resolver, control: t.opts.DialControl, timeout: dialTimeout}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHdrs,
		ResponseHeaderTimeout:  t.opts.HeaderTimeout,
		TLSHandshakeTimeout:    min(t.opts.Timeout, maxTLSHandshake),
		ForceAttemptHTTP2:      false,
	}
	c := &http.Client{
		Transport: tr,
		// Redirects are followed by Call, one guarded hop at a time.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, tr
}

// deadline returns ctx bounded by the call timeout.
func (t *Tool) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, t.opts.Timeout)
}
