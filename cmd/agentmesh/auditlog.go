package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgtrust"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// auditOptions builds the log options the configuration asks for.
func auditOptions(cfg *config.Config, warn func(error)) auditlog.Options {
	opts := auditlog.Options{OnWitnessError: warn}
	if cfg.Audit.Witness && cfg.Source.UserConfigDir != "" {
		opts.WitnessDir = auditlog.WitnessDir(cfg.Source.UserConfigDir)
	}
	return opts
}

// openAuditReader opens the state's audit log for reading and verifying.
func openAuditReader(ctx context.Context, cfg *config.Config, d *state.Dir) (*auditlog.Log, *state.DB, error) {
	return openAuditVerifier(ctx, cfg, d, false)
}

// openAuditVerifier is openAuditReader that, with signRecords, also signs
// the records of verifications with the identity key when this user can
// read it (--incremental starts only from a signed full verification).
func openAuditVerifier(ctx context.Context, cfg *config.Config, d *state.Dir, signRecords bool) (*auditlog.Log, *state.DB, error) {
	doc, err := identity.LoadDocument(d)
	if err != nil {
		return nil, nil, err
	}
	opts := auditOptions(cfg, nil)
	if signRecords {
		if id, err := identity.Load(d); err == nil {
			opts.RecordKey = id.Key
		}
	}
	db, err := d.OpenDB(ctx, cfg.Audit.Synchronous)
	if err != nil {
		return nil, nil, err
	}
	l, err := auditlog.OpenReader(ctx, db, doc, opts)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return l, db, nil
}

// openAudit loads the configuration and opens the state's audit log for
// reading; call the returned function to close it.
func (g *globals) openAudit(ctx context.Context) (*config.Config, *auditlog.Log, *state.DB, error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, nil, nil, err
	}
	l, db, err := openAuditReader(ctx, cfg, d)
	if err != nil {
		return nil, nil, nil, err
	}
	return cfg, l, db, nil
}

// recordLifecycle appends lifecycle events (identity created, key rotated,
// credential issued) to the audit log, signed with id's current key.
func (g *globals) recordLifecycle(ctx context.Context, cfg *config.Config, d *state.Dir, id *identity.Identity, entries ...audit.Entry) error {
	l, done, err := g.openLedger(ctx, cfg, d, id)
	if err != nil {
		return err
	}
	defer done()
	for _, e := range entries {
		if e.Agent == "" {
			e.Agent = id.DID()
		}
		if _, err := l.Append(ctx, e, nil); err != nil {
			return fmt.Errorf("recording %s in the audit log: %w", e.Action, err)
		}
	}
	return nil
}

// openLedger opens the configured audit log for appending as id, with the
// trust store its entries update: the state directory's SQLite database
// or the fleet's PostgreSQL one. id may be a key just rotated in: its
// history verifies the checkpoints signed before.
func (g *globals) openLedger(ctx context.Context, cfg *config.Config, d *state.Dir, id *identity.Identity) (governance.Ledger, func(), error) {
	model := trust.FromConfig(cfg.Trust)
	if onPostgres(cfg) {
		f, err := openFleet(ctx, cfg, d, false)
		if err != nil {
			return nil, nil, err
		}
		origin, verifiers, err := logKeys(&id.Doc)
		if err != nil {
			f.close()
			return nil, nil, err
		}
		l, err := pgaudit.Open(ctx, f.db, origin, id.Key, pgaudit.Options{Verifiers: verifiers})
		if err != nil {
			f.close()
			return nil, nil, err
		}
		return pgtrust.Ledger{Log: l, Store: &pgtrust.Store{DB: f.db, Model: model}}, func() { l.Close(); f.close() }, nil
	}
	db, err := d.OpenDB(ctx, cfg.Audit.Synchronous)
	if err != nil {
		return nil, nil, err
	}
	l, err := auditlog.Open(ctx, db, id, auditOptions(cfg, func(err error) { fmt.Fprintf(g.io.Err, "agentmesh: warning: %v\n", err) }))
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return trust.Ledger{Log: l, Store: &trust.Store{DB: db, Model: model}}, func() { l.Close(); db.Close() }, nil
}

// details encodes lifecycle details.
func details(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with plain maps of strings
	}
	return b
}

func credentialIssuedEntry(c *identity.Credential) audit.Entry {
	return audit.Entry{
		Action: audit.ActionCredentialIssued,
		Details: details(map[string]any{
			"jti": c.Claims.ID, "iss": c.Claims.Issuer, "aud": c.Claims.Audience,
			"exp": c.Claims.ExpiresAt().Format("2006-01-02T15:04:05Z"), "scopes": c.Claims.Scopes,
		}),
	}
}

// auditWriter is the state opened for appending: the identity that signs
// checkpoints, the database and the log.
type auditWriter struct {
	cfg *config.Config
	id  *identity.Identity
	db  *state.DB
	log *auditlog.Log
}

func (w *auditWriter) close() {
	w.log.Close()
	w.db.Close()
}

// openAuditWriter opens the log for appending (trust reset, tools approve).
func (g *globals) openAuditWriter(ctx context.Context) (*auditWriter, error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, err
	}
	if onPostgres(cfg) {
		return nil, notOnPostgres(cfg, "this command")
	}
	id, err := identity.Load(d)
	if err != nil {
		return nil, err
	}
	db, err := d.OpenDB(ctx, cfg.Audit.Synchronous)
	if err != nil {
		return nil, err
	}
	l, err := auditlog.Open(ctx, db, id, auditOptions(cfg, func(err error) { fmt.Fprintf(g.io.Err, "agentmesh: warning: %v\n", err) }))
	if err != nil {
		db.Close()
		return nil, err
	}
	return &auditWriter{cfg: cfg, id: id, db: db, log: l}, nil
}
