package main

import (
	"crypto/ed25519"
	"time"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
)

// issuerFor builds the credential issuer the configuration describes.
func issuerFor(cfg *config.Config, id *identity.Identity) *identity.Issuer {
	scopes := make([]identity.ScopeTemplate, len(cfg.Scopes))
	for i, s := range cfg.Scopes {
		scopes[i] = identity.ScopeTemplate{Resources: s.Resources, Actions: s.Actions, TTL: time.Duration(s.TTLMinutes) * time.Minute}
	}
	return identity.NewIssuer(id, cfg.Identity.CredentialTTL.D(), cfg.Identity.Audience, scopes)
}

// verifierFor builds the verifier for an identity document.
func verifierFor(cfg *config.Config, doc *identity.Document) (*identity.Verifier, error) {
	pub, err := identity.ParseDIDKey(doc.Authority)
	if err != nil {
		return nil, err
	}
	aud := cfg.Identity.Audience
	if aud == "" {
		aud = doc.ID
	}
	return &identity.Verifier{Authority: ed25519.PublicKey(pub), Audience: aud, MaxTTL: cfg.Identity.MaxCredentialTTL.D(), Skew: identity.MaxClockSkew}, nil
}
