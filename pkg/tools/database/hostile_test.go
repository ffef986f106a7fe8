package database

import (
	"path/filepath"
	"strings"
	"testing"
)

// writeAttempt is one hostile query against the read-only users database.
// want is the refusal check with every layer on; engine is the check when
// the lexical layer is off (the authorizer and the read-only open alone);
// "sqlite" means SQLite itself rejects the text (a syntax error), which is
// not a refusal but still changes nothing. mainFile marks writes to the
// database file itself, which the read-only open alone must stop too.
type writeAttempt struct {
	name     string
	query    string // "{dir}" is replaced by the fixture's directory
	want     string
	engine   string
	mainFile bool
	// creates names a file that must not exist afterwards.
	creates string
}

var writeAttempts = []writeAttempt{
	// DDL.
	{name: "drop_table", query: "DROP TABLE users", want: "destructive", engine: "read-only", mainFile: true},
	{name: "create_table", query: "CREATE TABLE evil (x)", want: "read-only", engine: "read-only", mainFile: true},
	{name: "alter_table", query: "ALTER TABLE users ADD COLUMN pwned TEXT", want: "destructive", engine: "read-only", mainFile: true},
	{name: "alter_rename", query: "ALTER TABLE users RENAME TO gone", want: "destructive", engine: "read-only", mainFile: true},
	{name: "create_index", query: "CREATE INDEX i ON users(name)", want: "read-only", engine: "read-only", mainFile: true},
	{name: "create_view", query: "CREATE VIEW v AS SELECT 1", want: "read-only", engine: "read-only", mainFile: true},
	{name: "drop_view", query: "DROP VIEW engineers", want: "destructive", engine: "read-only", mainFile: true},
	{name: "create_trigger", query: "CREATE TRIGGER t AFTER INSERT ON users BEGIN DELETE FROM users; END", want: "statement", engine: "read-only", mainFile: true},
	// DML.
	{name: "insert", query: "INSERT INTO users (name, email, role, created_at) VALUES ('x', 'x@example.com', 'admin', 'now')", want: "read-only", engine: "read-only", mainFile: true},
	{name: "update", query: "UPDATE users SET role = 'admin'", want: "destructive", engine: "read-only", mainFile: true},
	{name: "delete", query: "DELETE FROM users", want: "destructive", engine: "read-only", mainFile: true},
	{name: "replace", query: "REPLACE INTO users VALUES (1, 'x', 'x@example.com', 'admin', 'now')", want: "destructive", engine: "read-only", mainFile: true},
	{name: "insert_or_replace", query: "INSERT OR REPLACE INTO users VALUES (1, 'x', 'x@example.com', 'admin', 'now')", want: "read-only", engine: "read-only", mainFile: true},
	{name: "upsert", query: "INSERT INTO users VALUES (1, 'x', 'x', 'x', 'x') ON CONFLICT(id) DO UPDATE SET role = 'admin'", want: "read-only", engine: "read-only", mainFile: true},
	// Several statements.
	{name: "select_then_drop", query: "SELECT 1; DROP TABLE users", want: "statement", engine: "read-only", mainFile: true},
	{name: "select_then_delete_no_space", query: "SELECT 1;DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	{name: "line_comment_then_delete", query: "SELECT 1 -- \n; DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	{name: "semicolon_in_string_then_delete", query: "SELECT ';' ; DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	{name: "semicolon_in_comment_then_delete", query: "SELECT 1 /* ; */ ; DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	{name: "semicolon_in_brackets_then_delete", query: "SELECT [;] FROM (SELECT 1 AS [;]); DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	{name: "leading_empty_statement", query: ";DELETE FROM users", want: "statement", engine: "read-only", mainFile: true},
	// Comments and case.
	{name: "comment_mixed_case_drop", query: "/* x */ dRoP table users", want: "destructive", engine: "read-only", mainFile: true},
	{name: "line_comment_then_drop", query: "-- harmless\nDrOp TaBlE users", want: "destructive", engine: "read-only", mainFile: true},
	{name: "quoted_identifiers", query: `DELETE FROM "users"`, want: "destructive", engine: "read-only", mainFile: true},
	// Writes hidden in reading shapes.
	{name: "cte_delete", query: "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x", want: "sqlite", engine: "sqlite", mainFile: true},
	{name: "with_then_insert", query: "WITH x AS (SELECT 1) INSERT INTO users (name, email, role, created_at) SELECT 'x', 'x@x', 'admin', 'now' FROM x", want: "read-only", engine: "read-only", mainFile: true},
	{name: "with_then_delete", query: "WITH x AS (SELECT 1) DELETE FROM users WHERE id IN (SELECT * FROM x)", want: "read-only", engine: "read-only", mainFile: true},
	{name: "delete_returning", query: "DELETE FROM users RETURNING *", want: "destructive", engine: "read-only", mainFile: true},
	{name: "insert_returning", query: "INSERT INTO users (name, email, role, created_at) VALUES ('x', 'y@example.com', 'admin', 'now') RETURNING id", want: "read-only", engine: "read-only", mainFile: true},
	{name: "update_returning", query: "UPDATE users SET name = 'x' RETURNING name", want: "destructive", engine: "read-only", mainFile: true},
	{name: "explain_delete", query: "EXPLAIN DELETE FROM users", want: "read-only", engine: "read-only"},
	// PRAGMA writes and dangerous PRAGMAs.
	// Already in DELETE mode: a no-op for the file, so not a mainFile case.
	{name: "pragma_journal_mode", query: "PRAGMA journal_mode=DELETE", want: "read-only", engine: "read-only"},
	{name: "pragma_journal_mode_wal", query: "PRAGMA journal_mode = WAL", want: "read-only", engine: "read-only", mainFile: true},
	{name: "pragma_user_version", query: "PRAGMA user_version=5", want: "read-only", engine: "read-only", mainFile: true},
	{name: "pragma_user_version_call_form", query: "PRAGMA user_version(5)", want: "read-only", engine: "read-only", mainFile: true},
	{name: "pragma_query_only_off", query: "PRAGMA query_only = 0", want: "read-only", engine: "read-only"},
	{name: "pragma_writable_schema", query: "PRAGMA writable_schema = 1", want: "read-only", engine: "read-only"},
	{name: "pragma_database_list", query: "PRAGMA database_list", want: "statement", engine: "statement"},
	{name: "pragma_main_schema", query: "PRAGMA main.user_version = 7", want: "read-only", engine: "read-only", mainFile: true},
	// Table-valued PRAGMA functions cannot set values: SQLite says so itself.
	{name: "pragma_function_journal_mode", query: "SELECT * FROM pragma_journal_mode('WAL')", want: "sqlite", engine: "sqlite", mainFile: true},
	{name: "pragma_function_user_version", query: "SELECT * FROM pragma_user_version(5)", want: "sqlite", engine: "sqlite", mainFile: true},
	{name: "pragma_function_query_only", query: "SELECT * FROM pragma_query_only(0)", want: "sqlite", engine: "sqlite"},
	{name: "dbpage_write", query: "UPDATE sqlite_dbpage SET data = zeroblob(4096) WHERE pgno = 1", want: "destructive", engine: "read-only", mainFile: true},
	// Other files.
	{name: "attach", query: "ATTACH DATABASE '{dir}/x.db' AS x", want: "statement", engine: "statement", creates: "x.db"},
	{name: "attach_lowercase_comment", query: "/**/attach '{dir}/x2.db' as x", want: "statement", engine: "statement", creates: "x2.db"},
	{name: "attach_uri", query: "ATTACH 'file:{dir}/x3.db?mode=rwc' AS x", want: "statement", engine: "statement", creates: "x3.db"},
	{name: "vacuum_into", query: "VACUUM INTO '{dir}/y.db'", want: "statement", engine: "statement", creates: "y.db"},
	// The authorizer sees VACUUM as the ATTACH of its temporary database.
	{name: "vacuum", query: "VACUUM", want: "statement", engine: "statement", mainFile: true},
	{name: "detach", query: "DETACH DATABASE main", want: "statement", engine: "statement"},
	{name: "create_temp_table", query: "CREATE TEMP TABLE t (x)", want: "read-only", engine: "read-only"},
	{name: "create_temp_view", query: "CREATE TEMP VIEW v AS SELECT * FROM users", want: "read-only", engine: "read-only"},
	{name: "load_extension", query: "SELECT load_extension('{dir}/evil.so')", want: "statement", engine: "statement"},
	{name: "load_extension_in_subquery", query: "SELECT (SELECT load_extension('/tmp/evil.so', 'init')) FROM users", want: "statement", engine: "statement"},
	// Transactions.
	{name: "begin", query: "BEGIN IMMEDIATE", want: "statement", engine: "statement"},
	{name: "savepoint", query: "SAVEPOINT s", want: "statement", engine: "statement"},
	{name: "reindex", query: "REINDEX users", want: "read-only", engine: "read-only", mainFile: true},
	{name: "analyze", query: "ANALYZE", want: "read-only", engine: "read-only", mainFile: true},
	// Text SQLite would cut short.
	{name: "nul_byte_hides_statement", query: "SELECT 1\x00; DROP TABLE users", want: "arguments", engine: "arguments", mainFile: true},
}

// TestReadOnlyLayers sends every write attempt three times: with every
// layer, without the lexical check (the authorizer and the read-only open
// alone), and, for writes to the database file, with the read-only open
// alone. Each time the call must fail as expected and nothing may change:
// not the file's bytes, not a row, not the schema, and no new file.
func TestReadOnlyLayers(t *testing.T) {
	if len(writeAttempts) < 12 {
		t.Fatalf("the hostile suite must keep at least 12 write attempts, has %d", len(writeAttempts))
	}
	modes := []struct {
		name   string
		layers layers
		want   func(writeAttempt) string
		skip   func(writeAttempt) bool
	}{
		{"all_layers", layers{}, func(a writeAttempt) string { return a.want }, func(writeAttempt) bool { return false }},
		{"engine_only", layers{noLexical: true}, func(a writeAttempt) string { return a.engine }, func(writeAttempt) bool { return false }},
		// Without the authorizer, ATTACH and VACUUM INTO would create
		// files: the read-only open protects the database file only.
		{"open_mode_only", layers{noLexical: true, noAuthorizer: true}, func(writeAttempt) string { return "" },
			func(a writeAttempt) bool { return !a.mainFile }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			fx := newFixtureLayers(t, mode.layers)
			before := fx.snapshot(t)
			for _, a := range writeAttempts {
				if mode.skip(a) {
					continue
				}
				t.Run(a.name, func(t *testing.T) {
					q := strings.ReplaceAll(a.query, "{dir}", fx.dir)
					o := call(fx.tool, map[string]any{"query": q})
					t.Logf("%q: %s", q, strings.TrimSpace(o.text()))
					if o.res != nil || o.err == nil {
						t.Fatalf("WRITE ALLOWED: %q returned a result", q)
					}
					want := mode.want(a)
					r := o.refusal()
					switch want {
					case "":
						// open_mode_only: any failure will do
					case "sqlite":
						if r != nil {
							t.Errorf("want SQLite's own error, got refusal %s: %s", r.Check, r.Reason)
						}
					default:
						if r == nil || r.Check != want {
							t.Errorf("want refusal %q, got %v", want, o.err)
						}
					}
					if strings.Contains(o.text(), fx.dir) {
						t.Errorf("the host path leaked: %q", o.text())
					}
					if after := fx.snapshot(t); !after.equal(before) {
						t.Fatalf("THE DATABASE CHANGED:\nbefore %+v\nafter  %+v", before, after)
					}
					if a.creates != "" {
						if _, err := filepath.Glob(filepath.Join(fx.dir, a.creates)); err != nil {
							t.Fatal(err)
						}
						if m, _ := filepath.Glob(filepath.Join(fx.dir, a.creates)); len(m) != 0 {
							t.Fatalf("FILE CREATED: %s", a.creates)
						}
					}
				})
			}
			// The pool's connections are still read-only after all that.
			o := call(fx.tool, map[string]any{"query": "PRAGMA query_only"})
			if o.err != nil {
				t.Fatal(o.err)
			}
			if r := o.result(t); len(r.Rows) != 1 || r.Rows[0][0] != int64(1) {
				t.Fatalf("query_only is no longer 1: %v", r.Rows)
			}
		})
	}
}
