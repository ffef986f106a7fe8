// Package sampledata writes the zero-configuration sample data that the
// embedded defaults mount at /data (filesystem tools) and open as the
// "users" database (database_query): a few files to read, a secret to
// redact, a .env to be blocked, and a SQLite users table.
//
// Everything is fake and deterministic. Ensure never overwrites: a file the
// user changed or removed-and-recreated stays as it is.
package sampledata

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	_ "modernc.org/sqlite" // the "sqlite" driver, for users.db
)

// User is one fake user record, in users.json and the users table.
type User struct {
	ID        int    `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	CreatedAt string `json:"created_at"`
}

// Users are the sample users; UsersRowCount is how many rows the users
// table of users.db holds.
var Users = []User{
	{1, "Ada Lovelace", "ada@example.com", "admin", "2026-01-05T09:00:00Z"},
	{2, "Alan Turing", "alan@example.com", "analyst", "2026-01-06T10:30:00Z"},
	{3, "Grace Hopper", "grace@example.com", "engineer", "2026-01-07T11:15:00Z"},
	{4, "Edsger Dijkstra", "edsger@example.com", "engineer", "2026-01-09T08:45:00Z"},
	{5, "Barbara Liskov", "barbara@example.com", "analyst", "2026-01-12T14:00:00Z"},
	{6, "Donald Knuth", "donald@example.com", "viewer", "2026-01-14T16:20:00Z"},
	{7, "Margaret Hamilton", "margaret@example.com", "engineer", "2026-01-19T07:50:00Z"},
	{8, "Ken Thompson", "ken@example.com", "viewer", "2026-01-21T13:05:00Z"},
	{9, "Frances Allen", "frances@example.com", "analyst", "2026-01-26T09:40:00Z"},
	{10, "John Backus", "john@example.com", "viewer", "2026-01-30T17:10:00Z"},
}

// UsersRowCount is the number of rows in the users table.
const UsersRowCount = 10

// Sample file names, relative to the data directory, "/"-separated.
const (
	ReadmeFile      = "README.txt"
	UsersJSONFile   = "users.json"
	ReportFile      = "reports/q1.csv"
	CredentialsFile = "notes/credentials.txt"
	EnvFile         = "config/.env"
	UsersDBFile     = "users.db"
)

// Files lists every sample file Ensure writes.
var Files = []string{ReadmeFile, UsersJSONFile, ReportFile, CredentialsFile, EnvFile, UsersDBFile}

// FakePassword and FakeAPIKey are the fake secrets in CredentialsFile, for
// the redaction demo; tests assert they never leave unredacted.
const (
	FakePassword = "hunter2"
	FakeAPIKey   = "am_demo_4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"
)

const readme = `agentmesh sample data
=====================

This directory is the zero-configuration filesystem root, mounted at /data.
Everything in it is fake.

  users.json             ten fake users (the same rows as users.db)
  users.db               SQLite database "users", table users
                         (id, name, email, role, created_at), opened read-only
  reports/q1.csv         a small quarterly report
  notes/credentials.txt  fake service credentials: reading it shows redaction
  config/.env            blocked by the default glob **/.env: reading it is refused

Try: filesystem_read /data/users.json, filesystem_list /data,
database_query "SELECT name, role FROM users WHERE role = ?" with params ["engineer"].
`

const report = `month,region,orders,revenue_eur
2026-01,north,120,18450.00
2026-01,south,95,14210.50
2026-02,north,132,20110.25
2026-02,south,101,15033.00
2026-03,north,141,21987.75
2026-03,south,117,17640.40
`

var credentials = `Service credentials (FAKE, for the agentmesh redaction demo)

database admin
  user: admin
  password: ` + FakePassword + `

weather API
  api_key=` + FakeAPIKey + `
`

const env = `# FAKE environment file: the default blocked glob **/.env refuses to read it.
DATABASE_URL=postgres://app:not-a-real-password@db.internal.example:5432/app
SESSION_SECRET=fake-session-secret-0000000000000000
`

// contents returns the text files and their content.
func contents() (map[string][]byte, error) {
	users, err := json.MarshalIndent(Users, "", "  ")
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		ReadmeFile:      []byte(readme),
		UsersJSONFile:   append(users, '\n'),
		ReportFile:      []byte(report),
		CredentialsFile: []byte(credentials),
		EnvFile:         []byte(env),
	}, nil
}

// Ensure writes every missing sample file under dataDir (created 0755 if
// missing) with files 0644 and directories 0755. Existing files are never
// touched. Each file appears complete or not at all: it is written under a
// temporary name and hard-linked into place, which fails rather than
// replaces if another process got there first.
func Ensure(dataDir string) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("sample data: %w", err)
	}
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return fmt.Errorf("sample data: %w", err)
	}
	defer root.Close()
	files, err := contents()
	if err != nil {
		return err
	}
	for _, name := range Files {
		if _, err := root.Lstat(name); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sample data: %s: %w", name, err)
		}
		if dir := path.Dir(name); dir != "." {
			if err := mkdir(root, dir); err != nil {
				return fmt.Errorf("sample data: %s: %w", dir, err)
			}
		}
		if name == UsersDBFile {
			err = placeDatabase(root, dataDir, name)
		} else {
			err = place(root, name, files[name])
		}
		if err != nil {
			return fmt.Errorf("sample data: %s: %w", name, err)
		}
	}
	return nil
}

// mkdir creates dir (one level, as the sample tree is) with mode 0755
// whatever the umask; an existing directory is left as it is.
func mkdir(root *os.Root, dir string) error {
	err := root.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return root.Chmod(dir, 0o755)
}

func tempName(name string) string {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	dir, base := path.Split(name)
	return dir + "." + base + "." + hex.EncodeToString(rnd[:]) + ".tmp"
}

// place writes data to name unless it exists.
func place(root *os.Root, name string, data []byte) error {
	tmp := tempName(name)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	if err := errors.Join(werr, f.Sync(), f.Close(), root.Chmod(tmp, 0o644)); err != nil {
		root.Remove(tmp)
		return err
	}
	return link(root, tmp, name)
}

// link moves tmp to name without replacing an existing name.
func link(root *os.Root, tmp, name string) error {
	err := root.Link(tmp, name)
	switch {
	case err == nil, errors.Is(err, fs.ErrExist):
		// Placed, or someone else wrote it meanwhile: theirs stays.
		return root.Remove(tmp)
	}
	// No hard links here (some network and FUSE filesystems): a rename
	// after a fresh check, which leaves a tiny window in which a file
	// created meanwhile by someone else is replaced.
	if _, err := root.Lstat(name); !errors.Is(err, fs.ErrNotExist) {
		return root.Remove(tmp)
	}
	if err := root.Rename(tmp, name); err != nil {
		return errors.Join(err, root.Remove(tmp))
	}
	return nil
}

// placeDatabase builds users.db under a temporary name and links it into
// place. The journal mode stays DELETE, so that a read-only connection
// needs no -wal or -shm file.
func placeDatabase(root *os.Root, dataDir, name string) error {
	tmp := tempName(name)
	hostTmp := filepath.Join(dataDir, filepath.FromSlash(tmp))
	err := buildDatabase(hostTmp)
	if err == nil {
		err = root.Chmod(tmp, 0o644)
	}
	if err != nil {
		root.Remove(tmp)
		root.Remove(tmp + "-journal")
		return err
	}
	return link(root, tmp, name)
}

func buildDatabase(hostPath string) error {
	// A plain path (not a file: URI): the driver creates the file.
	db, err := sql.Open("sqlite", hostPath)
	if err != nil {
		return err
	}
	tx, err := db.Begin()
	if err == nil {
		_, err = tx.Exec(`CREATE TABLE users (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	email      TEXT NOT NULL UNIQUE,
	role       TEXT NOT NULL,
	created_at TEXT NOT NULL
)`)
		for _, u := range Users {
			if err != nil {
				break
			}
			_, err = tx.Exec(`INSERT INTO users (id, name, email, role, created_at) VALUES (?, ?, ?, ?, ?)`,
				u.ID, u.Name, u.Email, u.Role, u.CreatedAt)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	return errors.Join(err, db.Close())
}
