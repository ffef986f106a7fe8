package auth

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// DefaultIntrospectionCacheTTL is how long a positive introspection
// answer is reused (never past the token's exp): a revoked token stays
// usable for at most this long.
const DefaultIntrospectionCacheTTL = 60 * time.Second

// introspect asks the issuers that configure RFC 7662 introspection, in
// configuration order, whether an opaque token is active. The first
// active answer wins; each answer's iss, aud and times are checked like a
// JWT's: active alone says the token is valid somewhere, not that it was
// issued for this resource (RFC 7662 §4, RFC 8707). A response without
// aud is refused for the same reason.
func (a *Authenticator) introspect(ctx context.Context, token string) (*caller.Caller, time.Time, *Error) {
	var failures []error
	asked := false
	for _, is := range a.order {
		in := is.cfg.Introspection
		if !in.Enabled() {
			continue
		}
		asked = true
		u, err := is.introspectionURL(ctx)
		if err != nil {
			failures = append(failures, err)
			continue
		}
		var resp claimSet
		form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
		if err := a.fetch.postForm(ctx, u, form, in.ClientID, in.ClientSecret, maxIntrospectionBytes, &resp); err != nil {
			failures = append(failures, err)
			continue
		}
		if string(resp["active"]) != "true" {
			continue // RFC 7662 §2.2: anything but a JSON true is inactive
		}
		return a.acceptIntrospection(is, resp)
	}
	switch {
	case !asked:
		return nil, time.Time{}, invalidToken("the access token is not a JWT and no issuer here introspects tokens", nil)
	case len(failures) > 0:
		return nil, time.Time{}, unavailable("the token could not be introspected", errors.Join(failures...))
	}
	return nil, time.Time{}, invalidToken("the access token is not active", nil)
}

func (a *Authenticator) acceptIntrospection(is *issuer, resp claimSet) (*caller.Caller, time.Time, *Error) {
	iss, err := resp.str("iss")
	if err != nil {
		return nil, time.Time{}, invalidToken("the introspection response is malformed", err)
	}
	if iss == "" {
		iss = is.cfg.Issuer
	}
	if iss != is.cfg.Issuer {
		return nil, time.Time{}, invalidToken("the access token's issuer is not trusted here", nil)
	}
	aud, err := resp.strings("aud")
	if err != nil {
		return nil, time.Time{}, invalidToken("the introspection response is malformed", err)
	}
	if !is.acceptsAudience(aud) {
		return nil, time.Time{}, invalidToken("the access token is not meant for this resource (aud)", nil)
	}
	exp, e := resp.checkTimes(timeCheck{now: a.opts.Now(), skew: a.skew})
	if e != nil {
		return nil, time.Time{}, e
	}
	who, e := newCaller(iss, resp, a.cfg.Claims, true)
	if e != nil {
		return nil, time.Time{}, e
	}
	until := a.opts.Now().Add(a.opts.IntrospectionCacheTTL)
	if !exp.IsZero() && exp.Before(until) {
		until = exp
	}
	return who, until, nil
}
