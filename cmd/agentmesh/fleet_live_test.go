package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The acceptance's "shared state is live": a change made through one
// replica, or by the CLI against the fleet's database, applies to the next
// call on every replica within 1 s, without restarting anything.

// startThree starts replicas a, b and c of f.
func startThree(f *fleet, args ...string) []*replica {
	return []*replica{f.start("a", args...), f.start("b", args...), f.start("c", args...)}
}

// TestFleetTrustRevocationAndReset: attacks through replica a drive the
// server's trust below trust.revoke_below; the next call on b and c is
// refused as revoked too. `agentmesh trust reset` by the CLI lifts it:
// calls on every replica succeed again within 1 s.
func TestFleetTrustRevocationAndReset(t *testing.T) {
	f := newFleet(t, "")
	f.dataFiles(1)
	reps := startThree(f)
	cs := make([]*mcpClient, len(reps))
	for i, r := range reps {
		cs[i] = connect(t, r, "client-"+r.name, nil)
		if res := cs[i].read(0); !res.ok() {
			t.Fatalf("a first read on %s: %s", r.name, res)
		}
	}

	// Each traversal is an attack (trust.weights.attack); distinct targets,
	// since the same refusal costs once per repeat_window.
	revoked := false
	for n := 0; n < 20 && !revoked; n++ {
		res := cs[0].call("filesystem_read", map[string]any{"path": fmt.Sprintf("/data/../../etc/passwd%d", n)})
		if !res.isError {
			t.Fatalf("traversal %d on a: %s", n, res)
		}
		revoked = strings.Contains(res.text, "access revoked")
	}
	if !revoked {
		t.Fatal("20 traversals through replica a did not revoke the server's trust")
	}
	for _, i := range []int{1, 2} {
		within(t, "revocation on a seen by "+reps[i].name, func() (bool, string) {
			res := cs[i].read(0)
			return res.isError && strings.Contains(res.text, "access revoked"), res.String()
		})
	}

	if _, stderr, code := f.agentmesh("trust", "reset", "--reason", "fleet test: the attacks were a drill"); code != 0 {
		t.Fatalf("trust reset: exit %d: %s", code, stderr)
	}
	for _, i := range []int{1, 2, 0} {
		within(t, "trust reset seen by "+reps[i].name, func() (bool, string) {
			res := cs[i].read(0)
			return res.ok(), res.String()
		})
	}
	log := f.auditLog()
	resets := 0
	for _, e := range log {
		if e.Action == "trust_reset" {
			resets++
		}
	}
	if resets != 1 {
		t.Errorf("%d trust_reset entries in the fleet's log, want 1", resets)
	}
	f.verifyLog(len(log))
}

// TestFleetAPIKeyRevocation: with auth.api_keys, a key made by `agentmesh
// keys create` against the fleet's database works on every replica at
// once; after `agentmesh keys revoke`, the next request with it on every
// replica is refused with 401 within 1 s.
func TestFleetAPIKeyRevocation(t *testing.T) {
	f := newFleet(t, "auth: {api_keys: true}\n")
	f.dataFiles(1)
	reps := startThree(f)
	if _, err := connectErr(t, reps[0], "anonymous", nil); !unauthorized(err) {
		t.Fatalf("a client without a key: %v, want 401", err)
	}
	key, stderr, code := f.agentmesh("keys", "create", "--caller", "ci-bot")
	if code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, stderr)
	}
	bearer := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(key)}
	cs := make([]*mcpClient, len(reps))
	for i, r := range reps {
		cs[i] = connect(t, r, "ci-bot-"+r.name, bearer)
		if res := cs[i].read(0); !res.ok() {
			t.Fatalf("a read with the key on %s: %s", r.name, res)
		}
	}
	if _, stderr, code := f.agentmesh("keys", "revoke", "ci-bot", "--reason", "fleet test: the job is retired"); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, stderr)
	}
	revokedAt := time.Now()
	for i, r := range reps {
		within(t, "key revocation seen by "+r.name, func() (bool, string) {
			res := cs[i].read(0)
			return unauthorized(res.err), res.String()
		})
	}
	t.Logf("all 3 replicas refused the key %v after keys revoke exited", time.Since(revokedAt).Round(time.Millisecond))
	for _, r := range reps {
		if _, err := connectErr(t, r, "ci-bot-again", bearer); !unauthorized(err) {
			t.Errorf("a new session with the revoked key on %s: %v, want 401", r.name, err)
		}
	}
	log := f.auditLog()
	var created, revoked int
	for _, e := range log {
		switch e.Action {
		case "api_key_created":
			created++
		case "api_key_revoked":
			revoked++
		}
	}
	if created != 1 || revoked != 1 {
		t.Errorf("the fleet's log has %d api_key_created and %d api_key_revoked entries, want 1 and 1", created, revoked)
	}
	f.verifyLog(len(log))
}

// fleetUpstream governs the fixture upstream (fixture_test.go), started
// by each replica in the fleet's directory, where echo-description sets
// its echo tool's description.
const fleetUpstream = `upstreams:
  - name: fixture
    command: fixture-upstream
    cwd: .
    prefix: fx__
`

// TestFleetToolApproval: the fixture's echo tool is pinned by a first
// fleet; its description then changes, and a new fleet of 3 replicas
// refuses fx__echo on every replica until `agentmesh tools approve
// fx__echo` against the shared database, after which fx__echo works on
// every replica within 1 s, without a restart.
func TestFleetToolApproval(t *testing.T) {
	f := newFleet(t, fleetUpstream)
	echo := func(c *mcpClient) result { return c.call("fx__echo", map[string]any{"message": "hi"}) }
	// awaitUpstream waits for a replica's upstream to be listed (it starts
	// after the replica listens): not an acceptance timing.
	awaitUpstream := func(r *replica, c *mcpClient, ok func(result) bool) {
		t.Helper()
		var res result
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if res = echo(c); ok(res) {
				return
			}
		}
		t.Fatalf("fx__echo on %s: %s\n%s", r.name, res, r.stderr)
	}

	first := startThree(f)
	for _, r := range first {
		awaitUpstream(r, connect(t, r, "client-"+r.name, nil), func(res result) bool { return res.ok() && res.text == "echo: hi" })
		r.stop()
	}

	f.write("echo-description", "Echoes the message back, in a new wording.")
	reps := startThree(f)
	cs := make([]*mcpClient, len(reps))
	changed := func(res result) bool {
		return res.isError && strings.Contains(res.text, "fx__echo is blocked: upstream fixture changed its definition")
	}
	for i, r := range reps {
		cs[i] = connect(t, r, "client-"+r.name, nil)
		awaitUpstream(r, cs[i], changed)
	}
	if stdout, stderr, code := f.agentmesh("tools", "approve", "fx__echo", "--yes"); code != 0 {
		t.Fatalf("tools approve: exit %d: %s%s", code, stdout, stderr)
	}
	for i, r := range reps {
		within(t, "approval seen by "+r.name, func() (bool, string) {
			res := echo(cs[i])
			return res.ok() && res.text == "echo: hi", res.String()
		})
	}
	log := f.auditLog()
	var observed, approved int
	for _, e := range log {
		switch e.Action {
		case "tool_definition_changed":
			observed++
		case "tool_approved":
			approved++
		}
	}
	// The first sight and the change, each recorded once by whichever
	// replica saw it first.
	if observed != 2 || approved != 1 {
		t.Errorf("the fleet's log has %d tool_definition_changed and %d tool_approved entries, want 2 and 1", observed, approved)
	}
	f.verifyLog(len(log))
}
