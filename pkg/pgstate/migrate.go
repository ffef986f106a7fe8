package pgstate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Migration is one step of the schema. Steps are applied in order and
// recorded in schema_migrations; a step, once released, never changes.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations is the schema, oldest first. It mirrors pkg/state's SQLite
// schema for what is stored here so far: the audit log (pkg/pgaudit) and
// the rate-limit counters (pkg/pglimit), trust states (pkg/pgtrust), tool
// pins (pkg/pgtoolpin), API keys (pkg/pgapikey), and the change versions
// replicas follow (pkg/pgnotify).
var Migrations = []Migration{
	{1, "audit_log", `
CREATE TABLE meta (
	key   text PRIMARY KEY,
	value text NOT NULL
);
CREATE TABLE audit_entries (
	seq    bigint PRIMARY KEY CHECK (seq >= 0), -- leaf index in the RFC 6962 tree, from 0
	entry  bytea NOT NULL,                      -- canonical entry bytes: what the leaf hash covers
	leaf   bytea NOT NULL CHECK (length(leaf) = 32), -- RFC 6962 leaf hash of entry
	-- Copies of entry fields for queries, as in SQLite; verify checks they agree.
	ts     text NOT NULL,
	agent  text NOT NULL,
	action text NOT NULL,
	tool   text NOT NULL,
	result text NOT NULL
);
CREATE INDEX audit_entries_tool ON audit_entries(tool, seq);
CREATE INDEX audit_entries_ts ON audit_entries(ts);
-- tlog "stored hashes" (golang.org/x/mod/sumdb/tlog.StoredHashIndex):
-- proofs read them, as with SQLite.
CREATE TABLE audit_hashes (
	idx  bigint PRIMARY KEY,
	hash bytea NOT NULL
);
-- Every signed checkpoint (C2SP signed note), by tree size.
CREATE TABLE audit_checkpoints (
	size bigint PRIMARY KEY,
	note bytea NOT NULL
);
-- The tree as the last writer left it, one row: writers lock it (FOR
-- UPDATE) to append, so appends from every replica are serialised and
-- the next sequence number is size.
CREATE TABLE audit_tree_state (
	id   integer PRIMARY KEY CHECK (id = 1),
	size bigint NOT NULL,
	root bytea NOT NULL,
	note bytea                               -- the checkpoint of size; NULL while empty
);
INSERT INTO audit_tree_state(id, size, root) VALUES (1, 0, decode('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'));`},
	// Exact sliding windows (pkg/pglimit, as SQLite's rate_limit_calls):
	// one row per admitted call, at most Limit rows per key.
	{2, "rate_limits", `
CREATE TABLE rate_limit_calls (
	id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	policy text NOT NULL,
	rule   text NOT NULL,
	agent  text NOT NULL,
	ts     bigint NOT NULL -- Unix nanoseconds
);
CREATE INDEX rate_limit_calls_key ON rate_limit_calls(policy, rule, agent, ts);
CREATE INDEX rate_limit_calls_ts ON rate_limit_calls(ts);`},
	// Live shared state (pkg/pgnotify): a change other replicas must see at
	// once (a trust reset or revocation, a tool approval, a key revocation)
	// bumps its row here in its own transaction and notifies; replicas poll
	// the table too, in case a notification was missed.
	{3, "state_versions", `
CREATE TABLE state_versions (
	kind    text NOT NULL,  -- trust, tool_pin, api_key
	key     text NOT NULL,  -- subject, upstream/tool, key id
	version bigint NOT NULL,
	PRIMARY KEY (kind, key)
);`},
	// Trust states (pkg/pgtrust, as SQLite's trust_state): trust.State as
	// JSON, per subject (the agent, or a caller).
	{4, "trust_state", `
CREATE TABLE trust_state (
	subject text PRIMARY KEY,
	state   jsonb NOT NULL
);`},
	// API keys (pkg/pgapikey, as SQLite's api_keys): only the SHA-256 of a
	// key is stored.
	{5, "api_keys", `
CREATE TABLE api_keys (
	id             text PRIMARY KEY,       -- public id, also inside the key
	caller         text NOT NULL,          -- caller name: the caller is key:NAME
	hash           bytea NOT NULL CHECK (length(hash) = 32),
	scopes         jsonb NOT NULL,         -- array of token scopes
	created        timestamptz NOT NULL,
	expires        timestamptz,            -- NULL: never
	revoked_at     timestamptz,            -- NULL: active
	revoked_reason text,
	last_used      timestamptz,            -- updated at most once a minute
	seq            bigint GENERATED ALWAYS AS IDENTITY -- creation order
);
CREATE INDEX api_keys_caller ON api_keys(caller);`},
	// Tool pins (pkg/pgtoolpin, as SQLite's tool_pins).
	{6, "tool_pins", `
CREATE TABLE tool_pins (
	upstream     text NOT NULL,
	tool         text NOT NULL,   -- the upstream's own name
	exposed      text NOT NULL,   -- the name clients see
	pinned_hash  text,            -- approved definition; NULL: never approved
	pinned_def   bytea,
	current_hash text NOT NULL,   -- last seen definition; '': removed
	current_def  bytea,
	findings     jsonb NOT NULL,  -- poisoning patterns in current_def
	first_seen   timestamptz NOT NULL,
	changed_at   timestamptz NOT NULL,
	approved_at  timestamptz,     -- NULL: never approved
	approved_by  text NOT NULL,
	PRIMARY KEY (upstream, tool)
);`},
	{7, "audit_verifications", `
-- The record of every ` + "`agentmesh audit verify`" + ` run, as in SQLite: status and
-- compliance evidence name the last one, and a failure stays reported
-- until a full verification passes.
CREATE TABLE audit_verifications (
	id     bigserial PRIMARY KEY,
	at     timestamptz NOT NULL,
	mode   text NOT NULL,
	size   bigint NOT NULL,
	root   bytea,
	ok     boolean NOT NULL,
	detail text NOT NULL
);`},
	{8, "audit_verification_notes", `
-- A verification record signed with the identity key (auditlog.RecordBody
-- as a signed note), as SQLite keeps it: compliance evidence accepts only
-- signed records. NULL when the verifier could not read the key.
ALTER TABLE audit_verifications ADD COLUMN note bytea;`},
}

// migrate applies the pending steps in one transaction holding an advisory
// lock keyed by the schema, so concurrent replicas apply each step once and
// tests in separate schemas of one database do not wait for each other.
func (db *DB) migrate(ctx context.Context) error {
	err := db.Write(ctx, func(tx pgx.Tx) error {
		// current_schema() is NULL when no schema of search_path exists;
		// the lock must still be taken (a NULL argument would skip it).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('agentmesh.schema'), hashtext(coalesce(current_schema(), '')))`); err != nil {
			return fmt.Errorf("locking the schema: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("creating the migrations table: %w", err)
		}
		var newest int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
			return fmt.Errorf("reading the schema version: %w", err)
		}
		if latest := Migrations[len(Migrations)-1].Version; newest > latest {
			return fmt.Errorf("schema version %d is newer than this agentmesh understands (%d): upgrade agentmesh", newest, latest)
		}
		for _, m := range Migrations {
			if m.Version <= newest {
				continue
			}
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations(version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state database %s: %w", db.Name, err)
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.Pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
