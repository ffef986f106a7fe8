package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/state"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

// Exit codes (DESIGN.md): 0 success; 1 the command ran and found a problem;
// 2 the command could not run.
const (
	exitOK      = 0
	exitProblem = 1
	exitCannot  = 2
)

// problem is an error meaning "the command ran and found a problem"
// (exit 1), as opposed to "could not run" (exit 2).
type problem struct{ err error }

func (p problem) Error() string { return p.err.Error() }
func (p problem) Unwrap() error { return p.err }

// problemf returns an exit-1 error.
func problemf(format string, args ...any) error { return problem{fmt.Errorf(format, args...)} }

// silentProblem exits 1 without printing: the command already reported.
var silentProblem = problem{errors.New("")}

// globals are the flags and streams every command shares.
type globals struct {
	io       *ui.IO
	v        *viper.Viper // agentmesh's own instance: never the global one
	cfgFlag  string
	stateDir string
	output   string
	root     *cobra.Command
}

func run(args []string, io *ui.IO) int {
	g := &globals{io: io, v: viper.New()}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.Err)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var p problem
	if errors.As(err, &p) {
		if msg := p.Error(); msg != "" {
			fmt.Fprintf(io.Err, "agentmesh: %s\n", msg)
		}
		return exitProblem
	}
	fmt.Fprintf(io.Err, "agentmesh: %s\n", err)
	return exitCannot
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "agentmesh",
		Short: "Identity, policy, audit and trust for MCP tool servers",
		Long: `agentmesh secures MCP (Model Context Protocol) tool servers. Every tool call
passes a governance pipeline: a short-lived signed credential with capability
scopes, YAML policies (allow, block, redact, rate limits), a tamper-evident
Merkle-tree audit log, and an adaptive trust score.

All commands share one state directory (keys, audit log, trust state), found
from --state-dir, AGENTMESH_STATE_DIR, state_dir in agentmesh.yaml, or
.agentmesh beside the configuration file.`,
		Example: `  agentmesh init --name mcp-tool-server --sponsor devops@company.com
  agentmesh identity show
  agentmesh --config /etc/agentmesh/agentmesh.yaml identity show --output json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		// Runnable, so that an unknown command reaches noArgs (cobra's
		// own message has no hint); alone, agentmesh prints its help.
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if c.HasParent() {
			return usageError(c, "%s: %v", commandName(c), err)
		}
		return usageError(c, "%v", err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.cfgFlag, "config", "", "configuration file (default: $AGENTMESH_CONFIG, ./agentmesh.yaml, ~/.config/agentmesh/agentmesh.yaml, embedded defaults)")
	pf.StringVar(&g.stateDir, "state-dir", "", "state directory (default: $AGENTMESH_STATE_DIR, state_dir in the config, .agentmesh beside the config, ~/.agentmesh)")
	pf.StringVarP(&g.output, "output", "o", "", "output format: table, text or json (default: table on a terminal, text otherwise)")
	g.v.BindPFlag("config", pf.Lookup("config"))
	g.v.BindPFlag("state-dir", pf.Lookup("state-dir"))
	g.v.BindPFlag("output", pf.Lookup("output"))
	g.v.BindEnv("output", "AGENTMESH_OUTPUT")
	g.root = root

	root.AddCommand(
		newVersionCmd(g),
		newInitCmd(g),
		newServeCmd(g),
		newSandboxCmd(),
		newDemoCmd(g),
		newIdentityCmd(g),
		newAuditCmd(g),
		newTrustCmd(g),
		newToolsCmd(g),
		newKeysCmd(g),
		newStateCmd(g),
		newStatusCmd(g),
		newWitnessCmd(g),
		newPolicyCmd(g),
		newInstallCmd(g),
		newCallCmd(g),
		newComplianceCmd(g),
		newCompletionCmd(g),
	)
	return root
}

// format resolves the output format from --output or AGENTMESH_OUTPUT.
func (g *globals) format() (ui.Format, error) {
	return g.io.ParseFormat(g.v.GetString("output"))
}

// loadConfig finds and loads the configuration (see config.Load). The
// flag values come through viper; the environment variables are read by
// config.Load itself so it can say where each setting came from.
func (g *globals) loadConfig() (*config.Config, error) {
	env, err := config.OSEnv(g.v.GetString("config"), g.v.GetString("state-dir"))
	if err != nil {
		return nil, err
	}
	return config.Load(env)
}

// openState loads the configuration and opens its existing state directory.
func (g *globals) openState() (*config.Config, *state.Dir, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	d, err := state.Open(cfg.Source.StateDir)
	if err != nil {
		return nil, nil, fmt.Errorf("%w (state directory from %s)", err, cfg.Source.StateDirFrom)
	}
	return cfg, d, nil
}

// usageError is a "could not run" error about arguments.
func usageError(c *cobra.Command, format string, args ...any) error {
	return fmt.Errorf("%s\nRun '%s --help' for usage.", fmt.Sprintf(format, args...), c.CommandPath())
}

// commandName is c's path without the program name: "audit prove".
func commandName(c *cobra.Command) string {
	return strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
}

// exactArgs is the Args of a command taking exactly n arguments: what
// names them ("SEQ, the entry's sequence number") and example shows a
// correct command line, for the error when the count is wrong:
//
//	agentmesh: audit prove needs SEQ, the entry's sequence number: e.g. agentmesh audit prove 41
//	Run 'agentmesh audit prove --help' for usage.
func exactArgs(n int, what, example string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argCountError(c, args, n, what, example)
	}
}

// maxArgs is the Args of a command taking at most n arguments (see
// exactArgs).
func maxArgs(n int, what, example string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) <= n {
			return nil
		}
		return argCountError(c, args, n, what, example)
	}
}

func argCountError(c *cobra.Command, args []string, n int, what, example string) error {
	if len(args) < n {
		return usageError(c, "%s needs %s: e.g. %s", commandName(c), what, example)
	}
	return usageError(c, "%s takes only %s; got %s: e.g. %s", commandName(c), what, quoteArgs(args), example)
}

// noArgs is the Args of a command taking no arguments. For a command
// with subcommands an argument is an unknown command: the error lists
// them, with the closest first.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if c.HasAvailableSubCommands() {
		return usageError(c, "%s", unknownCommand(c, args[0]))
	}
	msg := fmt.Sprintf("%s takes no arguments, got %s", commandName(c), quoteArgs(args))
	if ex := firstExample(c); ex != "" {
		msg += ": e.g. " + ex
	}
	return usageError(c, "%s", msg)
}

// pathArgs is the Args of a command taking paths that also has
// subcommands: a first argument that is no file and reads like a word
// ("validate", "tset") is an unknown command, named with the closest
// subcommand or flag, not a file that cannot be read.
func pathArgs(c *cobra.Command, args []string) error {
	if len(args) == 0 || strings.ContainsAny(args[0], "./\\") {
		return nil
	}
	if _, err := os.Stat(args[0]); err == nil {
		return nil
	}
	if f := c.Flags().Lookup(args[0]); f != nil {
		return usageError(c, "unknown command %q for %s: did you mean --%s?\ne.g. %s", args[0], c.CommandPath(), f.Name, firstExample(c))
	}
	return usageError(c, "%s\nThere is no file %q either.", unknownCommand(c, args[0]), args[0])
}

// unknownCommand says that name is none of c's subcommands, naming the
// closest and then all of them.
func unknownCommand(c *cobra.Command, name string) string {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q for %s", name, c.CommandPath())
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf(": did you mean %s?", strings.Join(s, " or "))
	}
	return fmt.Sprintf("%s\nCommands: %s.", msg, strings.Join(names, ", "))
}

// firstExample is the first line of c's examples.
func firstExample(c *cobra.Command) string {
	line, _, _ := strings.Cut(strings.TrimSpace(c.Example), "\n")
	return strings.TrimSpace(line)
}

func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
