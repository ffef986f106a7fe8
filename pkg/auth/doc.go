// Package auth is agentmesh's OAuth 2.1 resource server: it authenticates
// the HTTP callers of `serve --http` and yields a *caller.Caller (DESIGN.md,
// "Who calls: caller vs agent").
//
// It follows the MCP specification's "Authorization" chapter, revisions
// 2025-11-25 and 2026-07-28 (the latter's changes that we know of, client
// ID metadata documents preferred to dynamic registration and the
// authorization response's iss checked, concern clients and authorization
// servers, not this side):
//
//   - "Authorization Server Discovery": the server publishes OAuth 2.0
//     Protected Resource Metadata (RFC 9728) at
//     /.well-known/oauth-protected-resource and at the path-suffixed form
//     for its resource (/.well-known/oauth-protected-resource/mcp), and
//     every 401 names it in WWW-Authenticate: Bearer resource_metadata="…"
//     (RFC 9728 §5.1, RFC 6750 §3).
//   - "Access Token Usage": tokens come in the Authorization header only
//     (RFC 6750 §2.1); a token in the query string is refused.
//   - "Token Audience Binding and Validation": a token is accepted only
//     when its audience names this server's resource URI (RFC 8707), from
//     an issuer configured here (compared exactly), signed with that
//     issuer's keys by an allowed asymmetric algorithm.
//   - "Access Token Privilege Restriction": the client's token is removed
//     from the request before any MCP handler sees it, so it can never be
//     passed upstream.
//   - "Scope Challenge Handling": a token lacking a needed scope gets 403
//     with error="insufficient_scope" and the scope to ask for, so the
//     client can step up.
//
// JWT access tokens (RFC 9068, typ "at+jwt", and plain JWTs) are verified
// locally against the issuer's JWKS, found through RFC 8414 or OpenID
// Connect discovery and cached; opaque tokens go to the issuer's RFC 7662
// introspection endpoint. Tokens starting with "amk_" are agentmesh API
// keys and go to a KeyLookup supplied by the caller of New.
//
// # Library
//
// JWS parsing and signature checks use github.com/go-jose/go-jose/v4: it
// has no dependencies beyond the standard library, its parser takes the
// allowed algorithms as a required argument (so "none" and HMAC cannot be
// reached by a token's header: an RSA public key presented as an HS256
// secret fails at parse time), and it verifies with exactly the key it is
// given, never one embedded in the token (jwk, x5c, jku). What go-jose
// does not do, and a resource server must, is written here and tested:
// key discovery, a JWKS cache whose refresh on an unknown kid is rate
// limited and whose responses are bounded in size and key count, the
// RFC 9068 claim checks with bounded skew, introspection, and the
// RFC 6750/9728 HTTP behaviour. lestrrat-go/jwx/v3 would bring its own
// cache, but with several more modules and a refresh policy we would have
// to configure around anyway; coreos/go-oidc validates ID tokens (aud =
// client_id), not access tokens.
package auth
