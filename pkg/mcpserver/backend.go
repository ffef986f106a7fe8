package mcpserver

import (
	"context"
	"database/sql"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/proxy"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// backend is where a running server keeps what it shares with every other
// process of its identity: the state directory's SQLite database
// (sqliteBackend), or a fleet's PostgreSQL database (pgBackend, with
// state.database). Everything the server records or counts goes through
// it, so that one server's behaviour does not depend on which it is.
type backend interface {
	// ledger records calls with their trust events (governance.Ledger).
	ledger() governance.Ledger
	// append records an entry that changes no trust state.
	append(ctx context.Context, e audit.Entry) (audit.Entry, error)
	// recordPolicy appends a policy_loaded entry and, in its transaction,
	// remembers fingerprint as the policy in force ("" keeps the last).
	recordPolicy(ctx context.Context, e audit.Entry, fingerprint string) error
	// lastPolicy is the fingerprint recordPolicy last stored.
	lastPolicy(ctx context.Context) string
	// counter keeps the rate-limit windows.
	counter() ratelimit.Counter
	// pins keeps the upstreams' tool pins, recording changes as agent.
	pins(agent string) proxy.Pins
	// keyLookup resolves API keys; closeKeys waits for its writes.
	keyLookup() (lookup func(context.Context, string) (*caller.Caller, error), closeKeys func())
	// ping checks that the database answers.
	ping(ctx context.Context) error
	// failure is why the audit log refuses appends, or nil.
	failure() error
	// close closes the log and the database.
	close()
}

// sqliteBackend is the state directory's database.
type sqliteBackend struct {
	rt *Runtime
}

func (b sqliteBackend) ledger() governance.Ledger {
	return trust.Ledger{Log: b.rt.Log, Store: b.rt.Trust}
}

func (b sqliteBackend) append(ctx context.Context, e audit.Entry) (audit.Entry, error) {
	return b.rt.Log.Append(ctx, e, nil)
}

func (b sqliteBackend) recordPolicy(ctx context.Context, e audit.Entry, fingerprint string) error {
	_, err := b.rt.Log.Append(ctx, e, func(ctx context.Context, tx *sql.Tx, _ *audit.Entry) ([]audit.Entry, error) {
		if fingerprint == "" {
			return nil, nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES ('policy.loaded', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, fingerprint)
		return nil, err
	})
	return err
}

func (b sqliteBackend) lastPolicy(ctx context.Context) string {
	var last string
	if err := b.rt.DB.Reader().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'policy.loaded'`).Scan(&last); err != nil {
		return ""
	}
	return last
}

func (b sqliteBackend) counter() ratelimit.Counter { return ratelimit.NewSQLite(b.rt.DB) }

func (b sqliteBackend) pins(agent string) proxy.Pins {
	return &toolpin.Store{DB: b.rt.DB, Log: b.rt.Log, Agent: agent, Now: b.rt.opts.Now}
}

func (b sqliteBackend) keyLookup() (func(context.Context, string) (*caller.Caller, error), func()) {
	keys := &apikey.Store{DB: b.rt.DB, Cache: apikey.NewCache()}
	return keys.Lookup, func() { keys.Close() }
}

func (b sqliteBackend) ping(ctx context.Context) error {
	return b.rt.DB.Read(ctx, func(tx *sql.Tx) error {
		var one int
		return tx.QueryRowContext(ctx, "SELECT 1").Scan(&one)
	})
}

func (b sqliteBackend) failure() error { return b.rt.Log.Failure() }

func (b sqliteBackend) close() {
	if b.rt.Log != nil {
		b.rt.Log.Close()
	}
	if b.rt.DB != nil {
		b.rt.DB.Close()
	}
}
