// Package caller names who made a call (DESIGN.md, "Who calls: caller vs
// agent"): an authenticated HTTP principal (an OAuth 2.1 access token's
// issuer and subject, an API key's caller name, a client certificate
// mapped to a name) or, over stdio, the local OS user.
//
// The agent stays the server's DID, the identity that signs checkpoints.
// The caller is carried in the request context from the transport to the
// governance pipeline, which puts it in the policy environment, in every
// audit entry (covered by the entry's hash), and uses its ID as the key of
// trust state and rate-limit counters.
package caller

import (
	"context"
	"os/user"
	"strings"
)

// Kind says how a caller was authenticated.
type Kind string

const (
	// Local is the OS user who started `serve` over stdio.
	Local Kind = "local"
	// OAuth is the subject of a validated OAuth 2.1 access token (JWT or
	// RFC 7662 introspection).
	OAuth Kind = "oauth"
	// APIKey is a service caller holding an agentmesh API key.
	APIKey Kind = "apikey"
	// MTLS is a client certificate mapped to a caller name.
	MTLS Kind = "mtls"
	// Anonymous is an HTTP caller on a listener that does not
	// authenticate (loopback without auth configured).
	Anonymous Kind = "anonymous"
)

// OwnTrust reports whether callers of kind k have trust state and
// rate-limit counters of their own (authenticated HTTP callers). The local
// user and anonymous loopback callers are a server's one principal: their
// calls charge the server's own (DESIGN.md, "Who calls").
func (k Kind) OwnTrust() bool { return k != "" && k != Local && k != Anonymous }

// KindOf returns the kind a caller ID names by its prefix ("oauth:",
// "key:", "mtls:", "local:", or "anonymous"); "" and false for anything
// else, or a prefix with nothing after it.
func KindOf(id string) (k Kind, ok bool) {
	if id == "anonymous" {
		return Anonymous, true
	}
	prefix, rest, found := strings.Cut(id, ":")
	k, known := map[string]Kind{"oauth": OAuth, "key": APIKey, "mtls": MTLS, "local": Local}[prefix]
	if !found || !known || rest == "" {
		return "", false
	}
	return k, true
}

// Caller is one authenticated principal. The JSON form is what audit
// entries record.
type Caller struct {
	// ID is the stable key: trust state, rate-limit counters and
	// `audit --caller` use it. See the constructors for its forms.
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Issuer and Subject are the token's iss and sub (OAuth).
	Issuer  string `json:"iss,omitempty"`
	Subject string `json:"sub,omitempty"`
	// ClientID is the OAuth client the token was issued to.
	ClientID string `json:"client_id,omitempty"`
	// Name is the API key's or certificate's caller name, or the OS user.
	Name string `json:"name,omitempty"`
	// Scopes are the scopes the token or key carries (not agentmesh
	// capability scopes: auth.scope_map maps one to the other).
	Scopes []string `json:"scopes,omitempty"`
	// Groups is the token's groups claim, when configured.
	Groups []string `json:"groups,omitempty"`
	// Claims holds the other claims the configuration names
	// (auth.claims), as the token carried them.
	Claims map[string]any `json:"claims,omitempty"`
}

// ForOAuth returns the caller for a token's issuer and subject; its ID is
// "oauth:ISS#SUB" (the pair is unique per OpenID Connect Core 1.0 §2).
func ForOAuth(iss, sub string) *Caller {
	return &Caller{ID: "oauth:" + iss + "#" + sub, Kind: OAuth, Issuer: iss, Subject: sub}
}

// ForAPIKey returns the caller an API key belongs to: "key:NAME".
func ForAPIKey(name string) *Caller {
	return &Caller{ID: "key:" + name, Kind: APIKey, Name: name}
}

// ForCertificate returns the caller a client certificate is mapped to:
// "mtls:NAME".
func ForCertificate(name string) *Caller {
	return &Caller{ID: "mtls:" + name, Kind: MTLS, Name: name}
}

// ForAnonymous is an unauthenticated HTTP caller on a listener without
// authentication: all of them share one ID, "anonymous".
func ForAnonymous() *Caller { return &Caller{ID: "anonymous", Kind: Anonymous} }

// ForLocalUser returns the OS user running this process: "local:NAME"
// (the numeric uid when the name cannot be looked up).
func ForLocalUser() *Caller {
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
		if name == "" {
			name = u.Uid
		}
	}
	if name == "" {
		name = "uid-unknown"
	}
	return &Caller{ID: "local:" + name, Kind: Local, Name: name}
}

// HasScope reports whether the caller's token or key carries s.
func (c *Caller) HasScope(s string) bool {
	for _, x := range c.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// String is the caller for humans: its ID.
func (c *Caller) String() string {
	if c == nil {
		return "(none)"
	}
	return c.ID
}

// SplitScopes parses an OAuth "scope" claim (RFC 6749 §3.3: a space
// separated list).
func SplitScopes(s string) []string { return strings.Fields(s) }

type ctxKey struct{}

// NewContext returns ctx carrying c.
func NewContext(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the caller ctx carries, or nil.
func FromContext(ctx context.Context) *Caller {
	c, _ := ctx.Value(ctxKey{}).(*Caller)
	return c
}
