package main

import (
	"context"
	"time"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgapikey"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pglimit"
	"github.com/agentmesh/agentmesh/pkg/pgtoolpin"
	"github.com/agentmesh/agentmesh/pkg/pgtrust"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// statusSources are what `status` reads, from the state directory's SQLite
// database or a fleet's PostgreSQL one: the same report from either.
type statusSources struct {
	list        func(ctx context.Context, f auditlog.Filter) ([]auditlog.Stored, error)
	scoreBefore func(ctx context.Context, subject string, t time.Time) (int, bool, error)
	health      func(ctx context.Context) (auditlog.Health, error)
	trust       trustStates
	counter     ratelimit.Counter
	pins        pinStore
	keys        func(ctx context.Context) ([]apikey.Key, error)
	close       func()
}

func openStatusSources(ctx context.Context, cfg *config.Config, d *state.Dir, doc *identity.Document, now func() time.Time) (*statusSources, error) {
	model := trust.FromConfig(cfg.Trust)
	if onPostgres(cfg) {
		f, err := openFleet(ctx, cfg, d, false)
		if err != nil {
			return nil, err
		}
		return &statusSources{
			list: func(ctx context.Context, flt auditlog.Filter) ([]auditlog.Stored, error) {
				return pgaudit.List(ctx, f.db, flt)
			},
			scoreBefore: func(ctx context.Context, subject string, t time.Time) (int, bool, error) {
				return pgaudit.ScoreBefore(ctx, f.db, subject, t)
			},
			health:  func(ctx context.Context) (auditlog.Health, error) { return pgaudit.Health(ctx, f.db, f.verifiers) },
			trust:   &pgtrust.Store{DB: f.db, Model: model, Now: now},
			counter: pglimit.New(f.db),
			pins:    pgtoolpin.Pins{Store: &pgtoolpin.Store{DB: f.db}},
			keys:    (&pgapikey.Store{DB: f.db, Now: now}).List,
			close:   f.close,
		}, nil
	}
	db, err := d.OpenDB(ctx, cfg.Audit.Synchronous)
	if err != nil {
		return nil, err
	}
	l, err := auditlog.OpenReader(ctx, db, doc, auditOptions(cfg, nil))
	if err != nil {
		db.Close()
		return nil, err
	}
	return &statusSources{
		list: l.List, scoreBefore: l.ScoreBefore, health: l.Health,
		trust:   &trust.Store{DB: db, Model: model, Now: now},
		counter: ratelimit.NewSQLite(db),
		pins:    &toolpin.Store{DB: db},
		keys:    (&apikey.Store{DB: db}).List,
		close:   func() { db.Close() },
	}, nil
}
