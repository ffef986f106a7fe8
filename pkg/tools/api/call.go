package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Result is the structured content of an api_call result.
type Result struct {
	Status int `json:"status"`
	// Headers is a safe subset of the response headers (safeHeaders).
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	// Encoding is "base64" when the body is not valid UTF-8.
	Encoding  string `json:"encoding,omitempty"`
	Truncated bool   `json:"truncated"`
	// URL is the final URL, after redirects.
	URL       string `json:"url"`
	Redirects int    `json:"redirects"`
}

// Response headers passed back to the model. Set-Cookie and anything
// server-internal stay out.
var safeHeaders = []string{
	"Content-Type", "Content-Length", "Content-Language", "Cache-Control", "Etag",
	"Last-Modified", "Date", "Expires", "Retry-After", "Location",
	"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset",
}

// Call performs the request. Refusals: "arguments", "endpoint", "method",
// "ssrf", "redirect", "size", "response".
func (t *Tool) Call(ctx context.Context, args map[string]any) (*mcp.CallToolResult, error) {
	req, err := parseArgs(args)
	if err != nil {
		return nil, err
	}
	ep, err := t.preflight(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := t.deadline(ctx)
	defer cancel()

	cur := req
	for hop := 0; ; hop++ {
		resp, err := t.send(ctx, ep, cur)
		if err != nil {
			return nil, t.sendError(ctx, cur, err)
		}
		next, redirected, err := t.redirect(resp, cur, hop)
		if err != nil || !redirected {
			if err != nil {
				resp.Body.Close()
				return nil, err
			}
			defer resp.Body.Close()
			return t.result(resp, cur, hop)
		}
		resp.Body.Close()
		var check string
		ep, check = t.match(next.target.canonical, next.method)
		if check != "" {
			what := "is not an allowlisted API endpoint"
			if check == "method" {
				what = "does not allow method " + next.method
			}
			return nil, tools.Refuse("redirect", "%s redirected to %s, which %s", cur.target.canonical, next.target.canonical, what)
		}
		cur = next
	}
}

// send performs one hop with a client whose dialer belongs to ep.
func (t *Tool) send(ctx context.Context, ep *endpoint, r request) (*http.Response, error) {
	var body io.Reader
	if r.hasBody {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, r.target.url.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range r.header {
		hr.Header[k] = v
	}
	if hr.Header.Get("User-Agent") == "" {
		hr.Header.Set("User-Agent", defaultUserAgent)
	}
	// The endpoint that matched this hop's URL adds its own headers, last,
	// so nothing the caller sent (or a previous hop carried) replaces them.
	for k, v := range ep.inject {
		hr.Header[k] = v
	}
	client, tr := t.newClient(ep)
	defer tr.CloseIdleConnections()
	return client.Do(hr)
}

// sendError turns a transport error into a refusal (the SSRF guard) or a
// tool failure.
func (t *Tool) sendError(ctx context.Context, r request, err error) error {
	var ae *AddressError
	if errors.As(err, &ae) {
		return tools.Refuse("ssrf", "%s: %v", r.target.canonical, ae)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("api_call %s %s: no complete response within %s", r.method, r.target.canonical, t.opts.Timeout)
	}
	// Say what went wrong once, without Go's wrapping that repeats the
	// URL, and without internal addresses (the resolver's, the dialer's).
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns):
		return fmt.Errorf("api_call %s %s: cannot resolve %s (%s)", r.method, r.target.canonical, dns.Name, dnsReason(dns))
	case errors.As(err, &op) && op.Op == "dial":
		return fmt.Errorf("api_call %s %s: cannot connect: %v", r.method, r.target.canonical, op.Err)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("api_call %s %s: %w", r.method, r.target.canonical, err)
}

func dnsReason(e *net.DNSError) string {
	switch {
	case e.IsNotFound:
		return "no such host"
	case e.IsTimeout:
		return "the lookup timed out"
	}
	return "the lookup failed"
}

// redirect decides whether resp is a redirect to follow and builds the
// next hop's request (method and body per RFC 9110 15.4; user headers
// dropped when the origin changes). Headers the endpoint injects are not
// in r.header: send adds them per hop, from the endpoint matching that
// hop's URL.
func (t *Tool) redirect(resp *http.Response, cur request, hop int) (request, bool, error) {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return request{}, false, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return request{}, false, nil
	}
	if hop >= t.opts.MaxRedirects {
		return request{}, false, tools.Refuse("redirect", "%s redirected more than %d time(s)", cur.target.canonical, t.opts.MaxRedirects)
	}
	ref, err := cur.target.url.Parse(loc)
	if err != nil {
		return request{}, false, tools.Refuse("redirect", "%s redirected to an unparseable location %q", cur.target.canonical, loc)
	}
	tg, err := canonicalURL(ref.String())
	if err != nil {
		var rf *tools.Refusal
		if errors.As(err, &rf) {
			return request{}, false, tools.Refuse("redirect", "%s redirected to a refused URL: %s", cur.target.canonical, rf.Reason)
		}
		return request{}, false, err
	}
	next := request{target: tg, method: cur.method, header: http.Header{}, body: cur.body, hasBody: cur.hasBody, expectJSON: cur.expectJSON}
	if resp.StatusCode == http.StatusSeeOther && cur.method != http.MethodHead ||
		(resp.StatusCode == http.StatusMovedPermanently || resp.StatusCode == http.StatusFound) && cur.method == http.MethodPost {
		next.method, next.body, next.hasBody = http.MethodGet, "", false
	}
	sameOrigin := tg.url.Scheme == cur.target.url.Scheme && tg.url.Host == cur.target.url.Host
	for k, v := range cur.header {
		if sameOrigin || k == "Accept" || k == "User-Agent" || (k == "Content-Type" && next.hasBody) {
			next.header[k] = v
		}
	}
	return next, true, nil
}

// result reads at most MaxResponseBytes+1 bytes of the body and builds the
// tool result.
func (t *Tool) result(resp *http.Response, r request, redirects int) (*mcp.CallToolResult, error) {
	max := t.opts.MaxResponseBytes
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("api_call %s %s: reading the response: %w", r.method, r.target.canonical, err)
	}
	truncated := int64(len(body)) > max
	if truncated {
		body = body[:max]
	}
	if r.expectJSON {
		if truncated {
			return nil, tools.Refuse("size", "%s: the response is larger than %d bytes and cannot be validated as JSON", r.target.canonical, max)
		}
		if err := checkJSON(resp.Header.Get("Content-Type"), body); err != nil {
			return nil, tools.Refuse("response", "%s: %v", r.target.canonical, err)
		}
	}
	res := Result{
		Status:    resp.StatusCode,
		Headers:   map[string]string{},
		Truncated: truncated,
		URL:       r.target.canonical,
		Redirects: redirects,
	}
	for _, h := range safeHeaders {
		if v := resp.Header.Get(h); v != "" {
			res.Headers[strings.ToLower(h)] = v
		}
	}
	if utf8.Valid(body) {
		res.Body = string(body)
	} else {
		res.Body, res.Encoding = base64.StdEncoding.EncodeToString(body), "base64"
	}
	text := fmt.Sprintf("HTTP %d %s\n%s", resp.StatusCode, http.StatusText(resp.StatusCode), res.Body)
	if truncated {
		text += fmt.Sprintf("\n[truncated at %d bytes]", max)
	}
	return mcp.NewToolResultStructured(res, text), nil
}

// checkJSON requires a JSON media type (application/json or +json) and a
// body that parses.
func checkJSON(contentType string, body []byte) error {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return fmt.Errorf("content type %q is not JSON", contentType)
	}
	if !json.Valid(body) {
		return fmt.Errorf("the body is not valid JSON")
	}
	return nil
}
