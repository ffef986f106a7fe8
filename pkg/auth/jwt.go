package auth

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// looksLikeJWT reports whether token is a JWS in compact serialization:
// three base64url parts whose first decodes to a JSON object. Anything
// else (opaque tokens, JWE) goes to introspection.
func looksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	head, _, _ := strings.Cut(token, ".")
	if len(head) > 4096 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	return err == nil && len(b) > 0 && b[0] == '{'
}

// accessTokenTypes are the "typ" header values accepted: RFC 9068 §2.1's
// at+jwt (with or without the application/ prefix, compared ignoring case
// per RFC 7515 §4.1.9), and plain JWTs, which many issuers still mint. A
// token typed as something else (an ID token's "id_token+jwt", a DPoP
// proof's "dpop+jwt", a logout token) is not an access token.
func typAccepted(h jose.Header) bool {
	v, ok := h.ExtraHeaders[jose.HeaderType]
	if !ok {
		return true
	}
	typ, ok := v.(string)
	if !ok {
		return false
	}
	typ = strings.TrimPrefix(strings.ToLower(typ), "application/")
	return typ == "at+jwt" || typ == "jwt"
}

// validateJWT checks a JWT access token (RFC 9068 §4) and returns its
// caller and expiry: an allowed algorithm, an accepted typ, an issuer
// configured here (exact match), a signature by one of that issuer's
// keys, an audience this server accepts, and exp/nbf/iat within the skew.
func (a *Authenticator) validateJWT(ctx context.Context, token string) (*caller.Caller, time.Time, *Error) {
	tok, err := jwt.ParseSigned(token, a.algs)
	if err != nil {
		// Also what "alg":"none" and "alg":"HS256" come to.
		return nil, time.Time{}, invalidToken("the access token is malformed or signed with an algorithm not accepted here", err)
	}
	h := tok.Headers[0]
	if _, crit := h.ExtraHeaders["crit"]; crit {
		// RFC 7515 §4.1.11: no extension is understood here.
		return nil, time.Time{}, invalidToken("the access token is malformed (unsupported critical header)", nil)
	}
	if !typAccepted(h) {
		return nil, time.Time{}, invalidToken("the token is not an access token (typ)", nil)
	}
	// The issuer decides which keys to try, so it is read before the
	// signature is checked; it is checked again on the verified claims.
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, time.Time{}, invalidToken("the access token is malformed", err)
	}
	is := a.issuers[unverified.Issuer]
	if is == nil {
		return nil, time.Time{}, invalidToken("the access token's issuer is not trusted here", nil)
	}
	keys, err := is.keys.lookup(ctx, h.KeyID, h.Algorithm)
	if err != nil && len(keys) == 0 {
		return nil, time.Time{}, unavailable("the issuer's signing keys could not be fetched", err)
	}
	if len(keys) == 0 {
		return nil, time.Time{}, invalidToken("the access token is signed with an unknown key", nil)
	}
	var claims claimSet
	verified := false
	for _, k := range keys {
		claims = nil
		if err := tok.Claims(k.key, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, time.Time{}, invalidToken("the access token's signature does not verify", nil)
	}
	iss, err := claims.str("iss")
	if err != nil || iss != is.cfg.Issuer {
		return nil, time.Time{}, invalidToken("the access token's issuer is not trusted here", err)
	}
	aud, err := claims.strings("aud")
	if err != nil {
		return nil, time.Time{}, invalidToken("the access token is malformed", err)
	}
	if !is.acceptsAudience(aud) {
		return nil, time.Time{}, invalidToken("the access token is not meant for this resource (aud)", nil)
	}
	exp, e := claims.checkTimes(timeCheck{now: a.opts.Now(), skew: a.skew, expRequired: true})
	if e != nil {
		return nil, time.Time{}, e
	}
	who, e := newCaller(iss, claims, a.cfg.Claims, false)
	if e != nil {
		return nil, time.Time{}, e
	}
	return who, exp.Add(a.skew), nil
}
