package state

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// A snapshot is a copy of the state database taken while other processes
// keep writing to it (`agentmesh state backup`): SQLite's VACUUM INTO
// (https://sqlite.org/lang_vacuum.html#vacuuminto) reads the database in
// one read transaction, so the copy is the database as of one commit, and
// in WAL mode that read blocks no writer. The copy is a self-contained
// file in rollback-journal mode: no -wal or -shm goes with it.

// SnapshotTo writes a consistent copy of the database to path, which must
// not exist or be empty (VACUUM INTO refuses anything else); an empty file
// created beforehand keeps its mode. The copy is fsynced. It runs on a
// connection of its own: the reader pool is query-only, which SQLite
// counts VACUUM INTO as breaking.
func (db *DB) SnapshotTo(ctx context.Context, path string) error {
	c, err := sql.Open("sqlite", "file:"+(&url.URL{Path: db.Path}).EscapedPath()+fmt.Sprintf("?_busy_timeout=%d", BusyTimeout))
	if err != nil {
		return fmt.Errorf("copying %s: %w", db.Path, err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("copying %s to %s: %w", db.Path, path, err)
	}
	return syncFile(path)
}

// sqliteMagic starts every SQLite database file (https://sqlite.org/fileformat.html).
var sqliteMagic = []byte("SQLite format 3\x00")

// CheckDatabaseFile says why path is not a self-contained SQLite database
// file: not a regular file, not SQLite, or a live database whose write-ahead
// log beside it may hold commits the file does not (copy it with
// `agentmesh state backup` instead).
func CheckDatabaseFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, sqliteMagic) {
		return fmt.Errorf("%s is not an SQLite database", path)
	}
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return fmt.Errorf("%s has a write-ahead log beside it (%s-wal) that may hold commits the file does not: it is a live database, not a backup; take a backup with `agentmesh state backup`", path, path)
	}
	return nil
}

// OpenSnapshot opens a copy of a state database that nobody writes (a
// backup) read-only and as immutable: no lock is taken, no -wal or -shm
// file is created, no migration applied, and every write fails. The copy
// must have every migration of this agentmesh applied (a snapshot taken by
// it has).
func OpenSnapshot(ctx context.Context, path string) (*DB, error) {
	if err := CheckDatabaseFile(path); err != nil {
		return nil, err
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&immutable=1"
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	db := &DB{Path: path, w: w, r: r}
	if err := db.checkSchema(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkSchema requires every migration this agentmesh knows, and none
// newer than it understands.
func (db *DB) checkSchema(ctx context.Context) error {
	rows, err := db.r.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("%s is not an agentmesh state database: %w", db.Path, err)
	}
	defer rows.Close()
	applied := map[int]bool{}
	newest := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("%s: reading the schema version: %w", db.Path, err)
		}
		applied[v], newest = true, max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: reading the schema version: %w", db.Path, err)
	}
	if latest := Migrations[len(Migrations)-1].Version; newest > latest {
		return fmt.Errorf("%s has schema version %d, newer than this agentmesh understands (%d): upgrade agentmesh", db.Path, newest, latest)
	}
	for _, m := range Migrations {
		if !applied[m.Version] {
			return fmt.Errorf("%s lacks schema migration %d (%s): it was written by an older agentmesh", db.Path, m.Version, m.Name)
		}
	}
	return nil
}

// CopyFile copies from to a new file to (mode 0600, created exclusively)
// and fsyncs it: what is checked afterwards is the copy, which nobody else
// can change meanwhile.
func CopyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		os.Remove(to)
		return fmt.Errorf("copying %s to %s: %w", from, to, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(to)
		return fmt.Errorf("syncing %s: %w", to, err)
	}
	return dst.Close()
}

// RemoveDatabase removes a database file and what SQLite and OpenDB leave
// beside it (-wal, -shm, .open-lock).
func RemoveDatabase(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", ".open-lock"} {
		os.Remove(path + suffix)
	}
}

// ReplaceDatabase installs the database file at from (in the state
// directory, closed, with no -wal beside it) as the state database, and
// moves the one it replaces (with its -wal) to keptAs, a name from
// ReserveRetired; keptAs "" says there is none to replace. Both renames are in one directory tree on one file
// system, and the directories are synced. Nothing may have the state
// database open (LockDatabase).
func ReplaceDatabase(d *Dir, from, keptAs string) error {
	if wal, err := os.Stat(from + "-wal"); err == nil && wal.Size() > 0 {
		return fmt.Errorf("replacing the state database: %s still has a write-ahead log", from)
	}
	live := d.Join(DatabaseFile)
	if keptAs == "" {
		for _, suffix := range []string{"", "-wal"} {
			if _, err := os.Stat(live + suffix); err == nil {
				return fmt.Errorf("replacing the state database: %s%s exists, and no name was reserved to keep it", live, suffix)
			}
		}
	}
	if keptAs != "" {
		moved := false
		for _, suffix := range []string{"", "-wal"} {
			err := os.Rename(live+suffix, keptAs+suffix)
			switch {
			case err == nil:
				moved = moved || suffix == ""
			case !errors.Is(err, os.ErrNotExist):
				return fmt.Errorf("moving the state database aside: %w", err)
			}
		}
		if !moved {
			os.Remove(keptAs) // nothing was replaced: drop the reserved name
		}
	}
	// The WAL-index is rebuilt from the WAL by whoever opens the kept
	// database next; nobody else has it open (the caller holds
	// LockDatabase), so it is dropped rather than kept.
	os.Remove(live + "-shm")
	os.Remove(from + "-shm")
	os.Remove(from + "-wal")
	os.Remove(from + ".open-lock")
	if err := os.Rename(from, live); err != nil {
		return fmt.Errorf("installing the restored database: %w", err)
	}
	if keptAs != "" {
		if err := syncDir(filepath.Dir(keptAs)); err != nil {
			return err
		}
	}
	return syncDir(d.Path)
}

// ReserveRetired reserves retired/STAMP-NAME for a database moved aside
// (see ReplaceDatabase), creating retired/ if needed.
func ReserveRetired(d *Dir, now time.Time, name string) (string, error) {
	dir := d.Join(RetiredDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return reserveName(dir, now.UTC().Format("20060102T150405Z"), name)
}

func syncFile(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}
