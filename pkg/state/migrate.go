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
	// Sliding-window rate limits (pkg/ratelimit): one row per admitted call,
	// at most N rows per key for a limit of N.
	{2, "audit_log", `
CREATE TABLE audit_entries (
	seq    INTEGER PRIMARY KEY,   -- leaf index in the RFC 6962 tree, from 0
	entry  BLOB NOT NULL,         -- canonical entry bytes: what the leaf hash covers
	-- Copies of entry fields for queries; audit verify checks they agree.
	ts     TEXT NOT NULL,
	agent  TEXT NOT NULL,
	action TEXT NOT NULL,
	tool   TEXT NOT NULL,
	result TEXT NOT NULL
) STRICT;
CREATE INDEX audit_entries_agent ON audit_entries(agent, seq);
CREATE INDEX audit_entries_tool ON audit_entries(tool, seq);
CREATE INDEX audit_entries_result ON audit_entries(result, seq);
CREATE INDEX audit_entries_ts ON audit_entries(ts);
-- tlog "stored hashes" (golang.org/x/mod/sumdb/tlog.StoredHashIndex).
CREATE TABLE audit_hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
) STRICT;
-- The latest signed checkpoint (C2SP signed note), one row.
CREATE TABLE audit_checkpoint (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL,
	note BLOB NOT NULL
) STRICT;
-- Results of audit verify: the last full verification is where
-- --incremental starts.
CREATE TABLE audit_verifications (
	id     INTEGER PRIMARY KEY,
	at     TEXT NOT NULL,
	mode   TEXT NOT NULL,          -- full | incremental
	size   INTEGER NOT NULL,
	root   BLOB,
	ok     INTEGER NOT NULL,
	detail TEXT NOT NULL
) STRICT;`},
	{3, "rate_limit_calls", `
CREATE TABLE rate_limit_calls (
	policy TEXT NOT NULL,
	rule   TEXT NOT NULL,
	agent  TEXT NOT NULL,
	ts     INTEGER NOT NULL -- Unix nanoseconds
) STRICT;
CREATE INDEX rate_limit_calls_key ON rate_limit_calls(policy, rule, agent, ts);`},
	{4, "trust_state", `
CREATE TABLE trust_state (
	agent TEXT PRIMARY KEY,
	state TEXT NOT NULL   -- JSON of trust.State
) STRICT;`},
	// Every index is written on every append; listing by result filters
	// the agent or tool index instead.
	{5, "audit_drop_result_index", `DROP INDEX audit_entries_result;`},
	// Tool pinning (pkg/toolpin): the approved and the last seen definition
	// of every upstream tool.
	{6, "tool_pins", `
CREATE TABLE tool_pins (
	upstream     TEXT NOT NULL,
	tool         TEXT NOT NULL,  -- the upstream's own name
	exposed      TEXT NOT NULL,  -- the name clients see
	pinned_hash  TEXT,           -- approved definition; NULL: never approved
	pinned_def   BLOB,
	current_hash TEXT NOT NULL,  -- last seen definition; '': removed
	current_def  BLOB,
	findings     TEXT NOT NULL,  -- JSON: poisoning patterns in current_def
	first_seen   TEXT NOT NULL,
	changed_at   TEXT NOT NULL,
	approved_at  TEXT NOT NULL,
	approved_by  TEXT NOT NULL,
	PRIMARY KEY (upstream, tool)
) STRICT;`},
	// Audit integrity (pkg/auditlog): every signed checkpoint is kept, so
	// that verify can locate a rewrite to the commit it changed;
	// verification records are signed; external witnesses' cosignatures
	// and answers are kept; listings filter on the entry bytes through
	// expression indexes instead of on column copies an edit can
	// desynchronise.
	{7, "audit_integrity", `
CREATE TABLE audit_checkpoints (
	size INTEGER PRIMARY KEY,
	note BLOB NOT NULL           -- the signed checkpoint of that tree size
) STRICT;
INSERT INTO audit_checkpoints(size, note) SELECT size, note FROM audit_checkpoint;
ALTER TABLE audit_verifications ADD COLUMN note BLOB;  -- signed record, when the verifier held the identity key
CREATE TABLE audit_witnesses (
	witness TEXT PRIMARY KEY,    -- the witness's verifier key
	url     TEXT NOT NULL,
	size    INTEGER NOT NULL,    -- tree size it last cosigned, 0: none
	note    BLOB,                -- that checkpoint with the cosignature
	state   TEXT NOT NULL,       -- cosigned | behind | unreachable | refused
	detail  TEXT NOT NULL,
	at      TEXT NOT NULL
) STRICT;
DROP INDEX audit_entries_agent;
DROP INDEX audit_entries_tool;
DROP INDEX audit_entries_ts;
-- Lenient (NULL, never an error, for bytes that are not JSON): the index
-- must not stop anyone from writing bytes, only verify judges them.
CREATE INDEX audit_entries_tool_x ON audit_entries(json_extract(CASE WHEN json_valid(CAST(entry AS TEXT)) THEN CAST(entry AS TEXT) END, '$.tool'), seq);
CREATE INDEX audit_entries_time_x ON audit_entries(json_extract(CASE WHEN json_valid(CAST(entry AS TEXT)) THEN CAST(entry AS TEXT) END, '$.timestamp'));
-- Entries that are not JSON at all (normally none): a filtered listing
-- reports them instead of leaving them out.
CREATE INDEX audit_entries_damaged ON audit_entries(seq) WHERE NOT json_valid(CAST(entry AS TEXT));`},
	// (8 is reserved for a change on another branch; versions need not be
	// contiguous, only increasing: each is applied once, in this order.)
	//
	// API keys of service callers (pkg/apikey): only the SHA-256 of each
	// key is stored, never the key.
	{9, "api_keys", `
CREATE TABLE api_keys (
	id             TEXT PRIMARY KEY,  -- public id, also inside the key
	caller         TEXT NOT NULL,     -- caller name: the caller is key:NAME
	hash           BLOB NOT NULL,     -- SHA-256 of the whole key
	scopes         TEXT NOT NULL,     -- JSON array of token scopes
	created        TEXT NOT NULL,     -- RFC 3339, UTC
	expires        TEXT,              -- NULL: never
	revoked_at     TEXT,              -- NULL: active
	revoked_reason TEXT,
	last_used      TEXT               -- updated at most once a minute
) STRICT;
CREATE INDEX api_keys_caller ON api_keys(caller);`},
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
