package auth

import (
	"context"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/agentmesh/agentmesh/pkg/config"
)

// TestProbe: status's view of the issuers: keys found by discovery at a
// live issuer, the reason at a dead one.
func TestProbe(t *testing.T) {
	live := newTestIssuer(t)
	live.addKey("es", jose.ES256, ecKey())
	live.addKey("rs", jose.RS256, rsaKey())
	dead := newTestIssuer(t)
	dead.srv.Close()
	cfg := authConfig(live)
	cfg.Issuers = append(cfg.Issuers, config.AuthIssuer{Issuer: dead.URL})
	a := newAuth(t, cfg, newClock(), Options{})
	got := a.Probe(context.Background())
	if len(got) != 2 {
		t.Fatalf("Probe = %+v", got)
	}
	if got[0].Issuer != live.URL || got[0].Keys != 2 || got[0].JWKSURI != live.URL+"/jwks" || got[0].Problem != "" || got[0].Fetched.IsZero() {
		t.Errorf("live issuer: %+v", got[0])
	}
	if got[1].Issuer != dead.URL || got[1].Keys != 0 || !strings.Contains(got[1].Problem, "127.0.0.1") {
		t.Errorf("dead issuer: %+v", got[1])
	}
}
