package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/pgapikey"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// TestStateMigrateToPostgres: a log written by real serve processes is
// copied into PostgreSQL with the same size and root, `audit verify
// --database` checks the copy, a second migration into the same database
// is refused, and a tampered log is not copied at all.
func TestStateMigrateToPostgres(t *testing.T) {
	url := pgtest.URL(t)
	w := newWorkspace(t)
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 40, 0)
	stop()
	key, stderr, code := w.agentmesh("keys", "create", "--caller", "ci", "--scopes", "mcp:tools", "--expires", "90d")
	if code != 0 {
		t.Fatalf("keys create: %s", stderr)
	}
	key = strings.TrimSpace(key)
	v, code, out := w.verify()
	if code != 0 || v.Size == 0 {
		t.Fatalf("the SQLite log: %d %s", code, out)
	}

	// Without its witness the log is not copied (as audit verify refuses
	// it), unless --no-witness says it was copied from another machine.
	witness := w.witnessFile()
	saved := readFile(t, witness)
	if err := os.Remove(witness); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := w.agentmesh("state", "migrate", "--to", url); code != 1 || !strings.Contains(stderr, "does not verify") {
		t.Fatalf("migrating a log whose witness is gone: exit %d %s", code, stderr)
	}
	if err := os.WriteFile(witness, saved, 0o600); err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := w.agentmesh("state", "migrate", "--to", url, "--page-size", "7", "--output", "json")
	if code != 0 {
		t.Fatalf("state migrate: exit %d: %s", code, stderr)
	}
	var rep migrateReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("state migrate --output json: %v\n%s", err, stdout)
	}
	v, _, _ = w.verify() // keys create appended
	if rep.Entries != v.Size || rep.Root != v.Root {
		t.Fatalf("migrated %d entries with root %s, the SQLite log has %d with %s", rep.Entries, rep.Root, v.Size, v.Root)
	}
	if rep.Copied.TrustStates != 1 || rep.Copied.APIKeys != 1 {
		t.Fatalf("copied %+v, want the server's trust state and the key", rep.Copied)
	}
	// The copy answers like the original: the trust score and the key.
	db := w.sqlite()
	var sqliteState string
	db.QueryRow(`SELECT state FROM trust_state`).Scan(&sqliteState)
	var keyCreated string
	db.QueryRow(`SELECT created FROM api_keys`).Scan(&keyCreated)
	db.Close()
	pg, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	var pgScore int
	var pgCreated time.Time
	if err := pg.Pool.QueryRow(context.Background(), `SELECT (state->>'score')::int FROM trust_state`).Scan(&pgScore); err != nil {
		t.Fatal(err)
	}
	if err := pg.Pool.QueryRow(context.Background(), `SELECT created FROM api_keys`).Scan(&pgCreated); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Score int `json:"score"`
	}
	json.Unmarshal([]byte(sqliteState), &st)
	if who, err := (&pgapikey.Store{DB: pg}).Lookup(context.Background(), key); err != nil || who.ID != "key:ci" || !who.HasScope("mcp:tools") {
		t.Fatalf("the copied key on PostgreSQL: %v, %v", who, err)
	}
	created, _ := time.Parse(time.RFC3339Nano, keyCreated)
	if pgScore != st.Score || st.Score == 0 || !pgCreated.Equal(created) {
		t.Fatalf("PostgreSQL: score %d, key created %s; SQLite: %s, %s", pgScore, pgCreated, sqliteState, keyCreated)
	}
	stdout, stderr, code = w.agentmesh("audit", "verify", "--database", url, "--output", "json")
	var pv struct {
		OK   bool   `json:"ok"`
		Size int64  `json:"size"`
		Root string `json:"root"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &pv) != nil || !pv.OK || pv.Size != v.Size || pv.Root != v.Root {
		t.Fatalf("audit verify --database: exit %d %s %s", code, stdout, stderr)
	}
	if _, stderr, code = w.agentmesh("state", "migrate", "--to", url); code == 0 || !strings.Contains(stderr, "already holds") {
		t.Fatalf("a second migration into the same database: exit %d %s", code, stderr)
	}

	// A log that does not verify is not copied.
	e := w.entry(3)
	e.Reason = "rewritten after the fact"
	w.rewrite(3, e)
	empty := pgtest.URL(t)
	if _, stderr, code = w.agentmesh("state", "migrate", "--to", empty); code != 1 || !strings.Contains(stderr, "does not verify, so it is not copied") {
		t.Fatalf("migrating a tampered log: exit %d %s", code, stderr)
	}
	stdout, _, _ = w.agentmesh("audit", "verify", "--database", empty, "--output", "json")
	if json.Unmarshal([]byte(stdout), &pv) != nil || !pv.OK || pv.Size != 0 {
		t.Fatalf("the database after a refused migration: %s", stdout)
	}
}
