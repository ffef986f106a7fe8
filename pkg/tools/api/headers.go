package api

import (
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Injected headers (Endpoint.Headers) carry credentials the model must
// neither see nor choose:
//
//   - they are added by send to the request of every hop whose URL the
//     endpoint matches, after the caller's headers, so they always win;
//   - a call that sets a header of the same name (any case) is refused
//     ("arguments"), rather than silently dropping the caller's value, so
//     the model learns the header is taken care of (the tool's description
//     names them too); a header the caller carried to a later hop of a
//     same-origin redirect is replaced there;
//   - they are never copied from hop to hop: a redirect's next hop gets the
//     headers of the endpoint that matches its own URL, or none. A redirect
//     to another origin, or to a path of the same origin that the endpoint
//     does not cover, therefore never carries them (browsers drop
//     Authorization on a cross-origin redirect; this is stricter);
//   - their values appear in no result, refusal or error; the call's
//     params (what the audit log stores) never held them; and agentmesh
//     gives the values to the redactor as configured secrets, so a server
//     that echoes them back is redacted.

// injectedHeaders checks an endpoint's headers: names the caller could
// send too (forbiddenHeaders are the transport's), values that fit one
// header line. Errors name the header, never its value.
func injectedHeaders(h map[string]string) (http.Header, error) {
	out := http.Header{}
	for name, v := range h {
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("header %q: not a valid header name", name)
		}
		canon := http.CanonicalHeaderKey(name)
		if forbiddenHeaders[canon] || strings.HasPrefix(canon, "Proxy-") {
			return nil, fmt.Errorf("header %q is set by the transport and cannot be configured", name)
		}
		if !httpguts.ValidHeaderFieldValue(v) || len(v) > maxHeaderBytes {
			return nil, fmt.Errorf("header %q: the value has a control character or is longer than %d bytes", name, maxHeaderBytes)
		}
		if _, dup := out[canon]; dup {
			return nil, fmt.Errorf("header %q is configured twice (header names ignore case)", name)
		}
		out[canon] = []string{v}
	}
	return out, nil
}

// refuseOverride refuses a request that sets a header the endpoint
// injects.
func (e *endpoint) refuseOverride(req request) error {
	for name := range req.header {
		if _, ok := e.inject[name]; ok {
			return tools.Refuse("arguments", "header %s is added by agentmesh for %s; leave it out of the call", name, e.URL)
		}
	}
	return nil
}
