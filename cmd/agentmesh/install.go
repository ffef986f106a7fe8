package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/state"
)

type installClaudeOptions struct {
	Name   string
	Config string
	File   string
	Print  bool
	Exe    func() (string, error)
	Now    func() time.Time
}

func newInstallCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Register agentmesh with an MCP client",
	}
	opts := installClaudeOptions{Exe: os.Executable, Now: time.Now}
	claude := &cobra.Command{
		Use:   "claude",
		Short: "Add or update agentmesh in Claude Desktop's mcpServers",
		Long: `Adds (or updates) an mcpServers entry that starts 'agentmesh serve' in Claude
Desktop's configuration, with absolute paths (Claude Desktop may start servers
in /). The old file is backed up beside it first, other servers and settings
are kept, and the result is valid JSON.

Claude Desktop's file is found at:
  macOS    ~/Library/Application Support/Claude/claude_desktop_config.json
  Windows  %APPDATA%\Claude\claude_desktop_config.json
Elsewhere name it with --file.`,
		Example: `  agentmesh install claude --config ./agentmesh.yaml
  agentmesh install claude --file ~/.config/Claude/claude_desktop_config.json
  agentmesh install claude --print`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Config == "" {
				opts.Config = g.v.GetString("config")
			}
			return installClaudeRun(g, opts)
		},
	}
	f := claude.Flags()
	f.StringVar(&opts.Name, "name", "agentmesh", "the mcpServers key")
	f.StringVar(&opts.Config, "config-file", "", "agentmesh.yaml the server should use (default: --config, if given)")
	f.StringVar(&opts.File, "file", "", "Claude Desktop's configuration file (default: its path on macOS and Windows)")
	f.BoolVar(&opts.Print, "print", false, "print the resulting configuration instead of writing it")
	cmd.AddCommand(claude)
	return cmd
}

// claudeConfigPath is Claude Desktop's configuration file on this OS.
func claudeConfigPath() (string, error) {
	switch runtime.GOOS {
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		return filepath.Join(home, "Library", "Application Support", "Claude", "claude_desktop_config.json"), nil
	case "windows":
		if appdata := os.Getenv("APPDATA"); appdata != "" {
			return filepath.Join(appdata, "Claude", "claude_desktop_config.json"), nil
		}
		return "", errors.New("APPDATA is not set")
	}
	return "", fmt.Errorf("Claude Desktop has no official configuration path on %s: name the file with --file", runtime.GOOS)
}

type mcpServerEntry struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

func installClaudeRun(g *globals, opts installClaudeOptions) error {
	path := opts.File
	if path == "" {
		p, err := claudeConfigPath()
		if err != nil {
			return fmt.Errorf("install claude: %w", err)
		}
		path = p
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	exe, err := opts.Exe()
	if err != nil {
		return fmt.Errorf("install claude: finding the agentmesh executable: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		fmt.Fprintf(g.io.Err, "agentmesh: warning: %s is a temporary `go run` binary; install agentmesh (go install ./cmd/agentmesh) and run this again\n", exe)
	}
	entry := mcpServerEntry{Command: exe, Args: []string{"serve"}, Env: map[string]string{}}
	if opts.Config != "" {
		cfg, err := filepath.Abs(opts.Config)
		if err != nil {
			return err
		}
		if _, err := os.Stat(cfg); err != nil {
			return fmt.Errorf("install claude: configuration %s: %w", cfg, err)
		}
		entry.Args = append(entry.Args, "--config", cfg)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("install claude: %w", err)
	}
	updated, err := withServer(old, opts.Name, entry)
	if err != nil {
		return fmt.Errorf("install claude: %s: %w", path, err)
	}
	if opts.Print {
		_, err := g.io.Out.Write(updated)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	if old != nil {
		backup := path + ".bak-" + opts.Now().UTC().Format("20060102T150405Z")
		if err := os.WriteFile(backup, old, 0o600); err != nil {
			return fmt.Errorf("install claude: backing up %s: %w", path, err)
		}
		g.io.Success("backed up %s to %s", path, backup)
	}
	if err := state.WriteFileAtomic(path, updated); err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	g.io.Success("added %q to %s: %s %s", opts.Name, path, entry.Command, strings.Join(entry.Args, " "))
	g.io.Hint("restart Claude Desktop to pick it up")
	return nil
}

// withServer returns the configuration with mcpServers[name] set, keeping
// every other key and server as it was.
func withServer(old []byte, name string, entry mcpServerEntry) ([]byte, error) {
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &top); err != nil {
			return nil, fmt.Errorf("is not a JSON object (%v); fix or move it first, nothing was changed", err)
		}
	}
	servers := map[string]json.RawMessage{}
	if raw, ok := top["mcpServers"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &servers); err != nil {
			return nil, fmt.Errorf("mcpServers is not a JSON object (%v); nothing was changed", err)
		}
	}
	e, err := json.Marshal(entry)
	if err != nil {
		return nil, err
	}
	servers[name] = e
	if top["mcpServers"], err = json.Marshal(servers); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	// Re-indent nested raw messages consistently.
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bytes.TrimSpace(buf.Bytes()), "", "  "); err != nil {
		return nil, err
	}
	pretty.WriteByte('\n')
	return pretty.Bytes(), nil
}
