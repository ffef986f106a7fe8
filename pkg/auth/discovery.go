package auth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// metadata is what agentmesh reads of an authorization server's metadata
// (RFC 8414 §2; OpenID Connect Discovery 1.0 §3 has the same names).
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discoveryURLs are where an issuer's metadata may be, in the order of the
// MCP specification ("Authorization Server Metadata Discovery"): for an
// issuer with a path, RFC 8414 §3.1 path insertion, OpenID Connect path
// insertion, then OpenID Connect path appending; without a path, the RFC
// 8414 and the OpenID Connect well-known documents.
func discoveryURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL", issuer)
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return []string{
			origin + "/.well-known/oauth-authorization-server",
			origin + "/.well-known/openid-configuration",
		}, nil
	}
	return []string{
		origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p,
		origin + p + "/.well-known/openid-configuration",
	}, nil
}

// discover fetches the issuer's metadata from the first location that has
// it. A document naming another issuer is not used (RFC 8414 §3.3: it
// would let one server impersonate another).
func (f *fetcher) discover(ctx context.Context, issuer string) (*metadata, error) {
	urls, err := discoveryURLs(issuer)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range urls {
		var m metadata
		if err := f.getJSON(ctx, u, maxMetadataBytes, &m); err != nil {
			errs = append(errs, err)
			continue
		}
		if m.Issuer != issuer {
			errs = append(errs, fmt.Errorf("%s names issuer %q, not %q", u, m.Issuer, issuer))
			continue
		}
		return &m, nil
	}
	return nil, fmt.Errorf("discovering %s: %w", issuer, errors.Join(errs...))
}
