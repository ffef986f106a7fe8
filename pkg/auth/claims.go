package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// claimSet is a token's claims (a JWT's payload, or an RFC 7662
// introspection response), each kept raw until it is read.
type claimSet map[string]json.RawMessage

func (c claimSet) has(name string) bool {
	v, ok := c[name]
	return ok && !bytes.Equal(v, []byte("null"))
}

// str reads a string claim; absent is "".
func (c claimSet) str(name string) (string, error) {
	if !c.has(name) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(c[name], &s); err != nil {
		return "", fmt.Errorf("claim %q is not a string", name)
	}
	return s, nil
}

// strings reads a claim that is a list of strings or a single string
// (aud per RFC 7519 §4.1.3; groups and scp as issuers write them).
func (c claimSet) strings(name string) ([]string, error) {
	if !c.has(name) {
		return nil, nil
	}
	raw := c[name]
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("claim %q is not a string or a list of strings", name)
	}
	return list, nil
}

// time reads a NumericDate (RFC 7519 §2: seconds, possibly fractional).
func (c claimSet) time(name string) (time.Time, bool, error) {
	if !c.has(name) {
		return time.Time{}, false, nil
	}
	var f float64
	if err := json.Unmarshal(c[name], &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e12 {
		return time.Time{}, false, fmt.Errorf("claim %q is not a NumericDate", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// scopes reads "scope" (RFC 9068 §2.2.3, RFC 7662 §2.2: space separated)
// or, when absent, "scp" (a list, as some issuers write it).
func (c claimSet) scopes() ([]string, error) {
	if c.has("scope") {
		s, err := c.str("scope")
		return caller.SplitScopes(s), err
	}
	list, err := c.strings("scp")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list {
		out = append(out, caller.SplitScopes(s)...)
	}
	return out, nil
}

// timeCheck holds what validating a token's times needs.
type timeCheck struct {
	now  time.Time
	skew time.Duration
	// expRequired: a JWT without exp never expires and is refused; an
	// introspection response may leave it out (the server said active).
	expRequired bool
}

// checkTimes applies exp, nbf and iat with the skew (RFC 7519 §4.1.4-6)
// and returns when the token stops being valid (zero: no exp).
func (c claimSet) checkTimes(tc timeCheck) (time.Time, *Error) {
	exp, hasExp, err := c.time("exp")
	if err != nil {
		return time.Time{}, invalidToken("the access token is malformed", err)
	}
	if !hasExp && tc.expRequired {
		return time.Time{}, invalidToken("the access token has no expiry", nil)
	}
	if hasExp && !tc.now.Before(exp.Add(tc.skew)) {
		return time.Time{}, invalidToken("the access token has expired", nil)
	}
	nbf, hasNbf, err := c.time("nbf")
	if err != nil {
		return time.Time{}, invalidToken("the access token is malformed", err)
	}
	if hasNbf && tc.now.Add(tc.skew).Before(nbf) {
		return time.Time{}, invalidToken("the access token is not valid yet", nil)
	}
	iat, hasIat, err := c.time("iat")
	if err != nil {
		return time.Time{}, invalidToken("the access token is malformed", err)
	}
	if hasIat && tc.now.Add(tc.skew).Before(iat) {
		return time.Time{}, invalidToken("the access token was issued in the future", nil)
	}
	if hasExp {
		return exp, nil
	}
	return time.Time{}, nil
}

// newCaller builds the caller a validated token names. iss is the
// issuer's identifier (already checked). A JWT must have a subject
// (RFC 9068 §2.2). An introspection response may leave sub out (RFC 7662
// §2.2), as servers do for the client credentials grant, where no
// resource owner is involved: the client is then the subject, which is
// what RFC 9068 §2.2 has a JWT say in that case.
func newCaller(iss string, c claimSet, cfg config.AuthClaims, clientIsSubject bool) (*caller.Caller, *Error) {
	malformed := func(err error) *Error { return invalidToken("the access token is malformed", err) }
	sub, err := c.str("sub")
	if err != nil {
		return nil, malformed(err)
	}
	clientID, err := c.str("client_id")
	if err != nil {
		return nil, malformed(err)
	}
	if clientID == "" {
		if clientID, err = c.str("azp"); err != nil {
			return nil, malformed(err)
		}
	}
	if sub == "" && clientIsSubject {
		sub = clientID
	}
	if sub == "" {
		return nil, invalidToken("the access token has no subject", nil)
	}
	who := caller.ForOAuth(iss, sub)
	who.ClientID = clientID
	if who.Scopes, err = c.scopes(); err != nil {
		return nil, malformed(err)
	}
	// A malformed groups claim is refused rather than dropped: a policy
	// that blocks a group must not be bypassed by a token that spells
	// its groups oddly.
	if who.Groups, err = c.strings(cfg.Groups); err != nil {
		return nil, malformed(err)
	}
	for _, name := range cfg.Extra {
		if !c.has(name) {
			continue
		}
		var v any
		if err := json.Unmarshal(c[name], &v); err != nil {
			return nil, malformed(errors.New("claim " + name + " is not JSON"))
		}
		if who.Claims == nil {
			who.Claims = map[string]any{}
		}
		who.Claims[name] = v
	}
	return who, nil
}
