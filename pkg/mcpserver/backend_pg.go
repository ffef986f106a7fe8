package mcpserver

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/pgapikey"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pglimit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgtoolpin"
	"github.com/agentmesh/agentmesh/pkg/pgtrust"
	"github.com/agentmesh/agentmesh/pkg/proxy"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// pgBackend is a fleet's PostgreSQL state database (state.database): every
// replica appends to one log (pkg/pgaudit serialises them), and reads
// trust states, API keys and tool approvals from the database on every
// call, so a reset, revocation or approval made anywhere applies to the
// next call on every replica.
type pgBackend struct {
	rt    *Runtime
	db    *pgstate.DB
	log   *pgaudit.Store
	trust *pgtrust.Store
}

// openPostgres connects to the fleet's database, migrates it, and opens
// the log for appending as this identity (its key history verifies the
// checkpoints other replicas signed).
func (rt *Runtime) openPostgres(ctx context.Context) (*pgBackend, error) {
	cfg := rt.Cfg
	if cfg.Audit.BatchWindow > 0 {
		return nil, fmt.Errorf("audit.batch_window is set, but the state database is PostgreSQL (%s), which does not offer batched durability (group commit already batches concurrent calls); remove audit.batch_window", cfg.Source.DatabaseFrom)
	}
	origin, err := auditlog.Origin(&rt.ID.Doc)
	if err != nil {
		return nil, err
	}
	verifiers, err := auditlog.Verifiers(&rt.ID.Doc)
	if err != nil {
		return nil, err
	}
	db, err := pgstate.Open(ctx, cfg.Source.Database)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, cfg.Source.DatabaseFrom)
	}
	log, err := pgaudit.Open(ctx, db, origin, rt.ID.Key, pgaudit.Options{Now: rt.opts.Now, Verifiers: verifiers, Metrics: rt.Metrics})
	if err != nil {
		db.Close()
		return nil, err
	}
	rt.Metrics.Watch(metrics.Gauges{AuditQueueDepth: func() float64 { return float64(log.QueueDepth()) }})
	return &pgBackend{rt: rt, db: db, log: log,
		trust: &pgtrust.Store{DB: db, Model: trust.FromConfig(cfg.Trust), Now: rt.opts.Now, Metrics: rt.Metrics}}, nil
}

func (b *pgBackend) ledger() governance.Ledger { return pgtrust.Ledger{Log: b.log, Store: b.trust} }

func (b *pgBackend) append(ctx context.Context, e audit.Entry) (audit.Entry, error) {
	return b.log.Append(ctx, e, nil)
}

func (b *pgBackend) recordPolicy(ctx context.Context, e audit.Entry, fingerprint string) error {
	_, err := b.log.Append(ctx, e, func(ctx context.Context, tx pgx.Tx, _ *audit.Entry) ([]audit.Entry, error) {
		if fingerprint == "" {
			return nil, nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO meta(key, value) VALUES ('policy.loaded', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fingerprint)
		return nil, err
	})
	return err
}

func (b *pgBackend) lastPolicy(ctx context.Context) string {
	var last string
	if err := b.db.Pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'policy.loaded'`).Scan(&last); err != nil {
		return ""
	}
	return last
}

func (b *pgBackend) counter() ratelimit.Counter { return pglimit.New(b.db) }

func (b *pgBackend) pins(agent string) proxy.Pins {
	return pgtoolpin.Pins{Store: &pgtoolpin.Store{DB: b.db, Now: b.rt.opts.Now}, Log: b.log, Agent: agent}
}

func (b *pgBackend) keyLookup() (func(context.Context, string) (*caller.Caller, error), func()) {
	keys := &pgapikey.Store{DB: b.db, Now: b.rt.opts.Now}
	return keys.Lookup, keys.Close
}

func (b *pgBackend) ping(ctx context.Context) error {
	var one int
	if err := b.db.Pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("state database %s: %w", b.db.Name, err)
	}
	return nil
}

func (b *pgBackend) failure() error {
	return b.log.Failure()
}

func (b *pgBackend) close() {
	b.log.Close()
	b.db.Close()
}

// DatabaseName is the PostgreSQL state database without its password, or
// "" when state is in the state directory's SQLite database.
func (rt *Runtime) DatabaseName() string {
	if b, ok := rt.store.(*pgBackend); ok {
		return b.db.Name
	}
	return ""
}
