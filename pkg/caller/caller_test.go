package caller

import "testing"

func TestKindOfAndOwnTrust(t *testing.T) {
	for _, tc := range []struct {
		id   string
		kind Kind
		ok   bool
		own  bool
	}{
		{"oauth:https://as.example#alice", OAuth, true, true},
		{"key:ci-bot", APIKey, true, true},
		{"mtls:build", MTLS, true, true},
		{"local:root", Local, true, false},
		{"anonymous", Anonymous, true, false},
		{"oauth:", "", false, false},
		{"key", "", false, false},
		{"did:agentmesh:srv", "", false, false},
		{"", "", false, false},
	} {
		k, ok := KindOf(tc.id)
		if k != tc.kind || ok != tc.ok || k.OwnTrust() != tc.own {
			t.Errorf("KindOf(%q) = %q, %v (own trust %v); want %q, %v (%v)", tc.id, k, ok, k.OwnTrust(), tc.kind, tc.ok, tc.own)
		}
	}
	for _, c := range []*Caller{ForOAuth("https://as", "a"), ForAPIKey("k"), ForCertificate("m"), ForLocalUser(), ForAnonymous()} {
		if k, ok := KindOf(c.ID); !ok || k != c.Kind {
			t.Errorf("KindOf(%q) = %q, %v; the constructor says %q", c.ID, k, ok, c.Kind)
		}
	}
}
