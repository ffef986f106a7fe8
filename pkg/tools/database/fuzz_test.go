package database

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzQuery sends arbitrary text to a read-only database: no panic, and
// afterwards the file's bytes, every row, the schema and the directory are
// exactly as before.
func FuzzQuery(f *testing.F) {
	for _, a := range writeAttempts {
		f.Add(a.query)
	}
	for _, s := range []string{"SELECT * FROM users", "SELECT 1", "PRAGMA table_info(users)", "VALUES (1)",
		"SELECT * FROM users WHERE id = 1 UNION ALL SELECT * FROM users", "'", "[", "/*", "--", "\"", ";;;"} {
		f.Add(s)
	}
	fx := newFixture(f, func(o *Options) { o.MaxRows = 10; o.Timeout = 250 * time.Millisecond })
	before := fx.snapshot(f)
	f.Fuzz(func(t *testing.T, q string) {
		q = strings.ReplaceAll(q, "{dir}", fx.dir)
		args := map[string]any{"query": q}
		_, _ = fx.tool.Access(args)
		res, err := fx.tool.Call(context.Background(), args)
		if err == nil && res == nil {
			t.Fatal("no result and no error")
		}
		if after := fx.snapshot(t); !after.equal(before) {
			t.Fatalf("THE DATABASE CHANGED after %q:\nbefore %+v\nafter  %+v", q, before, after)
		}
	})
}
