package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

func newStateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Back up, restore or move the state database (to PostgreSQL, for a fleet)",
		Long: `The state directory's SQLite database holds the audit log, trust state,
rate-limit windows, tool pins and API keys. 'state backup' copies it while
serve runs and 'state restore' puts a copy back (docs/backup.md). A fleet of
serve --http replicas shares them in PostgreSQL instead (docs/postgres.md).`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newStateMigrateCmd(g), newStateBackupCmd(g), newStateRestoreCmd(g))
	return cmd
}

type stateMigrateOptions struct {
	// To is the PostgreSQL URL (postgres://USER:PASSWORD@HOST/DB).
	To string
	// PageSize is how many entries are read and appended at a time.
	PageSize int
	// NoWitness accepts a log without a witness, as `audit verify
	// --no-witness` does (a log copied from another machine).
	NoWitness bool
}

func newStateMigrateCmd(g *globals) *cobra.Command {
	opts := stateMigrateOptions{PageSize: 5000}
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://...",
		Short: "Copy the audit log into PostgreSQL, verified before and after",
		Long: `Migrate copies this state directory's audit log into an empty PostgreSQL
state database: it verifies the SQLite log in full first (a log that does
not verify is not copied), appends every entry with its own bytes in order
(same seqs, same leaves, checkpoints signed by this identity under the same
origin), then verifies the copy and compares its root with the original's:
'agentmesh audit verify --database URL' then reports the same root and size.
Trust states, rate-limit windows, API keys (their hashes) and tool pins
follow in one transaction.

The PostgreSQL URL may also come from AGENTMESH_DATABASE_URL. A database
that already holds audit entries is refused. Stop serve processes first:
what they write meanwhile is not copied.`,
		Example: `  agentmesh state migrate --to postgres://agentmesh:secret@db.internal/agentmesh
  AGENTMESH_DATABASE_URL=postgres://... agentmesh state migrate`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.To == "" {
				opts.To = os.Getenv("AGENTMESH_DATABASE_URL")
			}
			if opts.To == "" {
				return usageError(c, "state migrate: --to postgres://... (or AGENTMESH_DATABASE_URL) is required")
			}
			if opts.PageSize <= 0 {
				return usageError(c, "state migrate: --page-size must be positive")
			}
			return stateMigrateRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.To, "to", "", "the PostgreSQL state database, postgres://USER:PASSWORD@HOST[:PORT]/DB (default $AGENTMESH_DATABASE_URL)")
	cmd.Flags().IntVar(&opts.PageSize, "page-size", opts.PageSize, "entries read and appended at a time")
	cmd.Flags().BoolVar(&opts.NoWitness, "no-witness", false, "accept a log without a witness (copied from another machine), as audit verify --no-witness does")
	return cmd
}

// migrateReport is `state migrate --output json`.
type migrateReport struct {
	Entries int64  `json:"entries"`
	Root    string `json:"root"`
	To      string `json:"to"`
	// Copied is the rest of the shared state.
	Copied stateCopied `json:"copied"`
}

func stateMigrateRun(g *globals, opts stateMigrateOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	l, db, err := openAuditReader(ctx, cfg, d)
	if err != nil {
		return err
	}
	defer db.Close()
	// Only a log that verifies is copied: the copy must not launder a
	// tampered one into a fresh database.
	rep, err := l.Verify(ctx, auditlog.VerifyOptions{NoWitness: opts.NoWitness})
	if err != nil {
		return problemf("state migrate: the SQLite audit log does not verify, so it is not copied: %v (run `agentmesh audit verify`)", err)
	}
	origin, verifiers, err := logKeys(&id.Doc)
	if err != nil {
		return err
	}
	pg, err := pgstate.Open(ctx, opts.To)
	if err != nil {
		return err
	}
	defer pg.Close()
	store, err := pgaudit.Open(ctx, pg, origin, id.Key, pgaudit.Options{Verifiers: verifiers})
	if err != nil {
		return fmt.Errorf("state migrate: %w", err)
	}
	defer store.Close()
	if cp, err := pgaudit.Verify(ctx, pg, verifiers); err != nil {
		return fmt.Errorf("state migrate: the PostgreSQL audit log does not verify: %w", err)
	} else if cp.Size != 0 {
		return fmt.Errorf("state migrate: %s already holds %d audit entries: migrate into an empty database", pg.Name, cp.Size)
	}
	size := rep.Size
	for after := int64(-1); after < size-1; {
		before := min(after+1+int64(opts.PageSize), size)
		page, err := l.List(ctx, auditlog.Filter{AfterSeq: after, Before: before})
		if err != nil {
			return err
		}
		if int64(len(page)) != before-after-1 {
			return fmt.Errorf("state migrate: read %d entries of seqs %d..%d", len(page), after+1, before-1)
		}
		entries := make([]audit.Entry, len(page))
		for i, s := range page {
			entries[i] = s.Entry
		}
		got, err := store.AppendMany(ctx, entries)
		if err != nil {
			return fmt.Errorf("state migrate: appending seqs %d..%d: %w", after+1, before-1, err)
		}
		for i, e := range got {
			if e.Seq != page[i].Entry.Seq {
				return fmt.Errorf("state migrate: entry %d was stored as %d: another writer appended to %s meanwhile", page[i].Entry.Seq, e.Seq, pg.Name)
			}
		}
		after = before - 1
	}
	cp, err := pgaudit.Verify(ctx, pg, verifiers)
	if err != nil {
		return fmt.Errorf("state migrate: the copy does not verify: %w", err)
	}
	if cp.Size != size || cp.Root.String() != rep.Root {
		return problemf("state migrate: the copy's tree (%d entries, root %s) is not the original's (%d, %s)", cp.Size, cp.Root, size, rep.Root)
	}
	copied, err := copySharedState(ctx, db, pg)
	if err != nil {
		return fmt.Errorf("state migrate: the audit log was copied, but the shared state was not (none of it is in %s): %w; empty the database (or use a new one) and run state migrate again", pg.Name, err)
	}
	out := migrateReport{Entries: cp.Size, Root: cp.Root.String(), To: pg.Name, Copied: copied}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, out)
	}
	g.io.Success("copied %d audit entries to %s; the copy verifies with the original's root %s", out.Entries, out.To, out.Root)
	g.io.Success("copied %d trust states, %d rate-limit window entries, %d API keys and %d tool pins", copied.TrustStates, copied.RateLimits, copied.APIKeys, copied.ToolPins)
	return nil
}

// verifyPostgresRun is `audit verify --database URL`: the PostgreSQL log
// of a fleet, checked in one snapshot (pgaudit.Verify).
func verifyPostgresRun(g *globals, url string, format ui.Format) error {
	ctx := context.Background()
	_, d, err := g.openState()
	if err != nil {
		return err
	}
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	origin, verifiers, err := logKeys(&id.Doc)
	if err != nil {
		return err
	}
	// The record of this run is signed, as on SQLite: compliance evidence
	// accepts only signed records.
	signer, err := audit.NewSigner(origin, id.Key)
	if err != nil {
		return err
	}
	pg, err := pgstate.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pg.Close()
	cp, verr := pgaudit.Verify(ctx, pg, verifiers)
	if err := pgaudit.RecordVerification(ctx, pg, origin, time.Now(), cp, verr, signer); err != nil {
		fmt.Fprintf(g.io.Err, "agentmesh: warning: %v\n", err)
	}
	if format == ui.JSON {
		out := struct {
			OK       bool   `json:"ok"`
			Size     int64  `json:"size"`
			Root     string `json:"root"`
			Database string `json:"database"`
			Reason   string `json:"reason,omitempty"`
		}{OK: verr == nil, Size: cp.Size, Root: cp.Root.String(), Database: pg.Name}
		if verr != nil {
			out.Reason = verr.Error()
		}
		if err := ui.WriteJSON(g.io.Out, out); err != nil {
			return err
		}
		if verr != nil {
			return silentProblem
		}
		return nil
	}
	if verr != nil {
		return problemf("audit verify: the PostgreSQL audit log in %s FAILED: %v", pg.Name, verr)
	}
	g.io.Success("audit log verified (PostgreSQL %s): %d entries", pg.Name, cp.Size)
	fmt.Fprintf(g.io.Out, "  root        %s\n", cp.Root)
	return nil
}
