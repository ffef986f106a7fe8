// Package pgstate is the state database on PostgreSQL, for a fleet of
// `serve --http` replicas sharing one database (DESIGN.md, "Storage"): the
// connection pool and the versioned schema. What is stored in it, and how,
// is the business of the packages that use it (pkg/pgaudit for the audit
// log), as pkg/state is for SQLite.
//
// Every replica opening the database applies the pending migrations in one
// transaction under a transaction-scoped advisory lock, so replicas started
// together migrate once and none sees a half-migrated schema.
package pgstate

import (
	"context"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is an open PostgreSQL state database.
type DB struct {
	// Pool is shared by everything this process stores in the database.
	Pool *pgxpool.Pool
	// Name is the database URL without its password, for messages.
	Name string
}

// Open connects to the database at url (postgres://user:password@host/db,
// or key=value DSN; a search_path parameter selects the schema) and applies
// pending migrations.
func Open(ctx context.Context, dbURL string) (*DB, error) {
	name := redact(dbURL)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", name, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state database %s: %w", name, err)
	}
	db := &DB{Pool: pool, Name: name}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// Write runs fn in a read-committed transaction and commits it; an error
// from fn rolls it back. A nil return means PostgreSQL acknowledged the
// commit (durable under synchronous_commit=on, the default).
func (db *DB) Write(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("state database %s: starting a write: %w", db.Name, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("state database %s: commit: %w", db.Name, err)
	}
	return nil
}

// redact returns a URL without its password; a DSN that is not a URL is
// named only by its shape, since it may hold a password anywhere.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "(postgres DSN)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.Redacted()
}
