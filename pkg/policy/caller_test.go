package policy

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestCallerConditions: conditions read who called (caller.sub,
// caller.groups, caller.scopes, caller.claims), and a misspelt member is a
// load error at its line and column, like every name.
func TestCallerConditions(t *testing.T) {
	e := NewEngine(mustSet(t, `
policies:
  - name: team
    rules:
      - name: admins-only-write
        condition: "tool == 'filesystem_write' and !('admins' in caller.groups)"
        action: block
      - name: ci-no-code
        condition: "tool == 'code_execute' and caller.kind == 'apikey' and caller.name == 'ci'"
        action: block
      - name: scope
        condition: "tool == 'api_call' and !('api' in caller.scopes)"
        action: block
      - name: tenant
        condition: "caller.claims['tenant'] == 'blocked-co'"
        action: block
`), Options{})
	ctx := context.Background()
	alice := CallerEnv{ID: "oauth:https://as#alice", Kind: "oauth", Iss: "https://as", Sub: "alice", Groups: []string{"admins"}, Scopes: []string{"api"}}
	bob := CallerEnv{ID: "oauth:https://as#bob", Kind: "oauth", Iss: "https://as", Sub: "bob", Groups: []string{"dev"}, Claims: map[string]any{"tenant": "blocked-co"}}
	ci := CallerEnv{ID: "key:ci", Kind: "apikey", Name: "ci"}
	for _, tc := range []struct {
		tool   string
		caller CallerEnv
		want   Action
		rules  []string
	}{
		{"filesystem_write", alice, Allow, nil},
		{"filesystem_write", bob, Block, []string{"team/admins-only-write", "team/tenant"}},
		{"filesystem_write", CallerEnv{}, Block, []string{"team/admins-only-write"}},
		{"code_execute", ci, Block, []string{"team/ci-no-code"}},
		{"code_execute", alice, Allow, nil},
		{"api_call", alice, Allow, nil},
		{"api_call", ci, Block, []string{"team/scope"}},
	} {
		d := e.PreCall(ctx, &Call{Tool: tc.tool, Agent: "did:agentmesh:x", Caller: tc.caller, Subject: tc.caller.ID})
		if d.Action != tc.want || !slices.Equal(d.Rules(), tc.rules) {
			t.Errorf("%s by %q: %s %v, want %s %v (%s)", tc.tool, tc.caller.ID, d.Action, d.Rules(), tc.want, tc.rules, d.Reason)
		}
	}
	_, err := ParseFile("bad.yaml", []byte(`policies:
  - name: p
    rules:
      - condition: "caller.subject == 'x'"
        action: block
`))
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4:") || !strings.Contains(err.Error(), "subject") {
		t.Fatalf("caller.subject: %v, want a load error at bad.yaml:4 naming it", err)
	}
}

// TestLimitPerCaller: a limit counts each caller separately unless the
// rule says per: server; calls without a caller count under the agent.
func TestLimitPerCaller(t *testing.T) {
	e := NewEngine(mustSet(t, `
policies:
  - name: p
    rules:
      - name: each
        condition: tool == 'api_call'
        limit: 10/minute
        action: block
      - name: all
        condition: tool == 'database_query'
        limit: 10/minute
        per: server
        action: block
`), Options{Clock: (&fakeClock{now: t0}).Now})
	ctx := context.Background()
	call := func(tool, who string) Action {
		return e.PreCall(ctx, &Call{Tool: tool, Agent: "did:agentmesh:x", Caller: CallerEnv{ID: who}, Subject: who}).Action
	}
	for _, who := range []string{"oauth:a#alice", "oauth:a#bob", ""} {
		for i := 0; i < 10; i++ {
			if got := call("api_call", who); got != Allow {
				t.Fatalf("%q call %d: %s", who, i+1, got)
			}
		}
		if got := call("api_call", who); got != Block {
			t.Fatalf("%q 11th call: %s, want block", who, got)
		}
	}
	allowed := 0
	for i := 0; i < 20; i++ {
		who := []string{"oauth:a#alice", "oauth:a#bob"}[i%2]
		if call("database_query", who) == Allow {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("per: server let %d of 20 calls by two callers through, want 10", allowed)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"per: team\n        limit: 1/minute", `per: "team" is not caller or server`},
		{"per: server", "per: applies to a limit"},
	} {
		_, err := ParseFile("bad.yaml", []byte("policies:\n  - name: p\n    rules:\n      - condition: tool == 'x'\n        action: block\n        "+bad.yaml+"\n"))
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "bad.yaml:6:") {
			t.Errorf("%s: %v, want %q at line 6", bad.yaml, err, bad.want)
		}
	}
}

// TestHides: a tool is hidden from a caller only by an unlimited block
// rule that decides without the call's arguments; nothing is counted.
func TestHides(t *testing.T) {
	e := NewEngine(mustSet(t, `
policies:
  - name: p
    rules:
      - name: admins-write
        condition: "tool == 'filesystem_write' and !('admins' in caller.groups)"
        action: block
      - name: path
        condition: "tool == 'filesystem_read' and params.path startsWith '/secret'"
        action: block
      - name: limited
        condition: "tool == 'api_call'"
        limit: 1/minute
        action: block
      - name: low-trust
        condition: "tool == 'code_execute' and trust_score < 900"
        action: block
      - name: warn-only
        condition: "tool == 'database_query'"
        action: warn
`), Options{Clock: (&fakeClock{now: t0}).Now})
	ctx := context.Background()
	dev := CallerEnv{ID: "oauth:a#dev", Groups: []string{"dev"}}
	admin := CallerEnv{ID: "oauth:a#admin", Groups: []string{"admins"}}
	for _, tc := range []struct {
		tool   string
		caller CallerEnv
		hidden bool
	}{
		{"filesystem_write", dev, true},
		{"filesystem_write", admin, false},
		{"filesystem_read", dev, false}, // depends on the path
		{"api_call", dev, false},        // depends on the count
		{"code_execute", dev, false},    // depends on trust
		{"database_query", dev, false},
	} {
		call := &Call{Tool: tc.tool, Agent: "did:agentmesh:x", Caller: tc.caller, Subject: tc.caller.ID}
		for i := 0; i < 3; i++ {
			if got := e.Hides(ctx, call); got != tc.hidden {
				t.Errorf("Hides(%s, %s) = %v, want %v", tc.tool, tc.caller.ID, got, tc.hidden)
			}
		}
	}
	// Listing three times counted nothing: the first api_call is allowed.
	if d := e.PreCall(ctx, &Call{Tool: "api_call", Agent: "did:agentmesh:x", Subject: dev.ID}); d.Action != Allow {
		t.Fatalf("first api_call after listings: %s", d.Action)
	}
	shadow := NewEngine(e.Policies(), Options{Shadow: true})
	if shadow.Hides(ctx, &Call{Tool: "filesystem_write", Caller: dev}) {
		t.Error("shadow mode hid a tool")
	}
}
