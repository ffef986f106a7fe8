package auth

import (
	"context"
	"time"
)

// IssuerStatus is what Probe found at one configured issuer.
type IssuerStatus struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri,omitempty"`
	// Keys is the number of usable signing keys in its key set.
	Keys int `json:"keys"`
	// Fetched is when the key set was fetched (now, for a probe).
	Fetched time.Time `json:"fetched,omitempty"`
	// Problem says why the issuer's keys could not be obtained.
	Problem string `json:"problem,omitempty"`
}

// Probe discovers every configured issuer and fetches its key set, as the
// first token from it would, and reports what it found: for `agentmesh
// status`, which runs in its own process and so cannot see a running
// server's cache. A serving process's keys are at most KeysMaxAge older
// than what Probe sees.
func (a *Authenticator) Probe(ctx context.Context) []IssuerStatus {
	out := make([]IssuerStatus, 0, len(a.order))
	for _, is := range a.order {
		st := IssuerStatus{Issuer: is.cfg.Issuer}
		uri, err := is.jwksURI(ctx)
		if err == nil {
			st.JWKSURI = uri
			var snap *keySnapshot
			if snap, err = is.keys.refresh(ctx); err == nil && snap != nil {
				st.Keys, st.Fetched = len(snap.all), snap.fetched
			}
		}
		if err != nil {
			st.Problem = err.Error()
		}
		out = append(out, st)
	}
	return out
}
