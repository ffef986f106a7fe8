package mcpserver

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// openPostgresRuntime opens a server of the identity in stateDir whose
// shared state is the PostgreSQL database at dbURL.
func openPostgresRuntime(t *testing.T, stateDir, dbURL string) *Runtime {
	t.Helper()
	cfg := config.Default()
	cfg.Source.StateDir = stateDir
	cfg.Source.Database, cfg.Source.DatabaseFrom = dbURL, "the test"
	cfg.Agent = config.Agent{Name: "fleet-test", Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = nil
	rt, err := Open(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// Two replicas of one identity on one PostgreSQL database: their calls go
// to one log with contiguous seqs. While the database is unreachable every
// call is refused, saying why, and the server is not ready; once it is
// back, calls succeed again without a restart. Every call answered as
// allowed is in the log, which verifies.
func TestPostgresReplicasFailClosedAndRecover(t *testing.T) {
	base := pgtest.URL(t)
	proxy, dbURL := pgtest.NewProxy(t, base)
	stateDir := filepath.Join(t.TempDir(), "state")
	a := openPostgresRuntime(t, stateDir, dbURL)
	b := openPostgresRuntime(t, stateDir, dbURL)
	if a.DB != nil || a.Log != nil {
		t.Fatal("a PostgreSQL server opened the state directory's SQLite database")
	}
	callA, callB := serveMCP(t, a), serveMCP(t, b)
	metricsA := serveMetrics(t, a)
	list := func(call func(string) string, id int) string {
		return call(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"filesystem_list","arguments":{"path":"/data"}}}`, id))
	}
	allowed := 0
	for i := range 10 {
		call := callA
		if i%2 == 1 {
			call = callB
		}
		if body := list(call, i+1); strings.Contains(body, `"isError":true`) {
			t.Fatalf("call %d: %s", i, body)
		}
		allowed++
	}

	proxy.Pause()
	for i, call := range []func(string) string{callA, callB} {
		body := list(call, 100+i)
		if !strings.Contains(body, `"isError":true`) || !strings.Contains(body, "call refused") {
			t.Fatalf("a call while the database is down was not refused: %s", body)
		}
		if !strings.Contains(body, "trust state unavailable") && !strings.Contains(body, "audit log could not record it") {
			t.Fatalf("the refusal does not say why: %s", body)
		}
	}
	if code, body := getReady(t, metricsA); code != 503 || !strings.Contains(fmt.Sprint(failedChecks(body)), "database") {
		t.Fatalf("/readyz with the database down: %d %v, want 503 naming database", code, body)
	}

	proxy.Resume()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		body := list(callA, 200+i)
		if !strings.Contains(body, `"isError":true`) {
			allowed++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still refused 10 s after the database came back: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body := list(callB, 300); strings.Contains(body, `"isError":true`) {
		t.Fatalf("replica b after the database came back: %s", body)
	}
	allowed++
	if code, body := getReady(t, metricsA); code != 200 {
		t.Fatalf("/readyz after the database came back: %d %v", code, body)
	}

	ctx := context.Background()
	db, err := pgstate.Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vs, err := auditlog.Verifiers(&a.ID.Doc)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := pgaudit.Verify(ctx, db, vs)
	if err != nil {
		t.Fatalf("the fleet's log does not verify: %v", err)
	}
	entries, err := pgaudit.List(ctx, db, auditlog.Filter{Tool: "filesystem_list", Result: string(audit.ResultAllowed), AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != allowed {
		t.Fatalf("%d allowed filesystem_list entries in a log of %d, want %d (one per call answered)", len(entries), cp.Size, allowed)
	}
	for _, s := range entries {
		if s.Entry.TrustScore == nil {
			t.Fatalf("entry %d has no trust score: the trust update did not commit with it", s.Entry.Seq)
		}
	}
}

// A server whose identity is not the one the fleet's log belongs to does
// not start (and fails cleanly: no half-open backend to close).
func TestPostgresLogOfAnotherIdentity(t *testing.T) {
	dbURL := pgtest.URL(t)
	openPostgresRuntime(t, filepath.Join(t.TempDir(), "state"), dbURL)
	cfg := config.Default()
	cfg.Source.StateDir = filepath.Join(t.TempDir(), "other")
	cfg.Source.Database, cfg.Source.DatabaseFrom = dbURL, "the test"
	cfg.Agent = config.Agent{Name: "intruder", Sponsor: "me@example.com"}
	cfg.Audit.Witness = false
	cfg.Policies.Paths = nil
	rt, err := Open(context.Background(), &cfg, Options{})
	if err == nil {
		rt.Close()
		t.Fatal("a server of another identity opened the fleet's log")
	}
	if !strings.Contains(err.Error(), "belongs to agentmesh/did:agentmesh:fleet-test/") {
		t.Fatalf("error %q does not say whose log it is", err)
	}
}
