package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// TestPostgresScripts runs testdata/postgres/*.txtar with
// AGENTMESH_DATABASE_URL naming a fresh schema of the test database per
// script; it skips without one (pgtest).
func TestPostgresScripts(t *testing.T) {
	pgtest.URL(t) // skips without a test database
	testscript.Run(t, testscript.Params{
		Dir: "testdata/postgres",
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, ".home")
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("NO_COLOR", "1")
			env.Setenv("AGENTMESH_DATABASE_URL", pgtest.URL(t))
			return os.MkdirAll(home, 0o700)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"jsonfield":  cmdJSONField,
			"mcp-script": cmdMCPScript,
		},
	})
}
