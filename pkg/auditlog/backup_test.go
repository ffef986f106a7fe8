package auditlog

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// snapshot copies the fixture's database to a new file and opens the copy
// read-only as a log reader (no witness directory).
func (f *fixture) snapshot(t *testing.T) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.db.SnapshotTo(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return openCopy(t, f, path), path
}

func openCopy(t *testing.T, f *fixture, path string) *Log {
	t.Helper()
	db, err := state.OpenSnapshot(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := OpenReader(context.Background(), db, &f.id.Doc, Options{WitnessDir: f.witness})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestVerifyCopy: a copy verifies read-only with the log's root at its
// size, however far the witness and the log moved on since; an edited
// copy does not.
func TestVerifyCopy(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir())
	f.appendN(t, 30)
	c, path := f.snapshot(t)
	f.appendN(t, 20)
	f.log.Close() // the witness moves to 50
	f.open(t)
	if w, err := f.log.WitnessCheckpoint(); err != nil || w == nil || w.Size != 50 {
		t.Fatalf("witness: %v, %v", w, err)
	}
	rep, err := c.VerifyCopy(ctx)
	if err != nil {
		t.Fatalf("the copy: %v", err)
	}
	root, err := f.log.RootAt(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 30 || rep.Root != root.String() || rep.Checkpoint == nil || rep.Checkpoint.Size != 30 || rep.Witness != nil || rep.WitnessPath != "" {
		t.Fatalf("copy report %+v; want 30 entries with the log's root at 30 %s and no witness", rep, root)
	}
	var n int
	c.db.Reader().QueryRow(`SELECT count(*) FROM audit_verifications`).Scan(&n)
	if n != 0 {
		t.Fatalf("the copy holds %d verification records", n)
	}

	// One byte of one entry edited in (a writable copy of) the backup.
	edited := filepath.Join(t.TempDir(), "edited.db")
	b, _ := os.ReadFile(path)
	os.WriteFile(edited, b, 0o600)
	raw, _ := sql.Open("sqlite", edited)
	var entry []byte
	raw.QueryRow(`SELECT entry FROM audit_entries WHERE seq = 7`).Scan(&entry)
	i := strings.Index(string(entry), `"tool":"`) + len(`"tool":"`)
	entry[i] ^= 1
	if _, err := raw.Exec(`UPDATE audit_entries SET entry = ? WHERE seq = 7`, entry); err != nil {
		t.Fatal(err)
	}
	raw.Exec(`PRAGMA journal_mode=DELETE`)
	raw.Close()
	_, err = openCopy(t, f, edited).VerifyCopy(ctx)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Kind != audit.KindContentChanged || ve.Seq != 7 {
		t.Fatalf("an edited copy: %v; want content changed at 7", err)
	}
}

// TestRelate: a log extends its own older checkpoints, is shorter than
// newer ones, and is forked from another history's.
func TestRelate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, t.TempDir())
	f.appendN(t, 12)
	old, err := f.log.Head(ctx)
	if err != nil || old.Checkpoint == nil || old.Size != 12 {
		t.Fatalf("head %+v, %v", old, err)
	}
	c, _ := f.snapshot(t)
	f.appendN(t, 5)
	now, _ := f.log.Head(ctx)
	other := newFixture(t, t.TempDir()) // another identity: only its root matters here
	other.appendN(t, 13)
	oh, _ := other.log.Head(ctx)
	forked := *oh.Checkpoint
	for _, tc := range []struct {
		name string
		log  *Log
		cp   audit.Checkpoint
		want Relation
	}{
		{"the log and its older checkpoint", f.log, *old.Checkpoint, Extends},
		{"the log and its own checkpoint", f.log, *now.Checkpoint, Extends},
		{"the copy and its own checkpoint", c, *old.Checkpoint, Extends},
		{"the copy and a newer checkpoint", c, *now.Checkpoint, Shorter},
		{"the log and another history", f.log, forked, Forked},
		{"the empty tree", c, audit.Checkpoint{Size: 0, Root: audit.EmptyRoot}, Extends},
	} {
		if got, err := tc.log.Relate(ctx, tc.cp); err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestReplaceWitness: after an accepted rollback the witness holds the
// restored log's checkpoint, the one it held is kept beside it, and a
// writer opens on the rolled-back log again (it refused before).
func TestReplaceWitness(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	f := newFixture(t, root)
	f.appendN(t, 10)
	origin := f.log.Origin()
	f.close()
	db := f.dir.Join(state.DatabaseFile)
	saved := map[string][]byte{}
	for _, s := range []string{"", "-wal"} {
		saved[s], _ = os.ReadFile(db + s)
	}
	f.open(t)
	f.appendN(t, 10)
	f.close()
	witness := witnessPath(f.witness, origin)
	newer, _ := os.ReadFile(witness)
	for _, s := range []string{"", "-wal", "-shm"} {
		os.Remove(db + s)
		if saved[s] != nil {
			os.WriteFile(db+s, saved[s], 0o600)
		}
	}
	sdb, err := f.dir.OpenDB(ctx, state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	if _, err := Open(ctx, sdb, f.id, Options{WitnessDir: f.witness}); !errors.Is(err, audit.KindRollback) {
		t.Fatalf("a writer on the rolled-back log: %v; want a rollback", err)
	}
	r, err := OpenReader(ctx, sdb, &f.id.Doc, Options{WitnessDir: f.witness})
	if err != nil {
		t.Fatal(err)
	}
	kept, err := r.ReplaceWitness(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(kept); string(b) != string(newer) || !strings.HasPrefix(kept, witness+".replaced-") {
		t.Fatalf("the replaced witness was not kept as it was at %s", kept)
	}
	if w, err := r.WitnessCheckpoint(); err != nil || w == nil || w.Size != 10 {
		t.Fatalf("the witness now: %v, %v; want tree size 10", w, err)
	}
	l, err := Open(ctx, sdb, f.id, Options{WitnessDir: f.witness})
	if err != nil {
		t.Fatalf("a writer after the witness was replaced: %v", err)
	}
	l.Close()
	if _, err := r.Verify(ctx, VerifyOptions{}); err != nil {
		t.Fatalf("verify after the witness was replaced: %v", err)
	}
	if _, err := (&Log{opts: Options{}}).ReplaceWitness(ctx, t0); err == nil {
		t.Fatal("ReplaceWitness without a witness directory succeeded")
	}
}
