package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// check verifies the private copy of the backup (tdb) in full and compares
// it with the witness and with the current database at live: a backup that
// is not a consistent extension of either is a rollback (or a fork), and
// each reason is a finding.
func (r *restoreRun) check(ctx context.Context, tdb *state.DB, live string) error {
	want, err := auditlog.Origin(r.doc)
	if err != nil {
		return err
	}
	var got string
	tdb.Reader().QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'audit.origin'`).Scan(&got)
	if got != "" && got != want {
		return problemf("state restore: the backup %s is the audit log of %s, but this state directory's identity signs %s: restore it where that identity's keys are", r.rep.File, got, want)
	}
	bl, err := auditlog.OpenReader(ctx, tdb, r.doc, auditOptions(r.cfg, nil))
	if err != nil {
		return problemf("state restore: the backup %s cannot be restored with this identity: %v", r.rep.File, err)
	}
	r.backup = bl
	vrep, err := bl.VerifyCopy(ctx)
	if err != nil {
		return problemf("state restore: the backup %s does not verify, so nothing was restored: %s", r.rep.File, problemText(vrep, err))
	}
	r.rep.Backup = treeView{Entries: vrep.Size, Root: vrep.Root}
	if vrep.Checkpoint != nil {
		r.rep.Backup.Signed = vrep.Checkpoint.Time
	}

	if path := bl.WitnessPath(); path != "" {
		r.witnessBytes, _ = os.ReadFile(path)
		w, err := bl.WitnessCheckpoint()
		switch {
		case err != nil:
			r.witnessErr = err
			r.finding("the witness cannot be read, so the backup cannot be shown to extend it: %v", err)
		case w != nil:
			r.rep.Witness = checkpointView(*w)
			if err := r.compare(ctx, "the witness "+path, *w); err != nil {
				return err
			}
		}
	}

	if st, err := os.Stat(live); err == nil && st.Size() > 0 {
		cur, cps, revoked := r.readCurrent(ctx, live)
		r.rep.Current = cur
		if cur.Unreadable != "" {
			// Whether the backup rolls it back cannot be told: the
			// operator decides, and says why.
			r.finding("the current database cannot be read, so whether the backup rolls it back cannot be told: %s", cur.Unreadable)
		}
		for _, c := range cps {
			if err := r.compare(ctx, c.name, c.cp); err != nil {
				return err
			}
		}
		if cur.Unreadable == "" && cur.Entries >= r.rep.Backup.Entries && r.rep.Rollback && cur.prefixRoot != "" && cur.prefixRoot != r.rep.Backup.Root {
			r.finding("the current log's tree at the backup's size %d has root %s, not the backup's: the backup is not an older state of this log but another history", r.rep.Backup.Entries, cur.prefixRoot)
		}
		if r.rep.RevivedKeys, err = revivedKeys(ctx, tdb, revoked); err != nil {
			return fmt.Errorf("state restore: comparing API keys: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state restore: %w", err)
	}
	r.liveFiles = fingerprint(live)
	return nil
}

// namedCheckpoint is a signed checkpoint the backup must extend, and
// where it was found.
type namedCheckpoint struct {
	name string
	cp   audit.Checkpoint
}

// readCurrent reads what the current database signed (its latest
// checkpoint and the largest of its checkpoint history), the root of its
// stored tree at the backup's size, and its revoked API keys. A database
// that cannot be read is reported as such: the comparison then rests on
// the witness.
func (r *restoreRun) readCurrent(ctx context.Context, live string) (cur *currentView, cps []namedCheckpoint, revoked []string) {
	cur = &currentView{}
	db, err := state.OpenDB(ctx, live, r.cfg.Audit.Synchronous)
	if err != nil {
		cur.Unreadable = err.Error()
		return cur, nil, nil
	}
	defer db.Close()
	l, err := auditlog.OpenReader(ctx, db, r.doc, auditlog.Options{})
	if err != nil {
		cur.Unreadable = err.Error()
		return cur, nil, nil
	}
	h, err := l.Head(ctx)
	if err != nil {
		cur.Unreadable = err.Error()
		return cur, nil, nil
	}
	cur.Entries = h.Size
	if h.Checkpoint != nil {
		cur.Root, cur.Signed = h.Checkpoint.Root.String(), h.Checkpoint.Time
		cps = append(cps, namedCheckpoint{"the current database's latest checkpoint", *h.Checkpoint})
	}
	if h.History != nil {
		cps = append(cps, namedCheckpoint{"the current database's checkpoint history", *h.History})
	}
	if n := r.rep.Backup.Entries; h.Size >= n {
		if root, err := l.RootAt(ctx, n); err == nil {
			cur.prefixRoot = root.String()
		}
	}
	rows, err := db.Reader().QueryContext(ctx, `SELECT id FROM api_keys WHERE revoked_at IS NOT NULL`)
	if err == nil {
		for rows.Next() {
			var id string
			if rows.Scan(&id) == nil {
				revoked = append(revoked, id)
			}
		}
		rows.Close()
	}
	return cur, cps, revoked
}

// compare adds a finding unless the backup is a consistent extension of
// cp (found at name).
func (r *restoreRun) compare(ctx context.Context, name string, cp audit.Checkpoint) error {
	rel, err := r.backup.Relate(ctx, cp)
	if err != nil {
		return fmt.Errorf("state restore: comparing the backup with %s: %w", name, err)
	}
	b := r.rep.Backup
	switch rel {
	case auditlog.Shorter:
		r.finding("%s holds tree size %d (root %s%s), but the backup has %d entries: %s would be gone from the log",
			name, cp.Size, cp.Root, signedText(cp.Time), b.Entries, seqRange(b.Entries, cp.Size))
	case auditlog.Forked:
		r.finding("%s holds tree size %d with root %s%s, but the backup's tree at that size has another root: the backup is another history (a fork)",
			name, cp.Size, cp.Root, signedText(cp.Time))
	}
	return nil
}

func (r *restoreRun) finding(format string, args ...any) {
	r.rep.Rollback = true
	r.rep.Findings = append(r.rep.Findings, fmt.Sprintf(format, args...))
}

// refusal is why the restore must not go ahead ("" when it may).
func (r *restoreRun) refusal() string {
	if !r.rep.Rollback || r.opts.AcceptRollback != "" {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state restore: restoring %s (%d entries, root %s) would roll the audit log back, so it is refused:", r.rep.File, r.rep.Backup.Entries, r.rep.Backup.Root)
	for _, f := range r.rep.Findings {
		b.WriteString("\n  - " + f)
	}
	b.WriteString("\nNothing was restored. If the entries written since the backup are to be given up (the current database is lost or damaged), run again with --accept-rollback REASON: the restore is then recorded in the audit log with the reason, and the witness moves to the restored log.")
	return b.String()
}

// record appends the state_restored entry to the restored log (the private
// copy), signed with the identity key.
func (r *restoreRun) record(ctx context.Context, tdb *state.DB, id *identity.Identity, now time.Time) error {
	r.id = id
	l, err := auditlog.Open(ctx, tdb, id, auditlog.Options{})
	if err != nil {
		return fmt.Errorf("state restore: opening the restored log: %w", err)
	}
	e, err := l.Append(ctx, r.restoredEntry(id.DID(), now), nil)
	l.Close()
	if err != nil {
		return fmt.Errorf("state restore: recording the restore in the audit log: %w", err)
	}
	r.rep.Entry = &e.Seq
	return nil
}

// changedSinceCheck says what changed since check read it: the current
// database's files, or the witness.
func (r *restoreRun) changedSinceCheck(live string) string {
	if fingerprint(live) != r.liveFiles {
		return "the state database changed"
	}
	if path := r.backup.WitnessPath(); path != "" {
		b, _ := os.ReadFile(path)
		if string(b) != string(r.witnessBytes) {
			return "the witness " + path + " changed"
		}
	}
	return ""
}

// rewitness moves the witness to the installed log: forward along a
// consistency proof when the restore was no rollback, replaced (and the
// old one kept) when an accepted rollback made that impossible; then it
// verifies the installed log, with its witness, as `audit verify` does.
func (r *restoreRun) rewitness(ctx context.Context, now time.Time) error {
	db, err := r.d.OpenDB(ctx, r.cfg.Audit.Synchronous)
	if err != nil {
		return fmt.Errorf("state restore: the backup was installed, but: %w", err)
	}
	defer db.Close()
	opts := auditOptions(r.cfg, nil)
	opts.RecordKey = r.id.Key
	l, err := auditlog.OpenReader(ctx, db, r.doc, opts)
	if err != nil {
		return fmt.Errorf("state restore: the backup was installed, but: %w", err)
	}
	if l.WitnessPath() != "" {
		if r.rep.Rollback {
			r.rep.Witnessed, err = l.ReplaceWitness(ctx, now)
		} else {
			_, err = l.StartWitness()
		}
		if err != nil {
			return problemf("state restore: the backup was installed (the replaced database is kept as %s), but the witness could not be moved to it: %v; serve refuses to start until it is: run this restore again", r.rep.KeptAs, err)
		}
	}
	rep, err := l.Verify(ctx, auditlog.VerifyOptions{})
	if err != nil {
		return problemf("state restore: the backup was installed (the replaced database is kept as %s), but the restored log does not verify: %s", r.rep.KeptAs, problemText(rep, err))
	}
	r.rep.Restored = true
	r.rep.After = &treeView{Entries: rep.Size, Root: rep.Root}
	if rep.Checkpoint != nil {
		r.rep.After.Signed = rep.Checkpoint.Time
	}
	return nil
}

// revivedKeys are the keys revoked in the current database that the
// backup holds as active: restoring would make them work again.
func revivedKeys(ctx context.Context, backup *state.DB, revoked []string) ([]string, error) {
	var out []string
	for _, id := range revoked {
		var n int
		err := backup.Reader().QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = ? AND revoked_at IS NULL`, id).Scan(&n)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			out = append(out, id)
		}
	}
	return out, nil
}

// fingerprint names the state of a database's files: size and
// modification time of the file and its write-ahead log.
func fingerprint(path string) string {
	var b strings.Builder
	for _, suffix := range []string{"", "-wal"} {
		st, err := os.Stat(path + suffix)
		if err != nil {
			b.WriteString("-;")
			continue
		}
		fmt.Fprintf(&b, "%d@%d;", st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}

// listenerList names the serve --http processes recorded as running.
func listenerList(d *state.Dir) string {
	ls, err := mcpserver.LiveListeners(d)
	if err != nil || len(ls) == 0 {
		return ""
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("serve --http %s (pid %d)", l.Addr, l.PID))
	}
	return strings.Join(parts, ", ")
}

func checkpointView(c audit.Checkpoint) *auditlog.CheckpointView {
	return &auditlog.CheckpointView{Size: c.Size, Root: c.Root.String(), Time: c.Time, Origin: c.Origin}
}

func signedText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return ", signed " + t.UTC().Format(time.RFC3339)
}

// seqRange names the entries from..to-1.
func seqRange(from, to int64) string {
	if to-from == 1 {
		return fmt.Sprintf("entry %d", from)
	}
	return fmt.Sprintf("entries %d..%d", from, to-1)
}
