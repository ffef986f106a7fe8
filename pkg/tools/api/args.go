package api

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// request is a validated api_call.
type request struct {
	target     target
	method     string
	header     http.Header
	body       string
	hasBody    bool
	expectJSON bool
}

// Methods api_call sends. CONNECT and TRACE are never sent.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func checkMethod(m string) (string, error) {
	mu := strings.ToUpper(m)
	if !knownMethods[mu] {
		return "", tools.Refuse("arguments", "method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", m)
	}
	return mu, nil
}

// Request headers the caller may not set: they belong to the transport, or
// would let the caller aim the request somewhere else.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Connection": true, "Content-Length": true, "Transfer-Encoding": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true, "Expect": true,
	"Proxy-Authorization": true, "Proxy-Connection": true, "Accept-Encoding": true,
}

func parseArgs(args map[string]any) (request, error) {
	for k := range args {
		switch k {
		case "url", "method", "headers", "body", "expect":
		default:
			return request{}, tools.Refuse("arguments", "unknown argument %q (want url, method, headers, body, expect)", k)
		}
	}
	raw, err := tools.StringArg(args, "url")
	if err != nil {
		return request{}, err
	}
	tg, err := canonicalURL(raw)
	if err != nil {
		return request{}, err
	}
	m, err := tools.OptionalString(args, "method", http.MethodGet)
	if err != nil {
		return request{}, err
	}
	method, err := checkMethod(m)
	if err != nil {
		return request{}, err
	}
	req := request{target: tg, method: method, header: http.Header{}}
	if err := parseHeaders(args["headers"], req.header); err != nil {
		return request{}, err
	}
	if _, ok := args["body"]; ok {
		if req.body, err = tools.StringArg(args, "body"); err != nil {
			return request{}, err
		}
		if len(req.body) > maxRequestBody {
			return request{}, tools.Refuse("arguments", "body is longer than %d bytes", maxRequestBody)
		}
		req.hasBody = true
		if method == http.MethodGet || method == http.MethodHead {
			return request{}, tools.Refuse("arguments", "a %s request cannot carry a body", method)
		}
	}
	expect, err := tools.OptionalString(args, "expect", "")
	if err != nil {
		return request{}, err
	}
	switch expect {
	case "":
	case "json":
		req.expectJSON = true
	default:
		return request{}, tools.Refuse("arguments", `expect %q: the only accepted value is "json"`, expect)
	}
	return req, nil
}

func parseHeaders(v any, h http.Header) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return tools.Refuse("arguments", "headers must be an object of strings, got %T", v)
	}
	if len(m) > maxHeaders {
		return tools.Refuse("arguments", "at most %d headers", maxHeaders)
	}
	for name, val := range m {
		s, ok := val.(string)
		if !ok {
			return tools.Refuse("arguments", "header %q must be a string, got %T", name, val)
		}
		if !httpguts.ValidHeaderFieldName(name) {
			return tools.Refuse("arguments", "header name %q is not a valid token", name)
		}
		if !httpguts.ValidHeaderFieldValue(s) || len(s) > maxHeaderBytes {
			return tools.Refuse("arguments", "header %q has a control character or is longer than %d bytes", name, maxHeaderBytes)
		}
		canon := http.CanonicalHeaderKey(name)
		if forbiddenHeaders[canon] || strings.HasPrefix(canon, "Proxy-") {
			return tools.Refuse("arguments", "header %q is set by the transport and cannot be supplied", name)
		}
		h.Set(canon, s)
	}
	return nil
}
