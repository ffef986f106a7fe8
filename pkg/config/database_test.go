package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The state database comes from AGENTMESH_DATABASE_URL, else
// state.database; a bad URL is an error that names where it came from and
// never repeats a password.
func TestResolveDatabase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, FileName)
	if err := os.WriteFile(file, []byte("state:\n  database: postgres://fromfile@db:5432/am\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badFile, []byte("state:\n  database: mysql://u:hunter2@db/am\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	batchFile := filepath.Join(dir, "batch.yaml")
	if err := os.WriteFile(batchFile, []byte("state:\n  database: postgres://u@db/am\naudit:\n  batch_window: 5ms\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, config, envURL string
		want, wantFrom       string
		wantErr              []string
	}{
		{name: "none", want: "", wantFrom: ""},
		{name: "file", config: file, want: "postgres://fromfile@db:5432/am", wantFrom: "state.database in " + file},
		{name: "env wins", config: file, envURL: "postgresql://env@db/am", want: "postgresql://env@db/am", wantFrom: "AGENTMESH_DATABASE_URL"},
		{name: "bad env", envURL: "sqlite:///x?password=hunter2", wantErr: []string{"AGENTMESH_DATABASE_URL", `scheme "sqlite"`}},
		{name: "no host", envURL: "postgres:///am", wantErr: []string{"no host"}},
		{name: "bad file", config: badFile, wantErr: []string{"bad.yaml:2:13", `scheme "mysql"`}},
		{name: "batched", config: batchFile, wantErr: []string{"batch.yaml:4:17", "batch_window"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := Env{ConfigFlag: tc.config, Cwd: t.TempDir(), Home: t.TempDir(), Getenv: func(k string) string {
				if k == "AGENTMESH_DATABASE_URL" {
					return tc.envURL
				}
				return ""
			}}
			cfg, err := Load(env)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Load accepted it: database %q", cfg.Source.Database)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Source.Database != tc.want || cfg.Source.DatabaseFrom != tc.wantFrom {
				t.Fatalf("database %q from %q, want %q from %q", cfg.Source.Database, cfg.Source.DatabaseFrom, tc.want, tc.wantFrom)
			}
		})
	}
}
