package main

import (
	"context"
	"fmt"
	"iter"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// fleetState is a fleet's PostgreSQL state database (state.database or
// AGENTMESH_DATABASE_URL) opened by a command, with the identity whose log
// it holds. log is set only when the command appends.
type fleetState struct {
	cfg       *config.Config
	doc       *identity.Document
	id        *identity.Identity
	db        *pgstate.DB
	log       *pgaudit.Store
	verifiers note.Verifiers
}

// onPostgres reports whether the configuration keeps shared state in
// PostgreSQL.
func onPostgres(cfg *config.Config) bool { return cfg.Source.Database != "" }

// notOnPostgres is the error of a command that works only on the state
// directory's SQLite database.
func notOnPostgres(cfg *config.Config, what string) error {
	return fmt.Errorf("%s works on the state directory's SQLite database, but the state database is PostgreSQL (from %s); this is not supported yet", what, cfg.Source.DatabaseFrom)
}

// openFleet opens the PostgreSQL state database; write also opens the log
// for appending as the identity (which needs its key).
func openFleet(ctx context.Context, cfg *config.Config, d *state.Dir, write bool) (*fleetState, error) {
	f := &fleetState{cfg: cfg}
	var err error
	if f.doc, err = identity.LoadDocument(d); err != nil {
		return nil, err
	}
	origin, verifiers, err := logKeys(f.doc)
	if err != nil {
		return nil, err
	}
	f.verifiers = verifiers
	if write {
		if f.id, err = identity.Load(d); err != nil {
			return nil, err
		}
	}
	if f.db, err = pgstate.Open(ctx, cfg.Source.Database); err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, cfg.Source.DatabaseFrom)
	}
	if write {
		if f.log, err = pgaudit.Open(ctx, f.db, origin, f.id.Key, pgaudit.Options{Verifiers: f.verifiers}); err != nil {
			f.db.Close()
			return nil, err
		}
	}
	return f, nil
}

// logKeys are the origin line of the identity's audit log and the
// verifiers of every key it ever had (checkpoints signed before a
// rotation stay verifiable).
func logKeys(doc *identity.Document) (origin string, verifiers note.Verifiers, err error) {
	if origin, err = auditlog.Origin(doc); err != nil {
		return "", nil, err
	}
	if verifiers, err = auditlog.Verifiers(doc); err != nil {
		return "", nil, err
	}
	return origin, verifiers, nil
}

// agent is the DID the command records entries as ("" when it only reads).
func (f *fleetState) agent() string {
	if f.id == nil {
		return ""
	}
	return f.id.DID()
}

func (f *fleetState) close() {
	if f.log != nil {
		f.log.Close()
	}
	f.db.Close()
}

// auditSource is the audit log a reading command lists: the state
// directory's (auditlog.Log) or a fleet's in PostgreSQL (pkg/pgaudit).
type auditSource struct {
	origin string
	list   func(ctx context.Context, f auditlog.Filter) ([]auditlog.Stored, error)
	// size is the number of entries under the latest checkpoint.
	size   func(ctx context.Context) (int64, error)
	follow func(ctx context.Context, f auditlog.Filter, interval time.Duration) iter.Seq2[auditlog.Stored, error]
	prove  func(ctx context.Context, seq int64) ([]byte, error)
	close  func()
}

// openAuditSource opens the configured audit log for reading.
func (g *globals) openAuditSource(ctx context.Context) (*auditSource, error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, err
	}
	if !onPostgres(cfg) {
		l, db, err := openAuditReader(ctx, cfg, d)
		if err != nil {
			return nil, err
		}
		return &auditSource{origin: l.Origin(), list: l.List, size: l.Size, follow: l.Follow, prove: l.Prove, close: func() { db.Close() }}, nil
	}
	f, err := openFleet(ctx, cfg, d, false)
	if err != nil {
		return nil, err
	}
	origin, err := auditlog.Origin(f.doc)
	if err != nil {
		f.close()
		return nil, err
	}
	src := &auditSource{origin: origin, close: f.close,
		list: func(ctx context.Context, flt auditlog.Filter) ([]auditlog.Stored, error) {
			return pgaudit.List(ctx, f.db, flt)
		},
		size: func(ctx context.Context) (int64, error) { return pgaudit.Size(ctx, f.db) },
		prove: func(ctx context.Context, seq int64) ([]byte, error) {
			return pgaudit.Prove(ctx, f.db, seq, f.verifiers)
		},
	}
	src.follow = func(ctx context.Context, flt auditlog.Filter, interval time.Duration) iter.Seq2[auditlog.Stored, error] {
		return followByPolling(ctx, src, flt, interval)
	}
	return src, nil
}

// followByPolling yields the entries matching f as they are appended,
// listing what is new every interval until ctx ends.
func followByPolling(ctx context.Context, src *auditSource, f auditlog.Filter, interval time.Duration) iter.Seq2[auditlog.Stored, error] {
	return func(yield func(auditlog.Stored, error) bool) {
		for {
			size, err := src.size(ctx)
			if err == nil && size-1 > f.AfterSeq {
				g := f
				g.Limit, g.Before = 0, size
				var batch []auditlog.Stored
				if batch, err = src.list(ctx, g); err == nil {
					for _, s := range batch {
						if !yield(s, nil) {
							return
						}
					}
					f.AfterSeq = size - 1 // past the entries that did not match too
				}
			}
			if err != nil {
				if ctx.Err() == nil {
					yield(auditlog.Stored{}, err)
				}
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(interval):
			}
		}
	}
}
