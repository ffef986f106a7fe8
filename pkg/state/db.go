package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go, no cgo)
)

// DB is the state database: one SQLite file in WAL mode shared by every
// agentmesh process using the state directory.
//
// Writers run in BEGIN IMMEDIATE transactions, which take SQLite's write
// lock up front, so two processes never deadlock upgrading a read lock, and
// a busy timeout makes a writer wait for the lock instead of failing with
// "database is locked". Readers use a separate query-only pool and never
// block writers (WAL).
type DB struct {
	Path string
	w    *sql.DB
	r    *sql.DB
	shm  shm
	// stmts are the writer's prepared statements (Prepared).
	stmts stmtCache
}

// Synchronous modes (PRAGMA synchronous) for the audit trade-off: FULL
// fsyncs the WAL on every commit, so a commit that returned is on disk;
// NORMAL fsyncs only at checkpoints, so a power loss (not a process crash)
// may lose the last commits, but never corrupts the database.
const (
	SyncFull   = "full"
	SyncNormal = "normal"
)

// BusyTimeout is how long a writer waits for another process's write lock.
const BusyTimeout = 30_000 // milliseconds

// OpenDB opens (creating with mode 0600 if needed) the database at path and
// applies pending migrations.
func OpenDB(ctx context.Context, path, synchronous string) (*DB, error) {
	if synchronous == "" {
		synchronous = SyncFull
	}
	if synchronous != SyncFull && synchronous != SyncNormal {
		return nil, fmt.Errorf("opening %s: unknown synchronous mode %q (want %q or %q)", path, synchronous, SyncFull, SyncNormal)
	}
	// Create the file ourselves so its mode is 0600 whatever the umask;
	// SQLite gives the -wal and -shm files the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	f.Close()

	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	common := fmt.Sprintf("_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=1", BusyTimeout)
	w, err := sql.Open("sqlite", base+"?"+common+"&_synchronous="+strings.ToUpper(synchronous)+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", base+"?"+common+"&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("opening state database %s: %w", path, err)
	}
	// Writes are serialised by SQLite anyway; one connection per process
	// keeps them in order and makes group commit the only way to batch.
	w.SetMaxOpenConns(1)
	db := &DB{Path: path, w: w, r: r}
	if err := db.setUp(ctx); err != nil {
		db.Close()
		return nil, err
	}
	db.prepareRegistered(ctx)
	return db, nil
}

// setUp opens the first connections and applies pending migrations under
// an exclusive lock on "<db>.open-lock", one process at a time. Turning a
// new database to WAL takes SQLite's exclusive lock without waiting in
// the busy handler (pagerExclusiveLock), so several processes creating a
// state directory at once could otherwise fail with SQLITE_BUSY whatever
// the busy timeout; under the lock no two setups contend.
func (db *DB) setUp(ctx context.Context) error {
	unlock, err := LockFile(db.Path + ".open-lock")
	if err != nil {
		return fmt.Errorf("state database %s: %w", db.Path, err)
	}
	defer unlock()
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("state database %s: opening: %w", db.Path, err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("state database %s: opening: %w", db.Path, err)
	}
	return db.migrate(ctx)
}

// OpenDB opens the state directory's database.
func (d *Dir) OpenDB(ctx context.Context, synchronous string) (*DB, error) {
	return OpenDB(ctx, d.Join(DatabaseFile), synchronous)
}

// Close closes both pools.
func (db *DB) Close() error {
	if db.shm.f != nil {
		db.shm.f.Close()
	}
	db.stmts.close()
	return errors.Join(db.w.Close(), db.r.Close())
}

// Write runs fn in a BEGIN IMMEDIATE transaction and commits it; any error
// from fn rolls it back. A commit that returns nil is durable according to
// the synchronous mode.
func (db *DB) Write(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state database %s: starting a write: %w", db.Path, err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state database %s: commit: %w", db.Path, err)
	}
	return nil
}

// Commit describes a committed write transaction (WriteTracked).
type Commit struct {
	// Token is the database's change token right after the commit.
	Token ChangeToken
	// Solo: no other transaction, of any connection, committed between
	// the start of this one and the reading of Token, so Token names
	// exactly the state this transaction left. A state derived from the
	// transaction may then be cached under Token. False whenever that
	// cannot be shown (the token unreadable, another commit in between, a
	// WAL restart counted with this commit): the cache then misses, never
	// serves a stale state.
	Solo bool
}

// WriteTracked is Write, and says which change token the commit left
// (Commit). The token is read inside the transaction, after BEGIN
// IMMEDIATE took the write lock, so nobody else commits until this
// transaction does; after the commit, exactly one more transaction in the
// WAL-index header's counter (iChange) means it was this one alone.
func (db *DB) WriteTracked(ctx context.Context, fn func(*sql.Tx) error) (Commit, error) {
	var before ChangeToken
	var readBefore bool
	err := db.Write(ctx, func(tx *sql.Tx) error {
		before, readBefore = db.ChangeToken()
		return fn(tx)
	})
	if err != nil {
		return Commit{}, err
	}
	after, readAfter := db.ChangeToken()
	return Commit{Token: after, Solo: readBefore && readAfter && after.transactions() == before.transactions()+1}, nil
}

// Read runs fn in a read-only transaction: a consistent snapshot.
func (db *DB) Read(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("state database %s: starting a read: %w", db.Path, err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// Reader returns the query-only pool for single statements.
func (db *DB) Reader() *sql.DB { return db.r }
