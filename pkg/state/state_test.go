package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCreateLayoutModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	d, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"", KeysDir, RetiredKeysDir} {
		st, err := os.Stat(d.Join(sub))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != 0o700 {
			t.Errorf("%s mode = %04o, want 0700", sub, got)
		}
	}
	db, err := d.OpenDB(context.Background(), SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := os.Stat(d.Join(DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("database mode = %04o, want 0600", got)
	}
	v, err := db.SchemaVersion(context.Background())
	if err != nil || v != Migrations[len(Migrations)-1].Version {
		t.Errorf("schema version = %d, %v; want %d", v, err, Migrations[len(Migrations)-1].Version)
	}
	var mode string
	if err := db.Reader().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, ErrNoState) || !strings.Contains(err.Error(), "agentmesh init") {
		t.Fatalf("Open(missing) = %v, want ErrNoState with a hint", err)
	}
}

func TestRefusesWorldWritableDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("Open(0777 dir) = %v, want a refusal with a chmod hint", err)
	}
}

func TestReadSecretRefusesReadableKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.pem")
	if err := CreateExclusive(p, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSecret(p)
	if err != nil || string(got) != "secret" {
		t.Fatalf("ReadSecret(0600) = %q, %v", got, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(p); !errors.Is(err, ErrInsecureKey) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("ReadSecret(0644) = %v, want ErrInsecureKey with a hint", err)
	}
	link := p + ".link"
	os.Chmod(p, 0o600)
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecret(link); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("ReadSecret(symlink) = %v, want a refusal", err)
	}
}

func TestCreateExclusiveRefusesExisting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	if err := CreateExclusive(p, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := CreateExclusive(p, []byte("b")); !errors.Is(err, ErrExists) {
		t.Fatalf("second CreateExclusive = %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "a" {
		t.Fatalf("content = %q, want the first write kept", b)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, content := range []string{"one", "two"} {
		if err := WriteFileAtomic(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Fatalf("content = %q, want %q", b, content)
		}
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %04o, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(p))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestWriteRollsBackOnError(t *testing.T) {
	db, err := OpenDB(context.Background(), filepath.Join(t.TempDir(), "x.db"), SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	boom := errors.New("boom")
	err = db.Write(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec(`INSERT INTO meta VALUES ('k', 'v')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write = %v, want boom", err)
	}
	var n int
	db.Reader().QueryRow(`SELECT count(*) FROM meta`).Scan(&n)
	if n != 0 {
		t.Fatalf("rows after rollback = %d, want 0", n)
	}
}

// TestMigrationVersionsIncrease: versions need not be contiguous, but
// must increase (the last is the newest this binary understands), and a
// step added later below an applied one (8 after 9, from branches merged
// out of order) is still applied once.
func TestMigrationVersionsIncrease(t *testing.T) {
	for i := 1; i < len(Migrations); i++ {
		if Migrations[i].Version <= Migrations[i-1].Version {
			t.Fatalf("migration %d (%s) follows %d (%s)", Migrations[i].Version, Migrations[i].Name, Migrations[i-1].Version, Migrations[i-1].Name)
		}
	}
	orig := Migrations
	defer func() { Migrations = orig }()
	last := orig[len(orig)-1]
	gap := Migration{Version: last.Version + 1, Name: "gap", SQL: `CREATE TABLE gap_test (x INTEGER) STRICT;`}
	after := Migration{Version: last.Version + 2, Name: "after", SQL: `CREATE TABLE after_test (x INTEGER) STRICT;`}
	path := filepath.Join(t.TempDir(), "x.db")
	ctx := context.Background()
	Migrations = append(append([]Migration(nil), orig...), after)
	db, err := OpenDB(ctx, path, SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	Migrations = append(append([]Migration(nil), orig...), gap, after)
	if db, err = OpenDB(ctx, path, SyncFull); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.Reader().QueryRow(`SELECT count(*) FROM schema_migrations WHERE version = ?`, gap.Version).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the later lower step: %d rows, %v", n, err)
	}
	if _, err := db.Reader().Exec(`SELECT x FROM gap_test`); err != nil {
		t.Fatalf("gap_test: %v", err)
	}
}

const workerEnv = "AGENTMESH_STATE_TEST_WORKER"

// TestMain lets the test binary act as a worker process for the
// multi-process test.
func TestMain(m *testing.M) {
	if dir := os.Getenv(workerEnv); dir != "" {
		if err := worker(dir, os.Getenv("WORKER_ID")); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const writesPerWorker = 300

func writes() int {
	if n, err := strconv.Atoi(os.Getenv("WORKER_WRITES")); err == nil {
		return n
	}
	return writesPerWorker
}

func worker(dir, id string) error {
	if at, err := strconv.ParseInt(os.Getenv("WORKER_START"), 10, 64); err == nil {
		time.Sleep(time.Until(time.Unix(0, at))) // start together
	}
	d, err := Create(dir)
	if err != nil {
		return err
	}
	db, err := d.OpenDB(context.Background(), SyncFull)
	if err != nil {
		return err
	}
	defer db.Close()
	for i := 0; i < writes(); i++ {
		err := db.Write(context.Background(), func(tx *sql.Tx) error {
			// Read-modify-write: lost updates would show as a wrong counter.
			var n int
			err := tx.QueryRow(`SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'counter'), 0)`).Scan(&n)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT OR REPLACE INTO meta VALUES ('counter', ?)`, strconv.Itoa(n+1)); err != nil {
				return err
			}
			_, err = tx.Exec(`INSERT INTO meta VALUES (?, 'x')`, fmt.Sprintf("w%s-%d", id, i))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TestConcurrentProcesses starts real processes that create the same state
// directory and write to the database at the same time: no "database is
// locked", no lost update, no corruption.
func TestConcurrentProcesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	const workers = 4
	cmds := make([]*exec.Cmd, workers)
	outs := make([]*strings.Builder, workers)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"="+dir, "WORKER_ID="+strconv.Itoa(i))
		outs[i] = &strings.Builder{}
		cmd.Stderr = outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("worker %d: %v\n%s", i, err, outs[i])
		}
	}
	db, err := OpenDB(context.Background(), filepath.Join(dir, DatabaseFile), SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	var counter string
	var check string
	db.Reader().QueryRow(`SELECT count(*) FROM meta WHERE key != 'counter'`).Scan(&rows)
	db.Reader().QueryRow(`SELECT value FROM meta WHERE key = 'counter'`).Scan(&counter)
	db.Reader().QueryRow(`PRAGMA integrity_check`).Scan(&check)
	if want := workers * writesPerWorker; rows != want || counter != strconv.Itoa(want) {
		t.Errorf("rows = %d, counter = %s; want %d each", rows, counter, want)
	}
	if check != "ok" {
		t.Errorf("integrity_check = %q", check)
	}
	var migrations int
	db.Reader().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&migrations)
	if migrations != len(Migrations) {
		t.Errorf("migrations recorded %d times, want %d", migrations, len(Migrations))
	}
}

// TestConcurrentCreation: eight processes create the same new state
// database at the same instant, twenty times over: every one opens it
// (WAL conversion and migrations never fail with SQLITE_BUSY) and every
// migration is applied exactly once.
func TestConcurrentCreation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 160 processes")
	}
	for round := 0; round < 20; round++ {
		dir := filepath.Join(t.TempDir(), "state")
		start := strconv.FormatInt(time.Now().Add(300*time.Millisecond).UnixNano(), 10)
		var cmds []*exec.Cmd
		var outs []*strings.Builder
		for i := 0; i < 8; i++ {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), workerEnv+"="+dir, "WORKER_ID="+strconv.Itoa(i), "WORKER_WRITES=1", "WORKER_START="+start)
			out := &strings.Builder{}
			cmd.Stderr = out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds, outs = append(cmds, cmd), append(outs, out)
		}
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d, process %d: %v\n%s", round, i, err, outs[i])
			}
		}
		db, err := OpenDB(context.Background(), filepath.Join(dir, DatabaseFile), SyncFull)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		db.Reader().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
		db.Close()
		if n != len(Migrations) {
			t.Fatalf("round %d: %d migrations recorded, want %d", round, n, len(Migrations))
		}
	}
}

// TestRetireDatabaseTwiceInOneSecond: two retirements in the same second
// keep both databases (the second does not rename onto the first).
func TestRetireDatabaseTwiceInOneSecond(t *testing.T) {
	d, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, content := range []string{"first log", "second log"} {
		if err := os.WriteFile(d.Join(DatabaseFile), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d.Join(DatabaseFile)+"-wal", []byte(content+" wal"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := RetireDatabase(d, now); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	entries, err := os.ReadDir(d.Join(RetiredDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(d.Join(RetiredDir), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(b)
	}
	want := map[string]string{
		"20261204T120000Z-" + DatabaseFile:            "first log",
		"20261204T120000Z-" + DatabaseFile + "-wal":   "first log wal",
		"20261204T120000Z.2-" + DatabaseFile:          "second log",
		"20261204T120000Z.2-" + DatabaseFile + "-wal": "second log wal",
	}
	if len(got) != len(want) {
		t.Fatalf("retired files %v, want %v", got, want)
	}
	for name, content := range want {
		if got[name] != content {
			t.Errorf("%s = %q, want %q", name, got[name], content)
		}
	}
	if _, err := os.Stat(d.Join(DatabaseFile)); !os.IsNotExist(err) {
		t.Errorf("the live database is still there: %v", err)
	}
}
