package auth

import (
	"net/http"
	"strings"
)

// MaxTokenBytes bounds a bearer token; longer ones are refused unread.
const MaxTokenBytes = 16 << 10

// bearerToken returns the token of the request's Authorization header
// (RFC 6750 §2.1: "Bearer" 1*SP b64token, the scheme case-insensitive per
// RFC 9110 §11.1). No header, or another scheme, is errNoToken; a repeated
// header or a malformed value is invalid_request.
func bearerToken(values []string) (string, *Error) {
	switch len(values) {
	case 0:
		return "", errNoToken
	case 1:
	default:
		return "", invalidRequest("more than one Authorization header")
	}
	v := values[0]
	scheme, rest, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	tok := strings.TrimLeft(rest, " ")
	switch {
	case tok == "":
		return "", invalidRequest("the Authorization header has no token")
	case len(tok) > MaxTokenBytes:
		return "", invalidToken("the access token is too long", nil)
	case !isB64Token(tok):
		return "", invalidRequest("the bearer token is not a b64token (RFC 6750 §2.1)")
	}
	return tok, nil
}

// isB64Token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// tokenInQuery reports whether the request carries an access token in its
// query string (RFC 6750 §2.3), which the MCP specification forbids
// ("Access Token Usage": never in the URI).
func tokenInQuery(r *http.Request) bool {
	return strings.Contains(r.URL.RawQuery, "access_token") && r.URL.Query().Has("access_token")
}

// challenge is a WWW-Authenticate value for the Bearer scheme (RFC 6750
// §3) with resource_metadata (RFC 9728 §5.1). Empty parameters are left
// out.
func challenge(e *Error, metadataURL string) string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quotedStringContent(value))
		b.WriteByte('"')
		sep = ", "
	}
	if e != nil {
		param("error", e.Code)
		if e.Code != "" {
			param("error_description", e.Description)
		}
		param("scope", e.Scope)
	}
	param("resource_metadata", metadataURL)
	return b.String()
}

// quotedStringContent escapes s for a quoted-string (RFC 9110 §5.6.4).
// RFC 6750 §3 limits error_description and scope to printable ASCII
// without '"' and '\': anything else becomes a space, so the header can
// never be split or smuggle parameters whatever the text.
func quotedStringContent(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	out := []byte(s)
	for i, c := range out {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			out[i] = ' '
		}
	}
	return string(out)
}
