package database

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/scope"
	"github.com/agentmesh/agentmesh/pkg/tools"
)

func TestSelect(t *testing.T) {
	fx := newFixture(t)
	r := call(fx.tool, map[string]any{"query": "SELECT id, name, email, role FROM users ORDER BY id"}).result(t)
	if r.RowCount != usersRows || len(r.Rows) != usersRows || r.Truncated || r.Database != "users" {
		t.Fatalf("result header: %+v", r)
	}
	if strings.Join(r.Columns, ",") != "id,name,email,role" {
		t.Errorf("columns %v", r.Columns)
	}
	if r.Rows[0][0] != int64(1) || r.Rows[0][1] != "User 1" {
		t.Errorf("first row %v", r.Rows[0])
	}
	for _, q := range []string{
		"select count(*) from users",
		"  -- a comment\n SELECT 1;  ",
		"SELECT 1; -- trailing comment",
		"SELECT 1;;; /* trailing */",
		"WITH r AS (SELECT role, count(*) AS n FROM users GROUP BY role) SELECT * FROM r",
		"VALUES (1, 'a'), (2, 'b')",
		"SELECT * FROM engineers",
		"PRAGMA table_info(users)",
		"SELECT name FROM pragma_table_info('users')",
		"PRAGMA user_version",
		"EXPLAIN QUERY PLAN SELECT * FROM users WHERE id = 1",
		"SELECT ';' AS semicolon, 'DROP TABLE users' AS text",
		"SELECT replace(name, 'User', 'Person') FROM users",
		"SELECT name FROM sqlite_master WHERE type = 'table'",
		"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 10) SELECT sum(x) FROM c",
	} {
		if o := call(fx.tool, map[string]any{"query": q}); o.err != nil {
			t.Errorf("%q: %v", q, o.err)
		}
	}
}

func TestParams(t *testing.T) {
	fx := newFixture(t)
	r := call(fx.tool, map[string]any{
		"query":  "SELECT id FROM users WHERE role = ? AND id > ? ORDER BY id",
		"params": []any{"engineer", float64(2)},
	}).result(t)
	for _, row := range r.Rows {
		if row[0].(int64) <= 2 {
			t.Errorf("bound id > 2 not applied: %v", r.Rows)
		}
	}
	if r.RowCount == 0 {
		t.Fatal("no engineers above id 2")
	}
	// An injection attempt is a value, not SQL.
	r = call(fx.tool, map[string]any{"query": "SELECT count(*) FROM users WHERE name = ?", "params": []any{"x' OR '1'='1"}}).result(t)
	if r.Rows[0][0] != int64(0) {
		t.Errorf("a bound string matched rows: %v", r.Rows)
	}
	r = call(fx.tool, map[string]any{"query": "SELECT ?, ?, ?, ?, ?", "params": []any{nil, true, 1.5, "s", float64(7)}}).result(t)
	if got := r.Rows[0]; got[0] != nil || got[1] != int64(1) || got[2] != 1.5 || got[3] != "s" || got[4] != int64(7) {
		t.Errorf("param types: %#v", got)
	}
	for _, bad := range []any{"notalist", []any{map[string]any{"a": 1}}, []any{[]any{1}}, make([]any, MaxParams+1)} {
		o := call(fx.tool, map[string]any{"query": "SELECT 1", "params": bad})
		if r := o.refusal(); r == nil || r.Check != "arguments" {
			t.Errorf("params %T: want an arguments refusal, got %v", bad, o.err)
		}
	}
}

func TestRowCap(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.MaxRows = 100 })
	r := call(fx.tool, map[string]any{"query": "SELECT n FROM numbers ORDER BY n"}).result(t)
	if r.RowCount != 100 || len(r.Rows) != 100 || !r.Truncated {
		t.Fatalf("want 100 rows, truncated: got %d, %v", r.RowCount, r.Truncated)
	}
	r = call(fx.tool, map[string]any{"query": "SELECT n FROM numbers WHERE n <= 100"}).result(t)
	if r.RowCount != 100 || r.Truncated {
		t.Fatalf("exactly max_rows rows is not truncated: got %d, %v", r.RowCount, r.Truncated)
	}
}

func TestTimeout(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.Timeout = 200 * time.Millisecond })
	start := time.Now()
	o := call(fx.tool, map[string]any{"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"})
	if r := o.refusal(); r == nil || r.Check != "timeout" {
		t.Fatalf("want a timeout refusal, got %v", o.err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the query was not interrupted: it took %s", d)
	}
	// The pool is still usable.
	call(fx.tool, map[string]any{"query": "SELECT 1"}).result(t)
	// A caller's cancellation is an error, not a timeout refusal.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fx.tool.Call(ctx, map[string]any{"query": "SELECT 1"})
	var r *tools.Refusal
	if err == nil || errors.As(err, &r) {
		t.Fatalf("a cancelled call must fail as an error: %v", err)
	}
}

func TestDatabases(t *testing.T) {
	fx := newFixture(t)
	scratch := filepath.Join(fx.dir, "scratch.db")
	createUsersDB(t, scratch, 1)
	tool, err := New(Options{Databases: []DB{
		{Name: "users", HostPath: fx.usersDB, ReadOnly: true},
		{Name: "scratch", HostPath: scratch},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	a, err := tool.Access(map[string]any{"query": "SELECT 1"})
	if err != nil || a != accessOf("users") {
		t.Fatalf("default database: %v %v", a, err)
	}
	a, err = tool.Access(map[string]any{"query": "SELECT 1", "database": "scratch"})
	if err != nil || a != accessOf("scratch") {
		t.Fatalf("named database: %v %v", a, err)
	}
	res, _ := scope.ParseResource("database:users")
	if !res.Covers(a.Kind, "users") || res.Covers(a.Kind, a.Target) {
		t.Error("database:users must cover users and only users")
	}
	o := call(tool, map[string]any{"query": "SELECT 1", "database": "nope"})
	if r := o.refusal(); r == nil || r.Check != "database" {
		t.Fatalf("unknown database: %v", o.err)
	}
	// Read-write: writes work, RETURNING returns, the other guards stay.
	r := call(tool, map[string]any{"database": "scratch", "query": "INSERT INTO users (name, email, role, created_at) VALUES (?, ?, 'viewer', 'now') RETURNING id",
		"params": []any{"New", "new@example.com"}}).result(t)
	if r.RowCount != 1 || r.Rows[0][0] != int64(usersRows+1) {
		t.Fatalf("insert returning: %+v", r)
	}
	for q, check := range map[string]string{
		"ATTACH '" + filepath.Join(fx.dir, "a.db") + "' AS a": "statement",
		"SELECT load_extension('x')":                          "statement",
		"PRAGMA journal_mode = WAL":                           "statement",
		"BEGIN":                                               "statement",
		"SELECT 1; DELETE FROM users":                         "statement",
	} {
		o := call(tool, map[string]any{"database": "scratch", "query": q})
		if r := o.refusal(); r == nil || r.Check != check {
			t.Errorf("read-write %q: want %s, got %v", q, check, o.err)
		}
	}
	if _, err := os.Stat(filepath.Join(fx.dir, "a.db")); err == nil {
		t.Error("ATTACH created a file on the read-write database")
	}
	// The read-only one is unaffected.
	if r := call(tool, map[string]any{"query": "SELECT count(*) FROM users"}).result(t); r.Rows[0][0] != int64(usersRows) {
		t.Errorf("users changed: %v", r.Rows)
	}
	if d := tool.Definition(); d.Annotations.ReadOnlyHint == nil || *d.Annotations.ReadOnlyHint {
		t.Error("with a read-write database the tool is not read-only")
	}
}

func accessOf(name string) tools.Access {
	return tools.Access{Kind: scope.Database, Target: name, Action: scope.Query}
}

func TestArguments(t *testing.T) {
	fx := newFixture(t)
	for _, args := range []map[string]any{
		{},
		{"query": 1},
		{"query": "  "},
		{"query": strings.Repeat("x", MaxQueryBytes+1)},
		{"query": "SELECT '\xff'"},
		{"query": "SELECT 1", "limit": 5},
		{"query": "SELECT 1", "database": 3},
	} {
		o := call(fx.tool, args)
		if r := o.refusal(); r == nil || r.Check != "arguments" || o.res != nil {
			t.Errorf("%.60v: want an arguments refusal, got %v", args, o.err)
		}
	}
}

func TestErrorsHideHostPaths(t *testing.T) {
	fx := newFixture(t)
	for _, q := range []string{"SELECT * FROM nosuch", "SELEKT 1", "SELECT nosuchfunc()"} {
		o := call(fx.tool, map[string]any{"query": q})
		if o.err == nil || o.refusal() != nil {
			t.Errorf("%q: want a plain error, got %v", q, o.err)
		}
		if strings.Contains(o.text(), fx.dir) || !strings.Contains(o.text(), "users") {
			t.Errorf("%q: %q", q, o.text())
		}
	}
}

func TestValues(t *testing.T) {
	fx := newFixture(t)
	r := call(fx.tool, map[string]any{"query": "SELECT x'6869', x'00ff', 1e999, -1e999, NULL, 9007199254740993"}).result(t)
	got := r.Rows[0]
	if got[0] != "hi" || string(got[1].([]byte)) != "\x00\xff" || got[2] != "+Inf" || got[3] != "-Inf" || got[4] != nil || got[5] != int64(9007199254740993) {
		t.Errorf("values: %#v", got)
	}
	if !strings.Contains(call(fx.tool, map[string]any{"query": "SELECT x'00ff'"}).text(), `"AP8="`) {
		t.Error("binary BLOBs are base64 in JSON")
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "u.db")
	createUsersDB(t, good, 1)
	for name, opts := range map[string]Options{
		"none":     {},
		"missing":  {Databases: []DB{{Name: "x", HostPath: filepath.Join(dir, "missing.db"), ReadOnly: true}}},
		"bad name": {Databases: []DB{{Name: "a/b", HostPath: good, ReadOnly: true}}},
		"dup name": {Databases: []DB{{Name: "a", HostPath: good, ReadOnly: true}, {Name: "a", HostPath: good, ReadOnly: true}}},
		"negative": {Databases: []DB{{Name: "a", HostPath: good}}, MaxRows: -1},
		"not a db": {Databases: []DB{{Name: "a", HostPath: writeText(t, dir), ReadOnly: true}}},
	} {
		if tool, err := New(opts); err == nil {
			tool.Close()
			t.Errorf("%s: New accepted %+v", name, opts)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("opening a missing read-only database created it")
	}
}

func writeText(t *testing.T, dir string) string {
	p := filepath.Join(dir, "text.db")
	if err := os.WriteFile(p, []byte(strings.Repeat("not a database ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostileFileName(t *testing.T) {
	// URI metacharacters in the host path are escaped: the file opened
	// is the file configured, read-only.
	dir := filepath.Join(t.TempDir(), "we?ird#dir %41")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "u.db?mode=rwc")
	plain := filepath.Join(t.TempDir(), "u.db")
	createUsersDB(t, plain, 1)
	if err := os.Rename(plain, p); err != nil {
		t.Fatal(err)
	}
	tool, err := New(Options{Databases: []DB{{Name: "u", HostPath: p, ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	if r := call(tool, map[string]any{"query": "SELECT count(*) FROM users"}).result(t); r.Rows[0][0] != int64(usersRows) {
		t.Fatalf("wrong file: %v", r.Rows)
	}
	if o := call(tool, map[string]any{"query": "DELETE FROM users"}); o.refusal() == nil {
		t.Fatal("the file was not opened read-only")
	}
}

func TestDefinition(t *testing.T) {
	fx := newFixture(t)
	d := fx.tool.Definition()
	if d.Name != ToolName || d.Annotations.ReadOnlyHint == nil || !*d.Annotations.ReadOnlyHint ||
		d.Annotations.DestructiveHint == nil || *d.Annotations.DestructiveHint {
		t.Fatalf("definition %+v", d.Annotations)
	}
	if len(d.InputSchema.Required) != 1 || d.InputSchema.Required[0] != "query" {
		t.Errorf("required %v", d.InputSchema.Required)
	}
}

func TestFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.Source = config.Source{StateDir: "/state"}
	o := FromConfig(&cfg)
	if len(o.Databases) != 1 || o.Databases[0] != (DB{Name: "users", HostPath: filepath.FromSlash("/state/data/users.db"), ReadOnly: true}) {
		t.Fatalf("FromConfig: %+v", o.Databases)
	}
	if o.MaxRows != 1000 || o.Timeout != 5*time.Second {
		t.Fatalf("FromConfig limits: %+v", o)
	}
}

func TestConnectionChecks(t *testing.T) {
	// prepareConn refuses a connection that is not read-only although the
	// database is configured so.
	p := filepath.Join(t.TempDir(), "u.db")
	createUsersDB(t, p, 1)
	db, err := sql.Open("sqlite", p) // writable
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		return prepareConn(dc.(sqlite.ExecQuerierContext), true, layers{})
	})
	if err == nil {
		t.Fatal("a writable connection passed the read-only check")
	}
}
