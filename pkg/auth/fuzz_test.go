package auth

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// FuzzBearerToken: whatever the Authorization header holds, the parser
// does not panic, and a token it returns is a b64token within bounds that
// survives the trip back into a header.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  a.b.c", "Bearer ", "Bearer a=b", "Bearer abc==", "Basic x", "Bearer\tx", "Bearer a b", "", "Bearer ==", "BEARER x~+/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, e := bearerToken([]string{h})
		if e != nil {
			if tok != "" || e.Status == 0 {
				t.Fatalf("refusal %v with token %q", e, tok)
			}
			return
		}
		if !isB64Token(tok) || len(tok) > MaxTokenBytes || strings.ContainsAny(tok, " \t\r\n,\"") {
			t.Fatalf("accepted %q from %q", tok, h)
		}
		if again, e := bearerToken([]string{"Bearer " + tok}); e != nil || again != tok {
			t.Fatalf("round trip of %q: %q %v", tok, again, e)
		}
	})
}

// FuzzChallenge: whatever the scope and description, WWW-Authenticate is
// one well-formed challenge whose parameters read back as written (after
// the characters RFC 6750 §3 forbids are blanked).
func FuzzChallenge(f *testing.F) {
	f.Add("mcp:tools files:read", "the access token has expired")
	f.Add("a\"b", "line\r\nSet-Cookie: x=1")
	f.Add("", "back\\slash")
	f.Add("ü", "\x00\x7f")
	f.Fuzz(func(t *testing.T, scope, desc string) {
		e := &Error{Status: 403, Code: CodeInsufficientScope, Scope: scope, Description: desc}
		h := challenge(e, testMetadataURL)
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("header with a line break or NUL: %q", h)
		}
		scheme, params, err := parseChallenge(h)
		if err != nil || scheme != "Bearer" {
			t.Fatalf("%q: %v", h, err)
		}
		if params["error"] != CodeInsufficientScope || params["resource_metadata"] != testMetadataURL ||
			params["scope"] != quotedStringContent(scope) || params["error_description"] != quotedStringContent(desc) {
			t.Fatalf("%q read back as %v", h, params)
		}
	})
}

// FuzzValidateToken: no input panics, and none is accepted unless its
// claims are exactly those the issuer signed (base64 may allow another
// spelling of the same bytes; a different claim set never verifies).
func FuzzValidateToken(f *testing.F) {
	clk := newClock()
	ti := newTestIssuer(f)
	ti.addKey("es", jose.ES256, ecKey())
	ti.addKey("rs", jose.RS256, rsaKey())
	a := newAuth(f, authConfig(ti), clk, Options{JWTCacheTTL: -1})
	claims := ti.claims(clk.Now())
	signed := map[string]bool{}
	for _, kid := range []string{"es", "rs"} {
		tok := ti.sign(kid, claims, "")
		f.Add(tok)
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		signed[string(payload)] = true
	}
	f.Add("e30.e30.")
	f.Add("amk_")
	f.Add(strings.Repeat("a.", 3))
	f.Add(b64(map[string]string{"alg": "none"}) + "." + b64(claims) + ".")
	f.Fuzz(func(t *testing.T, tok string) {
		who, err := a.ValidateToken(context.Background(), tok)
		if err != nil {
			if AsError(err).Status == 0 {
				t.Fatalf("refusal without a status: %v", err)
			}
			return
		}
		parts := strings.Split(tok, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		if !signed[string(payload)] || who.Subject != "alice" {
			t.Fatalf("accepted a token the issuer did not sign: %q (%+v)", tok, who)
		}
	})
}
