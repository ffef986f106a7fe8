package state

import (
	"context"
	"database/sql"
	"fmt"
)

// Migration is one step of the database schema. Steps are applied in order,
// each in its own write transaction, and recorded in schema_migrations.
// Later features append steps; a step, once released, never changes.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations is the schema, oldest first.
var Migrations = []Migration{
	{1, "meta", `
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;`},
}

func (db *DB) migrate(ctx context.Context) error {
	err := db.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
		) STRICT`)
		return err
	})
	if err != nil {
		return fmt.Errorf("state database %s: creating the migrations table: %w", db.Path, err)
	}
	for _, m := range Migrations {
		// Each step checks and applies under the write lock, so two
		// processes opening a new database at once apply it exactly once.
		err := db.Write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name) VALUES (?, ?)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("state database %s: migration %d (%s): %w", db.Path, m.Version, m.Name, err)
		}
	}
	var newest int
	if err := db.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("state database %s: reading the schema version: %w", db.Path, err)
	}
	if latest := Migrations[len(Migrations)-1].Version; newest > latest {
		return fmt.Errorf("state database %s has schema version %d, newer than this agentmesh understands (%d): upgrade agentmesh", db.Path, newest, latest)
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
