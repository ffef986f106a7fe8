package database

import (
	"context"
	"testing"
)

// BenchmarkDatabaseQuery is one database_query selecting one row by a
// bound id from the read-only users database.
func BenchmarkDatabaseQuery(b *testing.B) {
	fx := newFixture(b)
	args := map[string]any{"query": "SELECT id, name, email, role, created_at FROM users WHERE id = ?", "params": []any{float64(3)}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDatabaseQueryAllUsers returns the whole users table (10 rows).
func BenchmarkDatabaseQueryAllUsers(b *testing.B) {
	fx := newFixture(b)
	args := map[string]any{"query": "SELECT * FROM users"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}
