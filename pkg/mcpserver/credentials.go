package mcpserver

import (
	"encoding/json"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
)

// Issuer builds the credential issuer the configuration describes.
func Issuer(cfg *config.Config, id *identity.Identity) *identity.Issuer {
	scopes := make([]identity.ScopeTemplate, len(cfg.Scopes))
	for i, s := range cfg.Scopes {
		scopes[i] = identity.ScopeTemplate{Resources: s.Resources, Actions: s.Actions, TTL: time.Duration(s.TTLMinutes) * time.Minute}
	}
	return identity.NewIssuer(id, cfg.Identity.CredentialTTL.D(), cfg.Identity.Audience, scopes)
}

// Verifier builds the credential verifier for an identity document.
func Verifier(cfg *config.Config, doc *identity.Document) (*identity.Verifier, error) {
	pub, err := identity.ParseDIDKey(doc.Authority)
	if err != nil {
		return nil, err
	}
	aud := cfg.Identity.Audience
	if aud == "" {
		aud = doc.ID
	}
	return &identity.Verifier{Authority: pub, Audience: aud, MaxTTL: cfg.Identity.MaxCredentialTTL.D(), Skew: identity.MaxClockSkew}, nil
}

func jsonDetails(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
