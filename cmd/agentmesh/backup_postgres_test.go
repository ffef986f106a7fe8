package main

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// pgBin is where the PostgreSQL client programs are (PG_BIN, as for
// scripts/pg-test-env).
func pgBin(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("PG_BIN")
	if dir == "" {
		dir = "/usr/lib/postgresql/15/bin"
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no %s (set PG_BIN): %v", name, err)
	}
	return p
}

// TestBackupPostgresPgDumpRestore is docs/backup.md's procedure for a
// fleet: pg_dump of the fleet's schema, the schema lost, pg_restore, and
// `agentmesh audit verify --database` reports the size and root recorded
// when the dump was taken; the restored database takes appends again.
func TestBackupPostgresPgDumpRestore(t *testing.T) {
	dbURL := pgtest.URL(t)
	pgDump, pgRestore := pgBin(t, "pg_dump"), pgBin(t, "pg_restore")
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("search_path") // libpq's programs take the schema as a flag
	u.RawQuery = q.Encode()
	base := u.String()

	w := newWorkspace(t)
	if _, errOut, code := w.agentmesh("identity", "create", "--name", "srv", "--sponsor", "devops@company.com"); code != 0 {
		t.Fatal(errOut)
	}
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.calls(t, 12, 0)
	stop()
	if _, errOut, code := w.agentmesh("state", "migrate", "--to", dbURL); code != 0 {
		t.Fatalf("state migrate: %s", errOut)
	}
	fleet := filepath.Join(w.dir, "fleet.yaml")
	w.write("fleet.yaml", integrityConfig+"state:\n  database: \""+dbURL+"\"\n")
	fleetCmd := func(args ...string) (string, string, int) {
		return w.agentmesh(append([]string{"--config", fleet}, args...)...)
	}
	if _, errOut, code := fleetCmd("trust", "reset", "--reason", "an append on the fleet's database"); code != 0 {
		t.Fatalf("trust reset on PostgreSQL: %s", errOut)
	}
	type pgVerdict struct {
		OK   bool   `json:"ok"`
		Size int64  `json:"size"`
		Root string `json:"root"`
	}
	verify := func() pgVerdict {
		t.Helper()
		out, errOut, code := w.agentmesh("audit", "verify", "--database", dbURL, "--output", "json")
		var v pgVerdict
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.OK {
			t.Fatalf("audit verify --database: exit %d %s %s", code, out, errOut)
		}
		return v
	}
	atDump := verify()

	dump := filepath.Join(w.dir, "fleet.dump")
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
	}
	run(pgDump, "--format=custom", "--schema="+schema, "--file="+dump, "--dbname="+base)
	// The fleet goes on after the dump, then its database is lost.
	if _, errOut, code := fleetCmd("trust", "reset", "--reason", "after the dump"); code != 0 {
		t.Fatal(errOut)
	}
	if after := verify(); after.Size != atDump.Size+1 {
		t.Fatalf("after one more append: %d entries, want %d", after.Size, atDump.Size+1)
	}
	run(filepath.Join(filepath.Dir(pgDump), "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--dbname="+base, "-c", "DROP SCHEMA "+schema+" CASCADE")
	if out, _, code := w.agentmesh("audit", "verify", "--database", dbURL, "--output", "json"); code == 0 && strings.Contains(out, `"size": `+itoa(atDump.Size+1)) {
		t.Fatalf("the schema was dropped, yet verify found the log: %s", out)
	}

	run(pgRestore, "--exit-on-error", "--dbname="+base, dump)
	if got := verify(); got.Size != atDump.Size || got.Root != atDump.Root {
		t.Fatalf("after pg_restore: %d entries, root %s; at the dump: %d, %s", got.Size, got.Root, atDump.Size, atDump.Root)
	}
	if _, errOut, code := fleetCmd("trust", "reset", "--reason", "the restored fleet appends again"); code != 0 {
		t.Fatalf("an append after pg_restore: %s", errOut)
	}
	if got := verify(); got.Size != atDump.Size+1 {
		t.Fatalf("after an append on the restored database: %d entries", got.Size)
	}
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
