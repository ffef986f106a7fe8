package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/viper"

	"github.com/agentmesh/agentmesh/pkg/ui"
)

//go:generate go test -run TestCompletionsUpToDate -update-completions .

var updateCompletions = flag.Bool("update-completions", false, "rewrite completions/ from the command tree")

var completionFiles = map[string]string{
	"bash":       "agentmesh.bash",
	"zsh":        "_agentmesh",
	"fish":       "agentmesh.fish",
	"powershell": "agentmesh.ps1",
}

// TestCompletionsUpToDate fails when completions/ no longer matches the
// command tree: run `go generate ./cmd/agentmesh` after changing commands.
func TestCompletionsUpToDate(t *testing.T) {
	root := newRootCmd(&globals{io: &ui.IO{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}}, v: viper.New()})
	for shell, name := range completionFiles {
		var buf bytes.Buffer
		if err := writeCompletion(root, shell, &buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("..", "..", "completions", name)
		if *updateCompletions {
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v: run `go generate ./cmd/agentmesh`", err)
		}
		if !bytes.Equal(got, buf.Bytes()) {
			t.Errorf("%s is stale: run `go generate ./cmd/agentmesh`", path)
		}
	}
}
