package database

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// usersRows is the size of the users table the fixtures create.
const usersRows = 10

// fixture is a directory holding users.db (read-only to the tool) and, for
// read-write tests, scratch.db.
type fixture struct {
	dir     string
	usersDB string
	tool    *Tool
}

// createUsersDB writes a database with a users table of usersRows rows and
// a numbers table of n rows.
func createUsersDB(t testing.TB, p string, numbers int) {
	t.Helper()
	db, err := sql.Open("sqlite", p)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := []string{
		`CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_at TEXT NOT NULL)`,
		`CREATE TABLE numbers (n INTEGER PRIMARY KEY)`,
		`CREATE VIEW engineers AS SELECT name FROM users WHERE role = 'engineer'`,
	}
	for i := 1; i <= usersRows; i++ {
		role := []string{"admin", "engineer", "analyst", "viewer"}[i%4]
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO users VALUES (%d, 'User %d', 'user%d@example.com', '%s', '2026-01-%02dT09:00:00Z')`, i, i, i, role, i))
	}
	stmts = append(stmts, fmt.Sprintf(`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < %d) INSERT INTO numbers SELECT x FROM c`, numbers))
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func newFixture(t testing.TB, mutate ...func(*Options)) *fixture {
	return newFixtureLayers(t, layers{}, mutate...)
}

func newFixtureLayers(t testing.TB, l layers, mutate ...func(*Options)) *fixture {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{dir: dir, usersDB: filepath.Join(dir, "users.db")}
	createUsersDB(t, fx.usersDB, 5000)
	opts := Options{Databases: []DB{{Name: "users", HostPath: fx.usersDB, ReadOnly: true}}, MaxRows: 1000}
	for _, m := range mutate {
		m(&opts)
	}
	fx.tool, err = newTool(opts, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fx.tool.Close() })
	return fx
}

// snapshot is everything that must not change: the file's bytes, every
// row of every table and the schema, and the names in the directory.
type snapshot struct {
	fileHash, rows string
	names          []string
}

func (fx *fixture) snapshot(t testing.TB) snapshot {
	t.Helper()
	b, err := os.ReadFile(fx.usersDB)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	s := snapshot{fileHash: hex.EncodeToString(sum[:])}
	db, err := sql.Open("sqlite", "file:"+fx.usersDB+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows string
	err = db.QueryRow(`SELECT
		(SELECT group_concat(id || '|' || name || '|' || email || '|' || role || '|' || created_at, ';') FROM (SELECT * FROM users ORDER BY id)) || '#' ||
		(SELECT count(*) || ':' || sum(n) FROM numbers) || '#' ||
		(SELECT group_concat(type || name || coalesce(sql, ''), ';') FROM (SELECT * FROM sqlite_master ORDER BY name))`).Scan(&rows)
	if err != nil {
		t.Fatal(err)
	}
	var uv int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&uv); err != nil {
		t.Fatal(err)
	}
	s.rows = fmt.Sprintf("%s#uv=%d", rows, uv)
	ents, err := os.ReadDir(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		s.names = append(s.names, e.Name())
	}
	sort.Strings(s.names)
	return s
}

func (s snapshot) equal(o snapshot) bool {
	return s.fileHash == o.fileHash && s.rows == o.rows && strings.Join(s.names, "/") == strings.Join(o.names, "/")
}

// outcome is one call, Access then Call.
type outcome struct {
	accessErr error
	res       *mcp.CallToolResult
	err       error
}

func call(tool tools.Tool, args map[string]any) outcome {
	var o outcome
	_, o.accessErr = tool.Access(args)
	o.res, o.err = tool.Call(context.Background(), args)
	return o
}

func (o outcome) refusal() *tools.Refusal {
	var r *tools.Refusal
	if errors.As(o.err, &r) || errors.As(o.accessErr, &r) {
		return r
	}
	return nil
}

func (o outcome) text() string {
	var b strings.Builder
	for _, e := range []error{o.accessErr, o.err} {
		if e != nil {
			b.WriteString(e.Error() + "\n")
		}
	}
	if o.res != nil {
		for _, c := range o.res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
	}
	return b.String()
}

func (o outcome) result(t testing.TB) *Result {
	t.Helper()
	if o.err != nil || o.accessErr != nil {
		t.Fatalf("call failed: %v / %v", o.accessErr, o.err)
	}
	r, ok := o.res.StructuredContent.(*Result)
	if !ok {
		t.Fatalf("structured content is %T", o.res.StructuredContent)
	}
	var fromText Result
	if err := json.Unmarshal([]byte(o.text()), &fromText); err != nil || fromText.RowCount != r.RowCount {
		t.Fatalf("the text content is not the same JSON: %v", err)
	}
	return r
}
