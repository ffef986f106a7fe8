package state

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds statements prepared once on the writer pool.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// registered are the statements OpenDB prepares on the writer, before any
// transaction holds its only connection.
var registered struct {
	mu      sync.Mutex
	queries []string
}

// PrepareOnOpen registers statements that hot write paths run in every
// transaction (the audit append, the trust update); packages call it from
// init. OpenDB prepares them once on the writer connection.
func PrepareOnOpen(queries ...string) {
	registered.mu.Lock()
	defer registered.mu.Unlock()
	registered.queries = append(registered.queries, queries...)
}

// prepareRegistered prepares the registered statements on w; one that
// fails is left to Prepared's fallback.
func (db *DB) prepareRegistered(ctx context.Context) {
	registered.mu.Lock()
	queries := append([]string(nil), registered.queries...)
	registered.mu.Unlock()
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	db.stmts.stmts = map[string]*sql.Stmt{}
	for _, q := range queries {
		if s, err := db.w.PrepareContext(ctx, q); err == nil {
			db.stmts.stmts[q] = s
		}
	}
}

// Prepared returns query bound to tx. A registered statement (PrepareOnOpen)
// was prepared once on the writer, whose pool has one connection, so
// database/sql reuses it in every transaction instead of preparing it
// again: with modernc.org/sqlite, preparing costs about as much as a small
// insert (≈ 9% of a serving process's CPU before this cache). Any other
// query is prepared on tx's connection, for this transaction only
// (preparing on the pool would wait for the connection tx holds).
func (db *DB) Prepared(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	db.stmts.mu.Lock()
	s, ok := db.stmts.stmts[query]
	db.stmts.mu.Unlock()
	if ok {
		return tx.StmtContext(ctx, s), nil
	}
	return tx.PrepareContext(ctx, query)
}

// PreparedTx runs a transaction's statements through Prepared.
type PreparedTx struct {
	db *DB
	tx *sql.Tx
}

// Tx wraps tx so that its statements are prepared once per process.
func (db *DB) Tx(tx *sql.Tx) PreparedTx { return PreparedTx{db: db, tx: tx} }

// ExecContext is tx.ExecContext with a cached statement.
func (p PreparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.db.Prepared(ctx, p.tx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext is tx.QueryRowContext with a cached statement; if the
// statement cannot be prepared, the transaction's own query reports why.
func (p PreparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := p.db.Prepared(ctx, p.tx, query)
	if err != nil {
		return p.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.stmts {
		s.Close()
	}
	c.stmts = nil
}
