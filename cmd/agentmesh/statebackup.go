package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

type stateBackupOptions struct {
	// File is where the backup goes.
	File string
	// Force replaces an existing File.
	Force bool
}

func newStateBackupCmd(g *globals) *cobra.Command {
	opts := stateBackupOptions{}
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Copy the state database while serve runs, and verify the copy",
		Long: `Backup writes a consistent copy of the state database to FILE while serve
processes keep running: SQLite's VACUUM INTO reads the database as of one
commit without stopping any writer. The copy is then verified in full on its
own, as 'agentmesh audit verify' does (every entry, the Merkle root, the
signed checkpoints), checked to extend the witness, and compared with the live
log: the live log's tree at the copy's size must have the copy's root. Only
then is it renamed to FILE (mode 0600), so FILE is never a copy that did not
verify. The copy's size and root are printed: keep them with the backup.

FILE holds the whole state database: the audit log, trust states, rate-limit
windows, tool pins and API keys (their hashes). It holds no private key: the
identity (the state directory's keys/ and identity.json) is needed to restore
and to keep signing the same log; back it up separately, once after
'agentmesh init' and after every 'agentmesh identity rotate' (docs/backup.md).

An existing FILE is replaced only with --force. With a PostgreSQL state
database, use pg_dump instead (docs/backup.md).`,
		Example: `  agentmesh state backup /var/backups/agentmesh/agentmesh-$(date +%F).db
  agentmesh state backup --force /var/backups/agentmesh/latest.db --output json
  agentmesh state restore --dry-run /var/backups/agentmesh/latest.db   # check a backup`,
		Args: exactArgs(1, "FILE, where the backup goes", "agentmesh state backup /var/backups/agentmesh.db"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			return stateBackupRun(g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "replace FILE if it exists")
	return cmd
}

// backupReport is `state backup --output json`.
type backupReport struct {
	File    string `json:"file"`
	Bytes   int64  `json:"bytes"`
	Entries int64  `json:"entries"`
	Root    string `json:"root"`
	// Checkpoint is the copy's latest signed checkpoint.
	Checkpoint *auditlog.CheckpointView `json:"checkpoint,omitempty"`
	// Witness is the witness the copy was checked to extend.
	Witness *auditlog.CheckpointView `json:"witness,omitempty"`
	// CopyDuration is VACUUM INTO; VerifyDuration the copy's verification.
	CopyDuration   time.Duration `json:"copy_ns"`
	VerifyDuration time.Duration `json:"verify_ns"`
}

func stateBackupRun(g *globals, opts stateBackupOptions) error {
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
	if onPostgres(cfg) {
		return fmt.Errorf("state backup copies the state directory's SQLite database, but the state database is PostgreSQL (from %s): back it up with pg_dump (docs/backup.md)", cfg.Source.DatabaseFrom)
	}
	file, err := filepath.Abs(opts.File)
	if err != nil {
		return err
	}
	live := d.Join(state.DatabaseFile)
	if err := backupTarget(file, live, opts.Force); err != nil {
		return err
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		return err
	}
	l, db, err := openAuditReader(ctx, cfg, d)
	if err != nil {
		return err
	}
	defer db.Close()
	// The witness is read before the copy is taken: it is written after
	// its commits, so the copy can only be as long or longer.
	witness, err := l.WitnessCheckpoint()
	if err != nil {
		return problemf("state backup: %v: no backup was written (run `agentmesh audit verify`)", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return fmt.Errorf("state backup: %w", err)
	}
	tmpPath := tmp.Name()
	defer os.Remove(tmpPath) // no-op once it is FILE
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state backup: %w", err)
	}
	tmp.Close()
	start := time.Now()
	if err := db.SnapshotTo(ctx, tmpPath); err != nil {
		return fmt.Errorf("state backup: %w", err)
	}
	rep := backupReport{File: file, CopyDuration: time.Since(start)}

	vrep, err := verifyBackupCopy(ctx, tmpPath, doc, l, witness)
	if err != nil {
		return err
	}
	rep.Entries, rep.Root, rep.Checkpoint, rep.VerifyDuration = vrep.Size, vrep.Root, vrep.Checkpoint, vrep.Duration
	if witness != nil {
		rep.Witness = &auditlog.CheckpointView{Size: witness.Size, Root: witness.Root.String(), Time: witness.Time, Origin: witness.Origin}
	}
	if err := installBackup(tmpPath, file, opts.Force); err != nil {
		return err
	}
	if st, err := os.Stat(file); err == nil {
		rep.Bytes = st.Size()
	}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, rep)
	}
	// The report is the command's output (as audit verify's): stdout.
	fmt.Fprintf(g.io.Out, "✓ backup written to %s (%s): %d audit entries, verified\n", rep.File, byteSize(rep.Bytes), rep.Entries)
	fmt.Fprintf(g.io.Out, "  root        %s\n", rep.Root)
	if rep.Checkpoint != nil {
		fmt.Fprintf(g.io.Out, "  checkpoint  size %d, signed %s\n", rep.Checkpoint.Size, rep.Checkpoint.Time.Format(time.RFC3339))
	}
	if rep.Witness != nil {
		fmt.Fprintf(g.io.Out, "  witness     size %d: the copy extends it\n", rep.Witness.Size)
	}
	fmt.Fprintf(g.io.Out, "  took        %s to copy, %s to verify\n", rep.CopyDuration.Round(time.Millisecond), rep.VerifyDuration.Round(time.Millisecond))
	fmt.Fprintf(g.io.Out, "  not in it   the identity's keys (%s, %s): back them up separately\n", d.Join(state.KeysDir), d.Join(state.IdentityDoc))
	return nil
}

// backupTarget refuses a FILE that would overwrite something it should
// not: the state database itself, a directory, or (without --force) any
// existing file.
func backupTarget(file, live string, force bool) error {
	st, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(filepath.Dir(file)); err != nil {
			return fmt.Errorf("state backup: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("state backup: %w", err)
	case st.IsDir():
		return fmt.Errorf("state backup: %s is a directory: name the backup file, e.g. %s", file, filepath.Join(file, "agentmesh.db"))
	}
	if lst, err := os.Stat(live); err == nil && os.SameFile(st, lst) {
		return fmt.Errorf("state backup: %s is the state database itself", file)
	}
	if !force {
		return fmt.Errorf("state backup: %s exists: pass --force to replace it", file)
	}
	return nil
}

// verifyBackupCopy verifies the copy at path in full on its own signed
// checkpoints, checks that it extends the witness read before it was taken,
// and that the live log l's stored tree at the copy's size has the copy's
// root.
func verifyBackupCopy(ctx context.Context, path string, doc *identity.Document, l *auditlog.Log, witness *audit.Checkpoint) (auditlog.Report, error) {
	cdb, err := state.OpenSnapshot(ctx, path)
	if err != nil {
		return auditlog.Report{}, fmt.Errorf("state backup: the copy: %w", err)
	}
	defer cdb.Close()
	cl, err := auditlog.OpenReader(ctx, cdb, doc, auditlog.Options{})
	if err != nil {
		return auditlog.Report{}, fmt.Errorf("state backup: the copy: %w", err)
	}
	rep, err := cl.VerifyCopy(ctx)
	if err != nil {
		return rep, problemf("state backup: the copy does not verify, so no backup was written: %s (run `agentmesh audit verify`)", problemText(rep, err))
	}
	if witness != nil {
		rel, err := cl.Relate(ctx, *witness)
		if err != nil {
			return rep, fmt.Errorf("state backup: comparing the copy with the witness: %w", err)
		}
		if rel != auditlog.Extends {
			return rep, problemf("state backup: the log (%d entries, root %s) is not a consistent extension of its witness (tree size %d, root %s): %s; no backup was written (run `agentmesh audit verify`)",
				rep.Size, rep.Root, witness.Size, witness.Root, rel)
		}
	}
	root, err := l.RootAt(ctx, rep.Size)
	if err != nil {
		return rep, problemf("state backup: the live log's tree at the copy's size %d: %v", rep.Size, err)
	}
	if root.String() != rep.Root {
		return rep, problemf("state backup: the copy's root at size %d is %s, but the live log's is %s: no backup was written (run `agentmesh audit verify`)", rep.Size, rep.Root, root)
	}
	return rep, nil
}

// installBackup moves the verified copy to file: without force, by a hard
// link, which fails rather than replace a file that appeared meanwhile.
func installBackup(tmp, file string, force bool) error {
	if force {
		if err := os.Rename(tmp, file); err != nil {
			return fmt.Errorf("state backup: %w", err)
		}
	} else {
		if err := os.Link(tmp, file); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("state backup: %s appeared meanwhile: pass --force to replace it", file)
			}
			// No hard links on this file system: rename, unless FILE
			// appeared meanwhile.
			if _, serr := os.Lstat(file); !errors.Is(serr, fs.ErrNotExist) {
				return fmt.Errorf("state backup: installing %s: %w", file, err)
			}
			if err := os.Rename(tmp, file); err != nil {
				return fmt.Errorf("state backup: %w", err)
			}
		}
		os.Remove(tmp)
	}
	if dir, err := os.Open(filepath.Dir(file)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// problemText is a verification failure as audit verify words it.
func problemText(rep auditlog.Report, err error) string {
	if p := rep.Problem; p != nil {
		if p.Seq >= 0 {
			return fmt.Sprintf("at seq %d: %s: %s", p.Seq, p.Kind, p.Detail)
		}
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return err.Error()
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
