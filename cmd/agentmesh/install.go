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
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

type installClaudeOptions struct {
	Name   string
	Config string
	File   string
	Print  bool
	// Govern and Ungovern name existing mcpServers entries to put behind
	// agentmesh, or to restore.
	Govern, Ungovern []string
	Exe              func() (string, error)
	Now              func() time.Time
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

With --govern NAME, an existing stdio server entry is put behind agentmesh
instead: its command becomes 'agentmesh serve --no-builtin-tools
--no-config-upstreams --upstream-name NAME --prefix "" -- <its command>',
so Claude Desktop sees
the same tools, now governed (policies, redaction, audit, trust, tool
pinning). --ungovern NAME restores the original command.

Claude Desktop's file is found at:
  macOS    ~/Library/Application Support/Claude/claude_desktop_config.json
  Windows  %APPDATA%\Claude\claude_desktop_config.json
Elsewhere name it with --file.`,
		Example: `  agentmesh install claude --config ./agentmesh.yaml
  agentmesh install claude --file ~/.config/Claude/claude_desktop_config.json
  agentmesh install claude --print
  agentmesh install claude --govern filesystem --govern github --config-file ./agentmesh.yaml
  agentmesh install claude --ungovern github`,
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
	f.StringArrayVar(&opts.Govern, "govern", nil, "put the existing mcpServers entry NAME behind agentmesh (repeatable)")
	f.StringArrayVar(&opts.Ungovern, "ungovern", nil, "restore the mcpServers entry NAME that --govern wrapped (repeatable)")
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
	serve := []string{"serve"}
	if opts.Config != "" {
		cfg, err := filepath.Abs(opts.Config)
		if err != nil {
			return err
		}
		if _, err := os.Stat(cfg); err != nil {
			return fmt.Errorf("install claude: configuration %s: %w", cfg, err)
		}
		serve = append(serve, "--config", cfg)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("install claude: %w", err)
	}
	var updated []byte
	var done []string
	if len(opts.Govern) > 0 || len(opts.Ungovern) > 0 {
		updated, done, err = governServers(old, exe, serve, opts.Govern, opts.Ungovern)
	} else {
		entry := mcpServerEntry{Command: exe, Args: serve, Env: map[string]string{}}
		updated, err = withServer(old, opts.Name, entry)
		done = []string{fmt.Sprintf("added %q to %s: %s %s", opts.Name, path, entry.Command, strings.Join(entry.Args, " "))}
	}
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
	for _, d := range done {
		g.io.Success("%s", d)
	}
	g.io.Hint("restart Claude Desktop to pick it up")
	return nil
}

// withServer returns the configuration with mcpServers[name] set, keeping
// every other key and server as it was.
func withServer(old []byte, name string, entry mcpServerEntry) ([]byte, error) {
	top, err := parseClaudeConfig(old)
	if err != nil {
		return nil, err
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
	return formatClaudeConfig(top, servers)
}

// parseClaudeConfig reads the top level of Claude Desktop's configuration,
// keeping every key as it is; an empty file is an empty object.
func parseClaudeConfig(old []byte) (map[string]json.RawMessage, error) {
	top := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(old)) > 0 {
		if err := json.Unmarshal(old, &top); err != nil {
			return nil, fmt.Errorf("is not a JSON object (%v); fix or move it first, nothing was changed", err)
		}
	}
	return top, nil
}

// formatClaudeConfig sets mcpServers and writes the configuration indented,
// without HTML escaping, with a final newline.
func formatClaudeConfig(top map[string]json.RawMessage, servers any) ([]byte, error) {
	var err error
	if top["mcpServers"], err = json.Marshal(servers); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(top); err != nil {
		return nil, err
	}
	// Indent nested raw messages consistently.
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, bytes.TrimSpace(buf.Bytes()), "", "  "); err != nil {
		return nil, err
	}
	pretty.WriteByte('\n')
	return pretty.Bytes(), nil
}

// governServers rewrites existing stdio entries to start through agentmesh
// (govern), or back (ungovern). A governed entry's args are
// serve [--config F] --no-builtin-tools --no-config-upstreams --upstream-name NAME --prefix "" -- COMMAND ARGS,
// so the original command is recoverable from the entry itself.
func governServers(old []byte, exe string, serve, govern, ungovern []string) ([]byte, []string, error) {
	if len(bytes.TrimSpace(old)) == 0 {
		return nil, nil, errors.New("has no mcpServers to govern; add the servers to Claude Desktop first")
	}
	top, err := parseClaudeConfig(old)
	if err != nil {
		return nil, nil, err
	}
	servers := map[string]map[string]json.RawMessage{}
	if raw, ok := top["mcpServers"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &servers); err != nil {
			return nil, nil, fmt.Errorf("mcpServers is not an object of server objects (%v); nothing was changed", err)
		}
	}
	var done []string
	get := func(name string) (map[string]json.RawMessage, string, []string, error) {
		e, ok := servers[name]
		if !ok {
			names := make([]string, 0, len(servers))
			for n := range servers {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, "", nil, fmt.Errorf("has no mcpServers entry %q (entries: %s); nothing was changed", name, strings.Join(names, ", "))
		}
		var command string
		var args []string
		if err := json.Unmarshal(e["command"], &command); err != nil || command == "" {
			return nil, "", nil, fmt.Errorf("mcpServers entry %q has no command (only stdio servers can be governed this way; put a remote server under upstreams: in agentmesh.yaml); nothing was changed", name)
		}
		if raw, ok := e["args"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &args); err != nil {
				return nil, "", nil, fmt.Errorf("mcpServers entry %q: args is not a list of strings; nothing was changed", name)
			}
		}
		return e, command, args, nil
	}
	for _, name := range govern {
		if err := identity.ValidName(name); err != nil || strings.Contains(name, "__") {
			return nil, nil, fmt.Errorf("mcpServers entry %q cannot be an upstream name (letters, digits, '-' and '_'; no \"__\"): rename it in Claude Desktop first; nothing was changed", name)
		}
		e, command, args, err := get(name)
		if err != nil {
			return nil, nil, err
		}
		if _, _, governed := governedCommand(args); governed {
			return nil, nil, fmt.Errorf("mcpServers entry %q is already governed by agentmesh; nothing was changed", name)
		}
		wrapped := append(append([]string{}, serve...), "--no-builtin-tools", "--no-config-upstreams", "--upstream-name", name, "--prefix", "", "--", command)
		wrapped = append(wrapped, args...)
		e["command"], _ = json.Marshal(exe)
		e["args"], _ = json.Marshal(wrapped)
		done = append(done, fmt.Sprintf("%q now starts through agentmesh: %s %s", name, exe, shellJoin(wrapped)))
	}
	for _, name := range ungovern {
		e, _, args, err := get(name)
		if err != nil {
			return nil, nil, err
		}
		orig, origArgs, governed := governedCommand(args)
		if !governed {
			return nil, nil, fmt.Errorf("mcpServers entry %q was not governed by agentmesh (install claude --govern); nothing was changed", name)
		}
		e["command"], _ = json.Marshal(orig)
		e["args"], _ = json.Marshal(origArgs)
		done = append(done, fmt.Sprintf("%q restored: %s %s", name, orig, strings.Join(origArgs, " ")))
	}
	out, err := formatClaudeConfig(top, servers)
	return out, done, err
}

// governedCommand recognises an entry --govern wrote and returns the
// command it wraps.
func governedCommand(args []string) (string, []string, bool) {
	if len(args) == 0 || args[0] != "serve" || !slices.Contains(args, "--no-builtin-tools") {
		return "", nil, false
	}
	i := slices.Index(args, "--")
	if i < 0 || i+1 >= len(args) {
		return "", nil, false
	}
	return args[i+1], append([]string{}, args[i+2:]...), true
}

// shellJoin quotes words for display ("" for an empty one).
func shellJoin(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t'\"") {
			w = strconv.Quote(w)
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}
