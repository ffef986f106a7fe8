package mcpserver

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/caller"
)

// TestSessionsBelongToTheirCaller: a session ID used by another caller is
// answered like an unknown session; its owner keeps using it; DELETE
// forgets it.
func TestSessionsBelongToTheirCaller(t *testing.T) {
	served := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served++
		if r.Header.Get("Mcp-Session-Id") == "" {
			w.Header().Set("Mcp-Session-Id", "s-1")
		}
		w.WriteHeader(http.StatusOK)
	})
	owners := newSessionOwners(next)
	as := func(who *caller.Caller, method, session string) int {
		r := httptest.NewRequest(method, "/mcp", nil)
		if who != nil {
			r = r.WithContext(caller.NewContext(r.Context(), who))
		}
		if session != "" {
			r.Header.Set("Mcp-Session-Id", session)
		}
		w := httptest.NewRecorder()
		owners.ServeHTTP(w, r)
		return w.Code
	}
	alice, bob := caller.ForOAuth("https://as", "alice"), caller.ForOAuth("https://as", "bob")
	if code := as(alice, http.MethodPost, ""); code != 200 || owners.count() != 1 {
		t.Fatalf("initialize: %d, %d owners", code, owners.count())
	}
	for _, tc := range []struct {
		who    *caller.Caller
		method string
		want   int
	}{
		{bob, http.MethodPost, 404},
		{nil, http.MethodPost, 404},
		{bob, http.MethodGet, 404},
		{bob, http.MethodDelete, 404},
		{alice, http.MethodPost, 200},
		{alice, http.MethodGet, 200},
	} {
		before := served
		if code := as(tc.who, tc.method, "s-1"); code != tc.want || (code == 404) != (served == before) {
			t.Errorf("%s %s on alice's session: %d (served %v), want %d", tc.who, tc.method, code, served != before, tc.want)
		}
	}
	if code := as(alice, http.MethodDelete, "s-1"); code != 200 || owners.count() != 0 {
		t.Fatalf("DELETE by the owner: %d, %d owners left", code, owners.count())
	}
}
