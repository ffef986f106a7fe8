package governance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

func (f *fixture) callAs(t *testing.T, who *caller.Caller, path string) (*mcp.CallToolResult, audit.Entry) {
	t.Helper()
	return f.callWith(t, caller.NewContext(context.Background(), who), map[string]any{"path": path})
}

// TestCallersAreGovernedApart: every entry names its caller; each
// authenticated caller has its own trust score and rate-limit counters, so
// one revoked caller leaves the others (and the local user) working.
func TestCallersAreGovernedApart(t *testing.T) {
	f := newFixture(t, nil)
	alice := caller.ForOAuth("https://as.example", "alice")
	alice.ClientID, alice.Scopes = "alice-app", []string{"notes"}
	bob := caller.ForAPIKey("bob")
	local := caller.ForLocalUser()

	_, e := f.callAs(t, alice, "/data/a.txt")
	if e.Caller == nil || e.Caller.ID != "oauth:https://as.example#alice" || e.Caller.Kind != "oauth" || e.Caller.ClientID != "alice-app" || len(e.Caller.Scopes) != 1 {
		t.Fatalf("entry caller = %+v", e.Caller)
	}
	// Rate limits: 3/minute each.
	for _, who := range []*caller.Caller{alice, bob, local} {
		for i := 0; i < 3; i++ {
			if res, _ := f.callAs(t, who, "/data/burst"); res.IsError {
				t.Fatalf("%s call %d: %s", who.ID, i+1, text(res))
			}
		}
		if res, e := f.callAs(t, who, "/data/burst"); !res.IsError || !contains(e.Rules, "burst/three-per-minute") {
			t.Fatalf("%s 4th call: %q %v", who.ID, text(res), e.Rules)
		}
	}
	// Trust: alice attacks until revoked.
	for i := 0; i < 40; i++ {
		f.callAs(t, alice, fmt.Sprintf("/data/secret/%d", i))
	}
	res, e := f.callAs(t, alice, "/data/a.txt")
	if !res.IsError || !contains(e.Rules, "builtin:trust-revoked") || !strings.Contains(text(res), `--caller "oauth:https://as.example#alice"`) {
		t.Fatalf("alice after 40 attacks: %q %v", text(res), e.Rules)
	}
	for _, who := range []*caller.Caller{bob, local} {
		if res, _ := f.callAs(t, who, "/data/a.txt"); res.IsError {
			t.Fatalf("%s refused after alice was revoked: %s", who.ID, text(res))
		}
	}
	as, err := f.trust.Get(context.Background(), alice.ID)
	if err != nil || !as.Revoked {
		t.Fatalf("alice's stored trust = %+v, %v", as, err)
	}
	own, err := f.trust.Get(context.Background(), f.id.DID())
	if err != nil || own.Revoked || own.Score < 700 {
		t.Fatalf("the server's own trust (the local user's) = %+v, %v", own, err)
	}
	// The log replays to the same per-caller states.
	all, err := f.log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]audit.Entry, len(all))
	for i, s := range all {
		entries[i] = s.Entry
	}
	states, _ := f.trust.Model.Replay(entries)
	if got := states[alice.ID]; got.Score != as.Score || !got.Revoked {
		t.Fatalf("replayed alice = %+v, stored %+v", got, as)
	}
	// A reset naming alice lifts alice's revocation only.
	if _, err := f.log.Append(context.Background(), audit.Entry{Agent: f.id.DID(), Caller: &audit.Caller{ID: alice.ID, Kind: "oauth"}, Action: audit.ActionTrustReset, Reason: "t"},
		f.trust.Hook(trust.Event{Kind: trust.Reset})); err != nil {
		t.Fatal(err)
	}
	if res, _ := f.callAs(t, alice, "/data/a.txt"); res.IsError {
		t.Fatalf("alice after her reset: %s", text(res))
	}
}

// TestCallerScopesIntersect: a call needs the credential's scope and the
// caller's mapped scope; listings hide what a caller's scopes never grant.
func TestCallerScopesIntersect(t *testing.T) {
	grant := func(res string) scope.Set {
		r, err := scope.ParseResource(res)
		if err != nil {
			t.Fatal(err)
		}
		return scope.Set{{Resources: []scope.Resource{r}, Actions: []scope.Action{scope.Read}, Expires: t0.Add(time.Hour)}}
	}
	f := newFixture(t, func(o *Options) {
		o.CallerScopes = func(c *caller.Caller) (scope.Set, bool) {
			switch c.Name {
			case "public-only":
				return grant("filesystem:/data/a.txt"), true
			case "nothing":
				return scope.Set{}, true
			}
			return nil, false
		}
	})
	pub, none, other := caller.ForAPIKey("public-only"), caller.ForAPIKey("nothing"), caller.ForAPIKey("other")
	if res, _ := f.callAs(t, pub, "/data/a.txt"); res.IsError {
		t.Fatalf("granted path: %s", text(res))
	}
	res, e := f.callAs(t, pub, "/data/burst")
	if !res.IsError || !contains(e.Rules, "builtin:caller-scope") || !strings.Contains(text(res), "key:public-only is not granted read filesystem:/data/burst") {
		t.Fatalf("ungranted path: %q %v", text(res), e.Rules)
	}
	if res, _ := f.callAs(t, other, "/data/burst"); res.IsError {
		t.Fatalf("a caller without a mapping keeps the credential's scope: %s", text(res))
	}
	visible := func(who *caller.Caller) bool {
		return f.p.Visible(caller.NewContext(context.Background(), who), Call{Tool: "notes_read", Access: f.tool.Access, kind: &tools.Access{Kind: scope.Filesystem, Action: scope.Read}})
	}
	if !visible(pub) || visible(none) || !visible(other) || !visible(caller.ForLocalUser()) {
		t.Fatalf("visible: public-only %v, nothing %v, other %v, local %v; want true false true true", visible(pub), visible(none), visible(other), visible(caller.ForLocalUser()))
	}
}

// TestConsoleNamesCallers: the console line names an authenticated caller
// and shows each caller's trust change against that caller's own last
// score, not another's.
func TestConsoleNamesCallers(t *testing.T) {
	var out strings.Builder
	f := newFixture(t, func(o *Options) { o.Console = &TextConsole{W: &out} })
	alice, bob := caller.ForOAuth("https://as", "alice"), caller.ForOAuth("https://as", "bob")
	f.callAs(t, alice, "/data/a.txt")
	f.callAs(t, bob, "/data/secret/x") // bob's score drops
	f.callAs(t, alice, "/data/a.txt")
	f.callAs(t, caller.ForLocalUser(), "/data/a.txt")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("console:\n%s", out.String())
	}
	for i, want := range []string{"notes_read by oauth:https://as#alice", "notes_read by oauth:https://as#bob", "notes_read by oauth:https://as#alice", "notes_read ("} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	// alice's second line compares with alice's first (801 → 802), not
	// with bob's drop to 750; the local user's first line has no change.
	if !strings.HasSuffix(lines[2], "trust 802 (+1)") {
		t.Errorf("alice's second call: %q, want trust 802 (+1)", lines[2])
	}
	if strings.Contains(lines[3], " by ") || !strings.HasSuffix(lines[3], "trust 801") {
		t.Errorf("the local user's call: %q, want no caller and trust 801 with no change", lines[3])
	}
}
