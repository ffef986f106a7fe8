package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/auth"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// authStatus is how HTTP callers authenticate, as `status` reports it.
type authStatus struct {
	// Mode is "oauth", "oauth+api-keys", "api-keys" or "off".
	Mode     string              `json:"mode"`
	Resource string              `json:"resource,omitempty"`
	Issuers  []auth.IssuerStatus `json:"issuers"`
	// APIKeys counts the keys by status (active, revoked, expired).
	APIKeys map[string]int `json:"api_keys"`
}

// authProbeTimeout bounds status's look at each issuer.
const authProbeTimeout = 3 * time.Second

// describeAuth reports the auth mode, each issuer's key set as fetched
// now (discovery and JWKS, as a serving process would), and the API keys.
// An issuer whose keys cannot be fetched is critical: no token from it can
// be checked.
func describeAuth(ctx context.Context, cfg *config.Config, listKeys func(context.Context) ([]apikey.Key, error)) (v authStatus, critical, attention []string) {
	a := cfg.Auth
	v = authStatus{Mode: "off", Issuers: []auth.IssuerStatus{}, APIKeys: map[string]int{}}
	var modes []string
	if a.OAuth() {
		modes = append(modes, "oauth")
		v.Resource = a.Resource
	}
	if a.APIKeys {
		modes = append(modes, "api-keys")
	}
	if len(modes) > 0 {
		v.Mode = strings.Join(modes, "+")
	}
	keys, err := listKeys(ctx)
	if err != nil {
		attention = append(attention, "the API keys could not be listed: "+err.Error())
	}
	for _, k := range keys {
		v.APIKeys[string(k.Status)]++
	}
	if !a.APIKeys && v.APIKeys["active"] > 0 {
		attention = append(attention, fmt.Sprintf("%d active API key(s), but auth.api_keys is false: serve --http does not accept them", v.APIKeys["active"]))
	}
	if !a.OAuth() {
		return v, critical, attention
	}
	authn, err := auth.New(a, auth.Options{})
	if err != nil {
		critical = append(critical, err.Error())
		return v, critical, attention
	}
	pctx, cancel := context.WithTimeout(ctx, authProbeTimeout)
	defer cancel()
	v.Issuers = authn.Probe(pctx)
	for _, is := range v.Issuers {
		if is.Problem != "" {
			critical = append(critical, fmt.Sprintf("issuer %s: its signing keys cannot be fetched, so its tokens are refused: %s", is.Issuer, is.Problem))
		} else if is.Keys == 0 {
			critical = append(critical, fmt.Sprintf("issuer %s publishes no signing key agentmesh accepts (auth.algorithms: %s)", is.Issuer, strings.Join(a.Algorithms, ", ")))
		}
	}
	return v, critical, attention
}
