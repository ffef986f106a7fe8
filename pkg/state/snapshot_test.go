package state

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startWorker starts a process that opens dir's database and makes n
// read-modify-write commits (see worker): each increments 'counter' and
// adds one row, so a consistent state has exactly counter rows besides it.
func startWorker(t *testing.T, dir, id string, n int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+dir, "WORKER_ID="+id, "WORKER_WRITES="+strconv.Itoa(n))
	cmd.Stderr = &strings.Builder{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// consistentCount reads counter and the number of rows it counts.
func consistentCount(t *testing.T, db *DB) (counter, rows int) {
	t.Helper()
	var c sql.NullString
	db.Reader().QueryRow(`SELECT value FROM meta WHERE key = 'counter'`).Scan(&c)
	counter, _ = strconv.Atoi(c.String)
	if err := db.Reader().QueryRow(`SELECT count(*) FROM meta WHERE key LIKE 'w%'`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	return counter, rows
}

// TestSnapshotIsOneCommitWhileOthersWrite: two processes keep committing
// while snapshots are taken; every snapshot is the database as of one
// commit (the counter equals the rows it counts), passes integrity_check,
// is mode 0600 with no -wal or -shm beside it, opens read-only (a write
// fails), and later snapshots hold more commits: the writers were not
// stopped.
func TestSnapshotIsOneCommitWhileOthersWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	ctx := context.Background()
	d, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDB(ctx, SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a := startWorker(t, dir, "a", 3000)
	b := startWorker(t, dir, "b", 3000)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, _ := consistentCount(t, db); c >= 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the workers made no commits")
		}
	}
	first, last := 0, 0
	for i := 0; i < 5; i++ {
		path := filepath.Join(t.TempDir(), "copy.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := db.SnapshotTo(ctx, path); err != nil {
			t.Fatal(err)
		}
		snap, err := OpenSnapshot(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		counter, rows := consistentCount(t, snap)
		var check string
		snap.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&check)
		werr := snap.Write(ctx, func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO meta VALUES ('x', 'y')`)
			return err
		})
		snap.Close()
		if counter != rows || counter == 0 {
			t.Fatalf("snapshot %d: counter %d, %d rows: not one commit's state", i, counter, rows)
		}
		if check != "ok" {
			t.Fatalf("snapshot %d: integrity_check %q", i, check)
		}
		if werr == nil {
			t.Fatalf("snapshot %d: a write to the read-only snapshot succeeded", i)
		}
		if st, _ := os.Stat(path); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Fatalf("snapshot %d has mode %04o", i, st.Mode().Perm())
		}
		for _, side := range []string{"-wal", "-shm"} {
			if _, err := os.Stat(path + side); err == nil {
				t.Fatalf("snapshot %d: %s exists beside it", i, side)
			}
		}
		if i == 0 {
			first = counter
		}
		last = counter
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.Wait(); err != nil {
		t.Fatalf("writer a: %v %s", err, a.Stderr)
	}
	if err := b.Wait(); err != nil {
		t.Fatalf("writer b: %v %s", err, b.Stderr)
	}
	if last <= first {
		t.Fatalf("the last snapshot holds %d commits, the first %d: the writers did not go on meanwhile", last, first)
	}
	if counter, _ := consistentCount(t, db); counter != 6000 {
		t.Fatalf("after the writers: counter %d, want 6000", counter)
	}
}

// TestLockDatabase: another process that has the database open is named
// by its pid and keeps LockDatabase from succeeding; once it is gone (even
// killed, leaving its -shm behind) the lock is taken, and while it is held
// a process starting to write waits, then finishes once it is released.
func TestLockDatabase(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("LockDatabase cannot tell on Windows")
	}
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, DatabaseFile)
	if err := CheckDatabaseNotInUse(path); err != nil {
		t.Fatalf("no database yet: %v", err)
	}
	w := startWorker(t, dir, "holder", 1_000_000)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path + "-shm"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not open the database")
		}
	}
	var iu *InUseError
	if err := CheckDatabaseNotInUse(path); !errors.As(err, &iu) || iu.PID != w.Process.Pid || !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("CheckDatabaseNotInUse with pid %d writing: %v", w.Process.Pid, err)
	}
	if release, err := LockDatabase(path); !errors.As(err, &iu) || iu.PID != w.Process.Pid {
		if err == nil {
			release()
		}
		t.Fatalf("LockDatabase with pid %d writing: %v", w.Process.Pid, err)
	}
	w.Process.Kill()
	w.Wait()
	if _, err := os.Stat(path + "-shm"); err != nil {
		t.Fatalf("a killed writer leaves its -shm: %v", err)
	}
	if err := CheckDatabaseNotInUse(path); err != nil {
		t.Fatalf("after the writer was killed: %v", err)
	}
	release, err := LockDatabase(path)
	if err != nil {
		t.Fatal(err)
	}
	before := fileState(path)
	late := startWorker(t, dir, "late", 1)
	done := make(chan error, 1)
	go func() { done <- late.Wait() }()
	select {
	case err := <-done:
		release()
		t.Fatalf("a writer finished while the database was locked: %v %s", err, late.Stderr)
	case <-time.After(1500 * time.Millisecond):
	}
	if after := fileState(path); after != before {
		t.Fatalf("the database changed while locked: %s -> %s", before, after)
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the writer after release: %v %s", err, late.Stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the writer did not finish after the lock was released")
	}
}

func fileState(path string) string {
	var b strings.Builder
	for _, s := range []string{"", "-wal"} {
		if st, err := os.Stat(path + s); err == nil {
			b.WriteString(strconv.FormatInt(st.Size(), 10) + "@" + st.ModTime().String() + ";")
		}
	}
	return b.String()
}

// TestCheckDatabaseFile: what a backup file must be.
func TestCheckDatabaseFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	good := filepath.Join(dir, "good.db")
	db, err := OpenDB(ctx, filepath.Join(dir, "live.db"), SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := db.SnapshotTo(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := CheckDatabaseFile(good); err != nil {
		t.Fatalf("a snapshot: %v", err)
	}
	if err := CheckDatabaseFile(db.Path); err == nil || !strings.Contains(err.Error(), "write-ahead log") {
		t.Fatalf("a live database with its WAL: %v", err)
	}
	db.Close()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a database at all"), 0o600)
	for path, want := range map[string]string{text: "not an SQLite database", dir: "not a regular file", filepath.Join(dir, "missing.db"): "no such file"} {
		if err := CheckDatabaseFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", path, err, want)
		}
		if _, err := OpenSnapshot(ctx, path); err == nil {
			t.Errorf("OpenSnapshot(%s) succeeded", path)
		}
	}
}

// TestOpenSnapshotChecksTheSchema: a snapshot missing a migration (older
// agentmesh) or with a newer one is refused, naming the version.
func TestOpenSnapshotChecksTheSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, q := range map[string]string{
		"lacks schema migration": `DELETE FROM schema_migrations WHERE version = 1`,
		"newer than this":        `INSERT INTO schema_migrations(version, name) VALUES (100000, 'future')`,
	} {
		live := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".db")
		db, err := OpenDB(ctx, live, SyncFull)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Write(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q); return err }); err != nil {
			t.Fatal(err)
		}
		snap := live + ".copy"
		os.WriteFile(snap, nil, 0o600)
		if err := db.SnapshotTo(ctx, snap); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if _, err := OpenSnapshot(ctx, snap); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: OpenSnapshot = %v", name, err)
		}
	}
}

// TestReplaceDatabase: the replaced database moves aside with its WAL
// (a writer killed mid-stream leaves commits there that the file does not
// hold yet), so the kept copy is that database as it was; the new one is
// installed under the state database's name.
func TestReplaceDatabase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	d, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	live := d.Join(DatabaseFile)
	w := startWorker(t, dir, "old", 1_000_000)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st, err := os.Stat(live + "-wal"); err == nil && st.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker wrote nothing")
		}
	}
	time.Sleep(100 * time.Millisecond)
	w.Process.Kill()
	w.Wait()
	fresh := d.Join("restore.db")
	fdb, err := OpenDB(ctx, fresh, SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	if err := fdb.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO meta VALUES ('restored', 'yes')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	kept, err := ReserveRetired(d, time.Now(), "replaced-"+DatabaseFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := ReplaceDatabase(d, fresh, kept); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(fresh); err == nil {
		t.Fatal("the installed file is still at its old name")
	}
	if st, err := os.Stat(kept + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("the replaced database's WAL did not move with it: %v", err)
	}
	installed, err := OpenDB(ctx, live, SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	var v string
	installed.Reader().QueryRow(`SELECT value FROM meta WHERE key = 'restored'`).Scan(&v)
	if c, rows := consistentCount(t, installed); v != "yes" || c != 0 || rows != 0 {
		t.Fatalf("the installed database: restored=%q, counter %d, %d rows", v, c, rows)
	}
	installed.Close()
	old, err := OpenDB(ctx, kept, SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if c, rows := consistentCount(t, old); c == 0 || c != rows {
		t.Fatalf("the kept database: counter %d, %d rows", c, rows)
	}
}
