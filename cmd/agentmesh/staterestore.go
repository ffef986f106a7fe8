package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

type stateRestoreOptions struct {
	// File is the backup (`agentmesh state backup`).
	File string
	// AcceptRollback is the operator's reason for restoring a backup that
	// is not a consistent extension of the witness or the current log.
	AcceptRollback string
	// DryRun verifies and compares, and changes nothing.
	DryRun bool
	Now    func() time.Time
}

func newStateRestoreCmd(g *globals) *cobra.Command {
	opts := stateRestoreOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "restore FILE [--accept-rollback REASON]",
		Short: "Replace the state database with a verified backup; a rollback only with a reason (audited)",
		Long: `Restore replaces the state database with a backup taken by 'agentmesh state
backup'. It changes nothing unless every check passes:

  - no process has the state database open: stop every serve first (and
    Claude Desktop, which starts them); restore never stops anything itself
  - the backup verifies in full against the identity's keys (a tampered or
    foreign backup is refused)
  - the backup is a consistent extension of the witness (the copy of the
    latest signed checkpoint kept outside the state directory) and of the
    current database's signed checkpoints

A backup older than the witness or the current log is a rollback: every
entry written since it was taken would be gone from the log; one whose tree
differs from theirs is another history (a fork). Restore refuses both,
saying what the witness and the current database hold and what the backup
holds, unless --accept-rollback gives the reason (say why: an incident
number, what was damaged).

Restoring appends a state_restored entry to the restored log (the backup,
the database it replaced, the witness, whether it was a rollback, the reason
and who ran it), moves the witness to the restored log (the witness it
replaces is kept beside it as .replaced-TIME), and keeps the replaced database
in the state directory's retired/ folder. A backup holds no keys: the state
directory's identity must be the one that signed it.

--dry-run verifies the backup and reports what a restore would do (exit 1 if
it would be refused): test your backups with it.`,
		Example: `  agentmesh state restore --dry-run /var/backups/agentmesh/latest.db
  agentmesh state restore /var/backups/agentmesh/latest.db
  agentmesh state restore /var/backups/agentmesh/2026-12-01.db --accept-rollback "INC-4711: disk failure, entries since 12-01 lost"`,
		Args: exactArgs(1, "FILE, a backup taken by `agentmesh state backup`", "agentmesh state restore /var/backups/agentmesh.db"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.File = args[0]
			if c.Flags().Changed("accept-rollback") && strings.TrimSpace(opts.AcceptRollback) == "" {
				return usageError(c, "state restore: --accept-rollback needs a reason: say why losing the entries written since the backup is accepted (it is recorded in the audit log)")
			}
			return stateRestoreRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.AcceptRollback, "accept-rollback", "", "restore even if it rolls the audit log back, for this reason (recorded in the audit log)")
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "verify the backup and say what a restore would do, changing nothing")
	return cmd
}

// restoreReport is `state restore --output json`.
type restoreReport struct {
	Restored bool   `json:"restored"`
	DryRun   bool   `json:"dry_run,omitempty"`
	File     string `json:"file"`
	// Backup is the backup's tree as verified.
	Backup treeView `json:"backup"`
	// Current is what the replaced database held (nil when there was none).
	Current *currentView `json:"current,omitempty"`
	// Witness is the witness the backup was compared with.
	Witness *auditlog.CheckpointView `json:"witness,omitempty"`
	// Rollback: the backup is not a consistent extension of what was
	// signed; Findings say why.
	Rollback bool     `json:"rollback"`
	Findings []string `json:"findings,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	// Refused says why nothing was restored.
	Refused string `json:"refused,omitempty"`
	// Entry is the seq of the state_restored entry; Restored the tree
	// after it.
	Entry     *uint64   `json:"entry,omitempty"`
	After     *treeView `json:"after,omitempty"`
	KeptAs    string    `json:"kept_as,omitempty"`
	Witnessed string    `json:"witness_kept_as,omitempty"`
	// RevivedKeys are API keys revoked in the replaced database that the
	// backup holds as active.
	RevivedKeys []string `json:"revived_api_keys,omitempty"`
}

type treeView struct {
	Entries int64  `json:"entries"`
	Root    string `json:"root"`
	// Signed is when its latest checkpoint was signed.
	Signed time.Time `json:"signed,omitzero"`
}

type currentView struct {
	treeView
	// Unreadable says why the current database could not be read.
	Unreadable string `json:"unreadable,omitempty"`
	// prefixRoot is its stored tree's root at the backup's size.
	prefixRoot string
}

func stateRestoreRun(g *globals, opts stateRestoreOptions) error {
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
		return fmt.Errorf("state restore replaces the state directory's SQLite database, but the state database is PostgreSQL (from %s): restore it with pg_restore, then check it with `agentmesh audit verify` (docs/backup.md)", cfg.Source.DatabaseFrom)
	}
	file, err := filepath.Abs(opts.File)
	if err != nil {
		return err
	}
	if err := state.CheckDatabaseFile(file); err != nil {
		return fmt.Errorf("state restore: %w", err)
	}
	live := d.Join(state.DatabaseFile)
	if fst, err := os.Stat(file); err == nil {
		if lst, err := os.Stat(live); err == nil && os.SameFile(fst, lst) {
			return fmt.Errorf("state restore: %s is the state database itself", file)
		}
	}
	// Before this process opens the database: its own connection would
	// hide the others' (the locks are per process).
	if err := notInUse(d, live); err != nil {
		return err
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		return fmt.Errorf("state restore: %w (a backup holds no keys: restore the state directory's keys/ and identity.json first)", err)
	}
	var id *identity.Identity
	if !opts.DryRun {
		if id, err = identity.Load(d); err != nil {
			return fmt.Errorf("state restore: the restore is recorded in the audit log, signed with the identity key: %w", err)
		}
	}

	// Everything is checked on a private copy, which is also what is
	// installed: the backup file cannot change in between.
	tmp := filepath.Join(d.Path, fmt.Sprintf("%s.restore-%d", state.DatabaseFile, time.Now().UnixNano()))
	if err := state.CopyFile(file, tmp); err != nil {
		return fmt.Errorf("state restore: %w", err)
	}
	installed := false
	defer func() {
		if !installed {
			state.RemoveDatabase(tmp)
		}
	}()
	r := &restoreRun{g: g, cfg: cfg, d: d, doc: doc, opts: opts, rep: restoreReport{File: file, DryRun: opts.DryRun, Reason: opts.AcceptRollback}}
	tdb, err := state.OpenDB(ctx, tmp, cfg.Audit.Synchronous)
	if err != nil {
		return fmt.Errorf("state restore: %s: %w", file, err)
	}
	tdbOpen := true
	defer func() {
		if tdbOpen {
			tdb.Close()
		}
	}()
	if err := r.check(ctx, tdb, live); err != nil {
		return err
	}
	if refused := r.refusal(); refused != "" || opts.DryRun {
		return r.finish(format, refused)
	}

	// Recorded in the restored log before it is installed: a restore
	// never happens unlogged.
	now := opts.Now()
	keptAs := ""
	if _, err := os.Stat(live); err == nil {
		if keptAs, err = state.ReserveRetired(d, now, "replaced-"+state.DatabaseFile); err != nil {
			return fmt.Errorf("state restore: %w", err)
		}
		r.rep.KeptAs = keptAs
	}
	dropReserved := func() {
		if keptAs != "" {
			os.Remove(keptAs)
		}
	}
	if err := r.record(ctx, tdb, id, now); err != nil {
		dropReserved()
		return err
	}
	tdbOpen = false
	if err := tdb.Close(); err != nil {
		dropReserved()
		return fmt.Errorf("state restore: %w", err)
	}

	release, err := state.LockDatabase(live)
	if err != nil {
		dropReserved()
		if errors.Is(err, state.ErrDatabaseInUse) {
			return fmt.Errorf("state restore: %s opened the state database while the backup was checked; nothing was restored: stop it and run again", holder(err))
		}
		return fmt.Errorf("state restore: %w", err)
	}
	defer release()
	if changed := r.changedSinceCheck(live); changed != "" {
		dropReserved()
		return fmt.Errorf("state restore: %s while the backup was checked; nothing was restored: stop every process using the state and run again", changed)
	}
	if err := state.ReplaceDatabase(d, tmp, keptAs); err != nil {
		if keptAs != "" {
			return fmt.Errorf("state restore: %w (the database that was there is kept as %s; the backup is unchanged: run the restore again)", err, keptAs)
		}
		return fmt.Errorf("state restore: %w", err)
	}
	installed = true
	if err := r.rewitness(ctx, now); err != nil {
		return err
	}
	return r.finish(format, "")
}

// notInUse refuses while a process has the state database open, naming
// it, and the serve --http listeners recorded in the state directory.
func notInUse(d *state.Dir, live string) error {
	err := state.CheckDatabaseNotInUse(live)
	if err == nil {
		return nil
	}
	if !errors.Is(err, state.ErrDatabaseInUse) {
		return fmt.Errorf("state restore: %w", err)
	}
	msg := holder(err) + " has the state database open"
	if ls := listenerList(d); ls != "" {
		msg += " (running: " + ls + ")"
	}
	return fmt.Errorf("state restore: %s: stop every `agentmesh serve` using this state directory (and Claude Desktop, which starts them) and run again; nothing was restored", msg)
}

// holder names the process an *state.InUseError reports, with its command
// line where the system shows it.
func holder(err error) string {
	var iu *state.InUseError
	if !errors.As(err, &iu) || iu.PID == 0 {
		return "another process"
	}
	b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", iu.PID))
	if rerr != nil || len(b) == 0 {
		return fmt.Sprintf("process %d", iu.PID)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	args[0] = filepath.Base(args[0])
	return fmt.Sprintf("process %d (%s)", iu.PID, shorten(strings.Join(args, " "), 80))
}

// restoreRun is one restore: what was checked, and what it found.
type restoreRun struct {
	g   *globals
	cfg *config.Config
	d   *state.Dir
	doc *identity.Document
	// id signs the state_restored entry and the verification record.
	id   *identity.Identity
	opts stateRestoreOptions
	rep  restoreReport
	// backup is the log opened on the private copy.
	backup *auditlog.Log
	// witnessErr: the witness could not be read.
	witnessErr error
	// witnessBytes and liveFiles are what the checks saw, compared again
	// under the lock (changedSinceCheck).
	witnessBytes []byte
	liveFiles    string
}

func (r *restoreRun) finish(format ui.Format, refused string) error {
	r.rep.Refused = refused
	if format == ui.JSON {
		if err := ui.WriteJSON(r.g.io.Out, r.rep); err != nil {
			return err
		}
		if refused != "" {
			return silentProblem
		}
		return nil
	}
	if refused != "" {
		return problem{errors.New(refused)}
	}
	r.printText()
	return nil
}

// restoredEntry is the state_restored entry.
func (r *restoreRun) restoredEntry(agent string, now time.Time) audit.Entry {
	det := map[string]any{
		"by":       operator(),
		"backup":   map[string]any{"file": r.rep.File, "size": r.rep.Backup.Entries, "root": r.rep.Backup.Root},
		"rollback": r.rep.Rollback,
	}
	if len(r.rep.Findings) > 0 {
		det["findings"] = r.rep.Findings
	}
	if c := r.rep.Current; c != nil {
		cur := map[string]any{"size": c.Entries, "root": c.Root, "kept_as": r.rep.KeptAs}
		if c.Unreadable != "" {
			cur = map[string]any{"unreadable": c.Unreadable, "kept_as": r.rep.KeptAs}
		}
		det["replaced"] = cur
	}
	if w := r.rep.Witness; w != nil {
		det["witness"] = map[string]any{"size": w.Size, "root": w.Root}
	}
	return audit.Entry{Timestamp: now, Agent: agent, Action: audit.ActionStateRestored, Reason: r.opts.AcceptRollback, Details: details(det)}
}

func (r *restoreRun) printText() {
	out := r.g.io.Out
	b := r.rep.Backup
	if r.opts.DryRun {
		verdict := "would be restored"
		if r.rep.Rollback {
			verdict = "would be restored as an accepted rollback"
		}
		fmt.Fprintf(out, "✓ backup %s verifies: %d entries; it %s\n", r.rep.File, b.Entries, verdict)
	} else {
		fmt.Fprintf(out, "✓ restored %s: %d entries from the backup, then the state_restored entry %d\n", r.rep.File, b.Entries, *r.rep.Entry)
	}
	fmt.Fprintf(out, "  backup      size %d, root %s\n", b.Entries, b.Root)
	if c := r.rep.Current; c != nil {
		if c.Unreadable != "" {
			fmt.Fprintf(out, "  replaced    unreadable: %s\n", c.Unreadable)
		} else {
			fmt.Fprintf(out, "  replaced    size %d, root %s\n", c.Entries, c.Root)
		}
	}
	if r.rep.KeptAs != "" {
		fmt.Fprintf(out, "  kept as     %s\n", r.rep.KeptAs)
	}
	if w := r.rep.Witness; w != nil {
		fmt.Fprintf(out, "  witness     size %d, root %s\n", w.Size, w.Root)
	}
	for _, f := range r.rep.Findings {
		fmt.Fprintf(out, "  rollback    %s\n", f)
	}
	if r.rep.Reason != "" && r.rep.Rollback {
		fmt.Fprintf(out, "  accepted    %s\n", r.rep.Reason)
	}
	if a := r.rep.After; a != nil {
		fmt.Fprintf(out, "  now         size %d, root %s (verified with the witness)\n", a.Entries, a.Root)
	}
	if r.rep.Witnessed != "" {
		fmt.Fprintf(out, "  old witness kept as %s\n", r.rep.Witnessed)
	}
	for _, k := range r.rep.RevivedKeys {
		fmt.Fprintf(r.g.io.Err, "agentmesh: warning: API key %s was revoked after the backup was taken and is active again: run `agentmesh keys revoke %s --reason ...`\n", k, k)
	}
}
