package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// load is n real serve processes, each driven by its own client making
// calls (reads and side-effecting writes) until stop.
type load struct {
	calls atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

func startLoad(t *testing.T, w *workspace, n int) *load {
	t.Helper()
	ld := &load{done: make(chan struct{})}
	for p := 0; p < n; p++ {
		s, stop, err := w.serve()
		if err != nil {
			t.Fatal(err)
		}
		ld.wg.Add(1)
		go func(p int) {
			defer ld.wg.Done()
			defer stop()
			for i := 0; ; i++ {
				select {
				case <-ld.done:
					return
				default:
				}
				tool, args := "filesystem_read", map[string]any{"path": "/data/notes.txt"}
				if i%3 == 1 {
					tool, args = "filesystem_write", map[string]any{"path": fmt.Sprintf("/data/c%d-%d.txt", p, i), "content": "x"}
				}
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = tool, args
				res, err := s.c.CallTool(s.ctx, req)
				if err != nil || res.IsError {
					t.Errorf("client %d call %d (%s): %v %+v", p, i, tool, err, res)
					return
				}
				ld.calls.Add(1)
				time.Sleep(time.Millisecond)
			}
		}(p)
	}
	return ld
}

// waitCalls waits until the clients made at least n calls in all.
func (ld *load) waitCalls(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ld.calls.Load() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("the clients made %d calls, want %d", ld.calls.Load(), n)
		}
	}
}

func (ld *load) stop() {
	close(ld.done)
	ld.wg.Wait()
}

// backup runs `state backup FILE --output json`.
func (w *workspace) backup(file string, args ...string) backupReport {
	w.t.Helper()
	out, errOut, code := w.agentmesh(append([]string{"state", "backup", file, "--output", "json"}, args...)...)
	var rep backupReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		w.t.Fatalf("state backup %s: exit %d\n%s%s", file, code, out, errOut)
	}
	return rep
}

// restore runs `state restore ... --output json`.
func (w *workspace) restore(args ...string) (restoreReport, string, int) {
	w.t.Helper()
	out, errOut, code := w.agentmesh(append([]string{"state", "restore", "--output", "json"}, args...)...)
	var rep restoreReport
	if out != "" {
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			w.t.Fatalf("state restore %v: %v\n%s%s", args, err, out, errOut)
		}
	}
	return rep, errOut, code
}

// treeOf recomputes, from the entries' own bytes, the RFC 6962 root of the
// first n entries of the database at path, as an auditor would without
// agentmesh: it trusts neither the stored hashes nor the checkpoint.
func treeOf(t *testing.T, path string, n int64) (string, [][]byte) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT seq, entry FROM audit_entries WHERE seq < ? ORDER BY seq`, n)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tree audit.MemoryTree
	var entries [][]byte
	for rows.Next() {
		var seq int64
		var raw []byte
		if err := rows.Scan(&seq, &raw); err != nil {
			t.Fatal(err)
		}
		if seq != tree.Size() {
			t.Fatalf("%s: seq %d at position %d", path, seq, tree.Size())
		}
		tree.Append(raw)
		entries = append(entries, raw)
	}
	if tree.Size() != n {
		t.Fatalf("%s holds %d entries below %d", path, tree.Size(), n)
	}
	root, err := tree.Root(n)
	if err != nil {
		t.Fatal(err)
	}
	return root.String(), entries
}

// signedCheckpoint opens the latest checkpoint of the database at path
// with the identity's keys.
func (w *workspace) signedCheckpoint(path string) (audit.Checkpoint, []byte) {
	w.t.Helper()
	d, err := state.Open(filepath.Join(w.dir, "state"))
	if err != nil {
		w.t.Fatal(err)
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		w.t.Fatal(err)
	}
	vs, err := auditlog.Verifiers(doc)
	if err != nil {
		w.t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	var note []byte
	if err := db.QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note); err != nil {
		w.t.Fatal(err)
	}
	cp, _, err := audit.OpenCheckpoint(note, vs)
	if err != nil {
		w.t.Fatalf("%s: the checkpoint: %v", path, err)
	}
	return cp, note
}

// TestBackupUnderLoadAndRestore is issue 17's acceptance: `state backup`
// while four serve processes answer four clients; the copy verifies with
// the root the live log has at the copy's size (recomputed here from the
// entries, and the signed checkpoint of that size in the live history is
// the copy's, byte for byte); after more calls, restoring the older backup
// is refused as a rollback, and accepted with a reason, which the restored
// log records; a tampered backup, a backup of another history and a
// restore beside a running serve are refused and change nothing.
func TestBackupUnderLoadAndRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 4 serve processes")
	}
	w := newWorkspace(t)
	if _, errOut, code := w.agentmesh("identity", "create", "--name", "srv", "--sponsor", "devops@company.com"); code != 0 {
		t.Fatal(errOut)
	}
	ld := startLoad(t, w, 4)
	ld.waitCalls(t, 60)
	before := ld.calls.Load()
	start := time.Now()
	old := w.backup(filepath.Join(w.dir, "old.db"))
	took := time.Since(start)
	during := ld.calls.Load() - before
	ld.waitCalls(t, ld.calls.Load()+60)
	newer := w.backup(filepath.Join(w.dir, "newer.db"))
	ld.waitCalls(t, ld.calls.Load()+60)
	ld.stop()
	t.Logf("backups of %d and %d entries (%d and %d bytes) beside 4 clients; the first took %s (process included), the clients made %d calls meanwhile; %d calls in all",
		old.Entries, newer.Entries, old.Bytes, newer.Bytes, took.Round(time.Millisecond), during, ld.calls.Load())
	if during == 0 {
		t.Error("no call was answered while state backup ran: the backup stopped the writers")
	}
	if old.Entries < 60 || newer.Entries <= old.Entries {
		t.Fatalf("backups of %d then %d entries under load", old.Entries, newer.Entries)
	}

	// The copy verifies with the live log's root at its size.
	v, code, out := w.verify()
	if code != 0 || v.Size <= newer.Entries {
		t.Fatalf("the live log after the load: exit %d\n%s", code, out)
	}
	for _, b := range []backupReport{old, newer} {
		root, entries := treeOf(t, b.File, b.Entries)
		liveRoot, liveEntries := treeOf(t, w.db(), b.Entries)
		if b.Root != root || root != liveRoot {
			t.Fatalf("backup of %d entries: reported root %s, its entries hash to %s, the live log's first %d to %s", b.Entries, b.Root, root, b.Entries, liveRoot)
		}
		for i := range entries {
			if !bytes.Equal(entries[i], liveEntries[i]) {
				t.Fatalf("entry %d differs between the backup and the live log", i)
			}
		}
		cp, note := w.signedCheckpoint(b.File)
		if cp.Size != b.Entries || cp.Root.String() != b.Root {
			t.Fatalf("the backup's signed checkpoint: size %d root %s; report: %d %s", cp.Size, cp.Root, b.Entries, b.Root)
		}
		var liveNote []byte
		db := w.sqlite()
		db.QueryRow(`SELECT note FROM audit_checkpoints WHERE size = ?`, b.Entries).Scan(&liveNote)
		db.Close()
		if !bytes.Equal(note, liveNote) {
			t.Fatalf("the live log's checkpoint history has no checkpoint of size %d equal to the backup's", b.Entries)
		}
		if st, err := os.Stat(b.File); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v", b.File, err, st.Mode())
		}
	}

	// Restoring the older backup after more calls is a rollback: refused,
	// nothing changes.
	liveSize := v.Size
	cpBefore, witnessBefore := w.checkpointNote(), readFile(t, w.witnessFile())
	rep, errOut, code := w.restore(old.File)
	if code != 1 || rep.Restored || !rep.Rollback || rep.Refused == "" || !strings.Contains(rep.Refused, "would roll the audit log back") {
		t.Fatalf("restoring the older backup: exit %d %+v\n%s", code, rep, errOut)
	}
	if !strings.Contains(rep.Refused, fmt.Sprintf("the backup has %d entries: entries %d..%d would be gone", old.Entries, old.Entries, liveSize-1)) {
		t.Fatalf("the refusal does not say which entries would be lost:\n%s", rep.Refused)
	}
	_, errOut, code = w.agentmesh("state", "restore", old.File)
	if code != 1 || !strings.Contains(errOut, "the witness "+w.witnessFile()+" holds tree size") || !strings.Contains(errOut, "--accept-rollback REASON") {
		t.Fatalf("the refusal as text: exit %d\n%s", code, errOut)
	}
	if _, _, code := w.agentmesh("state", "restore", "--dry-run", old.File); code != 1 {
		t.Fatalf("--dry-run of a rollback: exit %d, want 1", code)
	}
	if !bytes.Equal(w.checkpointNote(), cpBefore) || !bytes.Equal(readFile(t, w.witnessFile()), witnessBefore) {
		t.Fatal("a refused restore changed the log or the witness")
	}
	if v, code, _ := w.verify(); code != 0 || v.Size != liveSize {
		t.Fatalf("the log after a refused restore: exit %d, %d entries, want %d", code, v.Size, liveSize)
	}

	// A tampered backup is refused, even with --accept-rollback.
	tampered := filepath.Join(w.dir, "tampered.db")
	copyFile(t, newer.File, tampered)
	tdb, _ := sql.Open("sqlite", tampered)
	var raw []byte
	tdb.QueryRow(`SELECT entry FROM audit_entries WHERE seq = 5`).Scan(&raw)
	i := bytes.Index(raw, []byte(`"action":"`)) + len(`"action":"`)
	raw[i] ^= 0x01
	if _, err := tdb.Exec(`UPDATE audit_entries SET entry = ? WHERE seq = 5`, raw); err != nil {
		t.Fatal(err)
	}
	tdb.Exec(`PRAGMA journal_mode=DELETE`)
	tdb.Close()
	if _, errOut, code := w.agentmesh("state", "restore", tampered, "--accept-rollback", "drill"); code != 1 || !strings.Contains(errOut, "does not verify, so nothing was restored") {
		t.Fatalf("restoring a tampered backup: exit %d\n%s", code, errOut)
	}

	// Beside a running serve, nothing is restored.
	s, stop, err := w.serve()
	if err != nil {
		t.Fatal(err)
	}
	s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"})
	liveSize++
	_, errOut, code = w.agentmesh("state", "restore", old.File, "--accept-rollback", "drill")
	stop()
	if code != 2 || !strings.Contains(errOut, "has the state database open") || !strings.Contains(errOut, "serve") {
		t.Fatalf("restoring beside a running serve: exit %d\n%s", code, errOut)
	}
	if v, code, _ := w.verify(); code != 0 || v.Size != liveSize {
		t.Fatalf("the log after the refused restores: exit %d, %d entries, want %d", code, v.Size, liveSize)
	}
	oldWitness := readFile(t, w.witnessFile())
	liveRoot := w.verifyRoot()

	// Accepted with a reason: restored, recorded, witnessed.
	const reason = "drill INC-17: restore the older backup"
	rep, errOut, code = w.restore(old.File, "--accept-rollback", reason)
	if code != 0 || !rep.Restored || !rep.Rollback || rep.Entry == nil || int64(*rep.Entry) != old.Entries || rep.After == nil || rep.After.Entries != old.Entries+1 {
		t.Fatalf("restoring with --accept-rollback: exit %d %+v\n%s", code, rep, errOut)
	}
	v, code, out = w.verify()
	if code != 0 || v.Size != old.Entries+1 || v.Root != rep.After.Root {
		t.Fatalf("audit verify after the restore: exit %d\n%s", code, out)
	}
	out, _, _ = w.agentmesh("audit", "--output", "json", "--limit", "1")
	var last []struct {
		Seq     int64  `json:"seq"`
		Action  string `json:"action"`
		Reason  string `json:"reason"`
		Details struct {
			By       string `json:"by"`
			Rollback bool   `json:"rollback"`
			Backup   struct {
				Size int64  `json:"size"`
				Root string `json:"root"`
			} `json:"backup"`
			Replaced struct {
				Size   int64  `json:"size"`
				Root   string `json:"root"`
				KeptAs string `json:"kept_as"`
			} `json:"replaced"`
			Witness struct {
				Size int64 `json:"size"`
			} `json:"witness"`
		} `json:"details"`
	}
	if err := json.Unmarshal([]byte(out), &last); err != nil || len(last) != 1 {
		t.Fatalf("audit --limit 1: %v\n%s", err, out)
	}
	e := last[0]
	if e.Seq != old.Entries || e.Action != "state_restored" || e.Reason != reason || !e.Details.Rollback || e.Details.By == "" ||
		e.Details.Backup.Size != old.Entries || e.Details.Backup.Root != old.Root ||
		e.Details.Replaced.Size != liveSize || e.Details.Replaced.Root != liveRoot || e.Details.Replaced.KeptAs != rep.KeptAs || e.Details.Witness.Size == 0 {
		t.Fatalf("the state_restored entry: %+v\n(live log was %d entries, root %s; kept as %s)", e, liveSize, liveRoot, rep.KeptAs)
	}
	// The replaced database is kept, whole; so is the witness it replaced.
	if root, _ := treeOf(t, rep.KeptAs, liveSize); root != liveRoot {
		t.Fatalf("the kept database %s: root %s, the replaced log's was %s", rep.KeptAs, root, liveRoot)
	}
	if rep.Witnessed == "" || !bytes.Equal(readFile(t, rep.Witnessed), oldWitness) {
		t.Fatalf("the replaced witness was not kept (%q)", rep.Witnessed)
	}
	// serve starts on the restored state and appends to it.
	s, stop, err = w.serve()
	if err != nil {
		t.Fatalf("serve after the restore: %v", err)
	}
	if text, isErr := s.call(t, "filesystem_read", map[string]any{"path": "/data/notes.txt"}); isErr {
		t.Fatalf("a call after the restore: %s", text)
	}
	stop()
	if v, code, out := w.verify(); code != 0 || v.Size != old.Entries+2 {
		t.Fatalf("audit verify after a call on the restored log: exit %d\n%s", code, out)
	}

	// The newer backup is now another history: a fork, refused.
	rep, _, code = w.restore(newer.File)
	if code != 1 || !strings.Contains(rep.Refused, "another history (a fork)") {
		t.Fatalf("restoring the newer backup over the restored log: exit %d %+v", code, rep)
	}

	// A backup of the log as it is now restores without a reason.
	now := w.backup(filepath.Join(w.dir, "now.db"))
	rep, errOut, code = w.restore(now.File)
	if code != 0 || !rep.Restored || rep.Rollback || rep.Reason != "" || rep.Witnessed != "" {
		t.Fatalf("restoring a backup of the current log: exit %d %+v\n%s", code, rep, errOut)
	}
	if v, code, out := w.verify(); code != 0 || v.Size != now.Entries+1 {
		t.Fatalf("audit verify after restoring the current log: exit %d\n%s", code, out)
	}
}

// verifyRoot is audit verify's root of the log.
func (w *workspace) verifyRoot() string {
	w.t.Helper()
	v, code, out := w.verify()
	if code != 0 {
		w.t.Fatalf("audit verify: %s", out)
	}
	return v.Root
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
