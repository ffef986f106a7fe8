package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

type installClaudeOptions struct {
	Name string
	// Config is --config-file: the agentmesh.yaml the server should use
	// when it is not the one the usual lookup finds.
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
Desktop's configuration. Claude Desktop starts servers in /, so the entry
names everything with absolute paths: the agentmesh executable and, with
--config, the configuration file this command finds the way every command
does (--config-file or --config, $AGENTMESH_CONFIG, ./agentmesh.yaml,
$XDG_CONFIG_HOME/agentmesh/agentmesh.yaml). Only when none exists does the
server use the embedded defaults. A --state-dir or $AGENTMESH_STATE_DIR in
effect is written into the entry too.

The old file is backed up beside it first (FILE.bak-TIME, never overwriting
an earlier backup); other servers and settings are kept, in their order. The
file may be JSONC (// and /* */ comments, trailing commas); the result is
plain JSON, so comments are not kept in it (the backup has them). A file
that cannot be read is reported as FILE:LINE:COL and left alone.

With --govern NAME, an existing stdio server entry is put behind agentmesh
instead: its command becomes 'agentmesh serve --no-builtin-tools
--no-config-upstreams --upstream-name NAME --prefix "" -- <its command>',
so Claude Desktop sees the same tools, now governed (policies, redaction,
audit, trust, tool pinning). --ungovern NAME restores the original command.

--print writes nothing: it prints the resulting file (or, when there is no
file yet, a new file holding just the mcpServers entry) to stdout.

Claude Desktop's file is found at (--file names another):
  macOS    ~/Library/Application Support/Claude/claude_desktop_config.json
  Windows  %APPDATA%\Claude\claude_desktop_config.json
  Linux    $XDG_CONFIG_HOME/Claude/claude_desktop_config.json
           (default ~/.config/Claude/claude_desktop_config.json)`,
		Example: `  agentmesh install claude
  agentmesh install claude --config ./agentmesh.yaml
  agentmesh install claude --file ~/claude_desktop_config.json
  agentmesh install claude --print
  agentmesh install claude --govern filesystem --govern github --config-file ./agentmesh.yaml
  agentmesh install claude --ungovern github`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return installClaudeRun(g, opts)
		},
	}
	f := claude.Flags()
	f.StringVar(&opts.Name, "name", "agentmesh", "the mcpServers key")
	f.StringVar(&opts.Config, "config-file", "", "agentmesh.yaml the server should use (default: the one every command finds: --config, $AGENTMESH_CONFIG, ./agentmesh.yaml, ~/.config/agentmesh/agentmesh.yaml)")
	f.StringVar(&opts.File, "file", "", "Claude Desktop's configuration file (default: its path on this OS, see above)")
	f.BoolVar(&opts.Print, "print", false, "print the resulting configuration to stdout instead of writing it (needs no file)")
	f.StringArrayVar(&opts.Govern, "govern", nil, "put the existing mcpServers entry NAME behind agentmesh (repeatable)")
	f.StringArrayVar(&opts.Ungovern, "ungovern", nil, "restore the mcpServers entry NAME that --govern wrapped (repeatable)")
	cmd.AddCommand(claude)
	return cmd
}

const claudeConfigFile = "claude_desktop_config.json"

// claudeConfigPath is Claude Desktop's configuration file on this OS.
func claudeConfigPath() (string, error) {
	switch runtime.GOOS {
	case "darwin":
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find Claude Desktop's configuration (%v): name it with --file", err)
		}
		return filepath.Join(home, "Library", "Application Support", "Claude", claudeConfigFile), nil
	case "windows":
		if appdata := os.Getenv("APPDATA"); appdata != "" {
			return filepath.Join(appdata, "Claude", claudeConfigFile), nil
		}
		return "", errors.New("cannot find Claude Desktop's configuration: APPDATA is not set; name the file with --file")
	}
	// Linux and the other Unix systems follow the XDG base directories.
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "Claude", claudeConfigFile), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find Claude Desktop's configuration (%v): name it with --file", err)
	}
	return filepath.Join(home, ".config", "Claude", claudeConfigFile), nil
}

// installServeArgs is `serve` with the configuration (and state directory)
// that this command finds, as absolute paths: Claude Desktop starts servers
// in / with its own environment, where the lookup would find something else.
func installServeArgs(g *globals, configFile string) ([]string, *config.Config, error) {
	flag := g.v.GetString("config")
	if configFile != "" {
		p, err := filepath.Abs(configFile)
		if err != nil {
			return nil, nil, err
		}
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, fmt.Errorf("install claude: --config-file %s does not exist; name an agentmesh.yaml (create one with `agentmesh init`)", p)
		case err != nil:
			return nil, nil, fmt.Errorf("install claude: --config-file: %w", err)
		case st.IsDir():
			return nil, nil, fmt.Errorf("install claude: --config-file %s is a directory; name the agentmesh.yaml inside it", p)
		}
		flag = p
	}
	env, err := config.OSEnv(flag, g.v.GetString("state-dir"))
	if err != nil {
		return nil, nil, err
	}
	cfg, err := config.Load(env)
	if err != nil {
		return nil, nil, fmt.Errorf("install claude: %w", err)
	}
	serve := []string{"serve"}
	if cfg.Source.File != "" {
		serve = append(serve, "--config", cfg.Source.File)
	}
	if from := cfg.Source.StateDirFrom; from == "--state-dir" || from == "AGENTMESH_STATE_DIR" {
		serve = append(serve, "--state-dir", cfg.Source.StateDir)
	}
	return serve, cfg, nil
}

func installClaudeRun(g *globals, opts installClaudeOptions) error {
	path := opts.File
	if path == "" {
		p, err := claudeConfigPath()
		switch {
		case err == nil:
			path = p
		case !opts.Print:
			return fmt.Errorf("install claude: %w", err)
		}
	}
	if path != "" {
		abs, err := filepath.Abs(path)
		if err != nil {
			return err
		}
		path = abs
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
	serve, cfg, err := installServeArgs(g, opts.Config)
	if err != nil {
		return err
	}
	var old []byte
	exists := false
	if path != "" {
		old, err = os.ReadFile(path)
		switch {
		case err == nil:
			exists = true
		case errors.Is(err, fs.ErrNotExist):
			old = nil
		default:
			return fmt.Errorf("install claude: %w", err)
		}
	}
	name := path
	if name == "" {
		name = claudeConfigFile
	}
	top, src, err := parseClaudeConfig(name, old)
	if err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	var done []string
	if len(opts.Govern) > 0 || len(opts.Ungovern) > 0 {
		done, err = governServers(src, top, exe, serve, opts.Govern, opts.Ungovern)
	} else {
		done, err = withServer(src, top, opts.Name, exe, serve)
	}
	if err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	updated := src.format(top)
	if opts.Print {
		if _, err := g.io.Out.Write(updated); err != nil {
			return err
		}
		switch {
		case path == "":
			g.io.Hint("printed a new Claude Desktop configuration; nothing was written: add its mcpServers entry to Claude Desktop's %s", claudeConfigFile)
		case !exists:
			g.io.Hint("printed what would be written to %s (it does not exist yet); nothing was written", path)
		default:
			g.io.Hint("printed what would be written to %s; nothing was written", path)
		}
		installConfigHint(g, cfg)
		if src.comments {
			fmt.Fprintf(g.io.Err, "agentmesh: warning: %s has comments; the printed JSON does not keep them\n", path)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	backup := ""
	if exists {
		if backup, err = backupFile(path, old, opts.Now()); err != nil {
			return fmt.Errorf("install claude: backing up %s (nothing was changed): %w", path, err)
		}
		g.io.Success("backed up %s to %s", path, backup)
	}
	if err := state.WriteFileAtomic(path, updated); err != nil {
		return fmt.Errorf("install claude: %w", err)
	}
	for _, d := range done {
		g.io.Success("%s", d)
	}
	installConfigHint(g, cfg)
	if src.comments {
		fmt.Fprintf(g.io.Err, "agentmesh: warning: the comments in %s are not kept in the rewritten file (it is plain JSON now); the original, with its comments, is %s\n", path, backup)
	}
	g.io.Hint("restart Claude Desktop to pick it up")
	return nil
}

// installConfigHint says which agentmesh.yaml the entry names.
func installConfigHint(g *globals, cfg *config.Config) {
	if cfg.Source.File == "" {
		g.io.Hint("no agentmesh.yaml found: the server uses the embedded defaults (name one with --config)")
		return
	}
	g.io.Hint("the server uses %s (found from %s)", cfg.Source.File, cfg.Source.FileFrom)
}

// backupFile copies data to PATH.bak-TIME, adding -2, -3, ... rather than
// overwriting an earlier backup, and returns the backup's path.
func backupFile(path string, data []byte, now time.Time) (string, error) {
	base := path + ".bak-" + now.UTC().Format("20060102T150405Z")
	for i := 1; i <= 1000; i++ {
		name := base
		if i > 1 {
			name = fmt.Sprintf("%s-%d", base, i)
		}
		err := state.CreateExclusive(name, data)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s-2 to -1000 all exist: remove old backups", base)
}

// withServer sets mcpServers[name] to start exe with args, keeping every
// other key and server as it was, in its order. An existing entry keeps
// its other keys (env, ...); a new one is {command, args, env}.
func withServer(src *jsonSource, top *jsonValue, name, exe string, args []string) ([]string, error) {
	servers, err := src.servers(top, true)
	if err != nil {
		return nil, err
	}
	verb := "added %q to %s"
	if e := servers.get(name); e != nil && e.kind == kindObject {
		verb = "updated %q in %s"
		e.setAt(0, "command", jsonString(exe))
		e.setAfter("args", "command", jsonStrings(args))
	} else {
		e := &jsonValue{kind: kindObject}
		e.set("command", jsonString(exe))
		e.set("args", jsonStrings(args))
		e.set("env", &jsonValue{kind: kindObject})
		servers.set(name, e)
	}
	return []string{fmt.Sprintf(verb+": %s %s", name, src.name, exe, shellJoin(args))}, nil
}

// governServers rewrites existing stdio entries to start through agentmesh
// (govern), or back (ungovern). A governed entry's args are
// serve [--config F] --no-builtin-tools --no-config-upstreams --upstream-name NAME --prefix "" -- COMMAND ARGS,
// so the original command is recoverable from the entry itself.
func governServers(src *jsonSource, top *jsonValue, exe string, serve, govern, ungovern []string) ([]string, error) {
	if len(top.members) == 0 {
		return nil, fmt.Errorf("%s has no mcpServers to govern; add the servers to Claude Desktop first", src.name)
	}
	servers, err := src.servers(top, false)
	if err != nil {
		return nil, err
	}
	if servers == nil {
		return nil, fmt.Errorf("%s has no mcpServers to govern; add the servers to Claude Desktop first", src.name)
	}
	var done []string
	get := func(name string) (*jsonValue, string, []string, error) {
		e := servers.get(name)
		if e == nil {
			return nil, "", nil, fmt.Errorf("%s has no mcpServers entry %q (entries: %s); nothing was changed", src.name, name, strings.Join(servers.keys(), ", "))
		}
		if e.kind != kindObject {
			return nil, "", nil, src.errorAt(e.off, "mcpServers entry %q is %s, not an object; nothing was changed", name, e.kind)
		}
		cmd := e.get("command")
		if cmd == nil || cmd.kind != kindString || cmd.text == "" {
			return nil, "", nil, src.errorAt(e.off, "mcpServers entry %q has no command (only stdio servers can be governed this way; put a remote server under upstreams: in agentmesh.yaml); nothing was changed", name)
		}
		var args []string
		if a := e.get("args"); a != nil && a.kind != kindNull {
			var ok bool
			if args, ok = a.strings(); !ok {
				return nil, "", nil, src.errorAt(a.off, "mcpServers entry %q: args is not a list of strings; nothing was changed", name)
			}
		}
		return e, cmd.text, args, nil
	}
	for _, name := range govern {
		if err := identity.ValidName(name); err != nil || strings.Contains(name, "__") {
			return nil, fmt.Errorf("mcpServers entry %q cannot be an upstream name (letters, digits, '-' and '_'; no \"__\"): rename it in Claude Desktop first; nothing was changed", name)
		}
		e, command, args, err := get(name)
		if err != nil {
			return nil, err
		}
		if _, _, governed := governedCommand(args); governed {
			return nil, fmt.Errorf("mcpServers entry %q is already governed by agentmesh; nothing was changed", name)
		}
		wrapped := append(append([]string{}, serve...), "--no-builtin-tools", "--no-config-upstreams", "--upstream-name", name, "--prefix", "", "--", command)
		wrapped = append(wrapped, args...)
		e.set("command", jsonString(exe))
		e.setAfter("args", "command", jsonStrings(wrapped))
		done = append(done, fmt.Sprintf("%q now starts through agentmesh: %s %s", name, exe, shellJoin(wrapped)))
	}
	for _, name := range ungovern {
		e, _, args, err := get(name)
		if err != nil {
			return nil, err
		}
		orig, origArgs, governed := governedCommand(args)
		if !governed {
			return nil, fmt.Errorf("mcpServers entry %q was not governed by agentmesh (install claude --govern); nothing was changed", name)
		}
		e.set("command", jsonString(orig))
		e.setAfter("args", "command", jsonStrings(origArgs))
		done = append(done, fmt.Sprintf("%q restored: %s %s", name, orig, strings.Join(origArgs, " ")))
	}
	return done, nil
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
