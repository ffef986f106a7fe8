package sampledata_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/tools"
	"github.com/agentmesh/agentmesh/pkg/tools/database"
	"github.com/agentmesh/agentmesh/pkg/tools/filesystem"
	"github.com/agentmesh/agentmesh/pkg/tools/sampledata"
)

func TestEnsure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := sampledata.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".tmp") || strings.HasSuffix(e.Name(), "-journal") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	for _, name := range sampledata.Files {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 || fi.Size() == 0 {
			t.Errorf("%s: mode %v size %d", name, fi.Mode(), fi.Size())
		}
		if st := nlink(fi); st > 1 {
			t.Errorf("%s has %d links: the filesystem tools would refuse it", name, st)
		}
	}
	for _, d := range []string{"reports", "notes", "config"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("directory %s: %v %v", d, fi.Mode(), err)
		}
	}
	var users []sampledata.User
	b, _ := os.ReadFile(filepath.Join(dir, sampledata.UsersJSONFile))
	if err := json.Unmarshal(b, &users); err != nil || len(users) != sampledata.UsersRowCount {
		t.Fatalf("users.json: %d users, %v", len(users), err)
	}
	creds, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(sampledata.CredentialsFile)))
	if !bytes.Contains(creds, []byte("password: "+sampledata.FakePassword)) || !bytes.Contains(creds, []byte("api_key="+sampledata.FakeAPIKey)) {
		t.Errorf("credentials.txt lacks the fake secrets:\n%s", creds)
	}
}

func TestEnsureNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	mine := filepath.Join(dir, sampledata.UsersJSONFile)
	if err := os.WriteFile(mine, []byte("my own users"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sampledata.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(dir, sampledata.ReadmeFile)
	if err := os.WriteFile(readme, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(sampledata.ReportFile))); err != nil {
		t.Fatal(err)
	}
	if err := sampledata.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(mine); string(b) != "my own users" {
		t.Errorf("users.json overwritten: %q", b)
	}
	if b, _ := os.ReadFile(readme); string(b) != "edited" {
		t.Errorf("README.txt overwritten: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(sampledata.ReportFile))); err != nil {
		t.Errorf("a removed sample file is not restored: %v", err)
	}
}

func TestEnsureDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := sampledata.Ensure(d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range sampledata.Files {
		if name == sampledata.UsersDBFile {
			continue // compared by content below
		}
		x, _ := os.ReadFile(filepath.Join(a, filepath.FromSlash(name)))
		y, _ := os.ReadFile(filepath.Join(b, filepath.FromSlash(name)))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between runs", name)
		}
	}
	if rowsOf(t, a) != rowsOf(t, b) {
		t.Error("users.db content differs between runs")
	}
}

func TestEnsureConcurrent(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = sampledata.Ensure(dir) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, dir); strings.Count(got, "\n") != sampledata.UsersRowCount {
		t.Fatalf("users.db after concurrent Ensure: %q", got)
	}
}

// rowsOf reads the users table through database_query, read-only, as the
// zero-config server does.
func rowsOf(t *testing.T, dir string) string {
	t.Helper()
	tool, err := database.New(database.Options{Databases: []database.DB{{Name: "users", HostPath: filepath.Join(dir, sampledata.UsersDBFile), ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer tool.Close()
	res, err := tool.Call(context.Background(), map[string]any{"query": "SELECT id, name, email, role, created_at FROM users ORDER BY id"})
	if err != nil {
		t.Fatal(err)
	}
	r := res.StructuredContent.(*database.Result)
	var sb strings.Builder
	for i, row := range r.Rows {
		u := sampledata.Users[i]
		if row[0] != int64(u.ID) || row[1] != u.Name || row[2] != u.Email || row[3] != u.Role || row[4] != u.CreatedAt {
			t.Errorf("row %d = %v, want %+v", i, row, u)
		}
		j, _ := json.Marshal(row)
		sb.Write(append(j, '\n'))
	}
	return sb.String()
}

// TestZeroConfigDemo is the demo's view of the sample data through the
// filesystem tools with the default blocked globs.
func TestZeroConfigDemo(t *testing.T) {
	dir := t.TempDir()
	if err := sampledata.Ensure(dir); err != nil {
		t.Fatal(err)
	}
	fs, err := filesystem.New(filesystem.Options{
		Roots:        []filesystem.Root{{HostPath: dir, Mount: "/data", Access: filesystem.AccessRead}},
		BlockedGlobs: []string{"**/.ssh/**", "**/.env", "**/*.pem", "**/id_rsa*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	read := fs.Tools()[0]
	for _, p := range []string{"/data/users.json", "/data/README.txt", "/data/reports/q1.csv", "/data/notes/credentials.txt"} {
		if _, err := read.Call(context.Background(), map[string]any{"path": p}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	_, err = read.Call(context.Background(), map[string]any{"path": "/data/config/.env"})
	var r *tools.Refusal
	if !errors.As(err, &r) || r.Check != "blocked-glob" {
		t.Errorf("/data/config/.env must be blocked, got %v", err)
	}
	// users.db is binary: refused as such, not returned.
	_, err = read.Call(context.Background(), map[string]any{"path": "/data/users.db"})
	if !errors.As(err, &r) || r.Check != "binary" {
		t.Errorf("/data/users.db must be refused as binary, got %v", err)
	}
}
