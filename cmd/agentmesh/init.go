package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

type initOptions struct {
	Dir     string
	Name    string
	Sponsor string
	Force   bool
	Now     func() time.Time
}

func newInitCmd(g *globals) *cobra.Command {
	opts := initOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Scaffold agentmesh.yaml, policies/default.yaml, the state directory and an identity",
		Long: `Init writes a commented agentmesh.yaml (every key, with the defaults) and
policies/default.yaml into DIR (default: the working directory), creates the
state directory (.agentmesh beside agentmesh.yaml, unless --state-dir or
AGENTMESH_STATE_DIR say otherwise) and a new identity in it.

The name and sponsor come from --name and --sponsor; on a terminal init asks
for them. Existing files are not overwritten without --force.`,
		Example: `  agentmesh init --name mcp-tool-server --sponsor devops@company.com
  agentmesh init ./my-server --name files --sponsor me@example.com`,
		Args: maxArgs(1, "DIR, the directory to write agentmesh.yaml into", "agentmesh init ./my-server --name files --sponsor me@example.com"),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Dir = "."
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			return initRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "agent name (did:agentmesh:NAME)")
	cmd.Flags().StringVar(&opts.Sponsor, "sponsor", "", "e-mail address of the person accountable for the server")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite existing files and replace an existing identity")
	return cmd
}

// initResult is `init --output json`.
type initResult struct {
	Files    []string `json:"files"`
	Config   string   `json:"config"`
	StateDir string   `json:"state_dir"`
	DID      string   `json:"did"`
	Key      string   `json:"key"`
}

func initRun(g *globals, opts initOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return err
	}
	if err := askMissing(g, &opts); err != nil {
		return err
	}
	if err := identity.ValidName(opts.Name); err != nil {
		return fmt.Errorf("init: --name: %w", err)
	}
	if err := identity.ValidSponsor(opts.Sponsor); err != nil {
		return fmt.Errorf("init: --sponsor: %w", err)
	}
	cfgPath := filepath.Join(dir, config.FileName)
	policyPath := filepath.Join(dir, "policies", "default.yaml")
	files := []struct {
		path string
		data []byte
	}{
		{cfgPath, config.Example(opts.Name, opts.Sponsor)},
		{filepath.Join(dir, "policies", "default_test.yaml"), policy.DefaultTestYAML},
		{policyPath, policy.DefaultYAML},
	}
	if !opts.Force {
		var existing []string
		for _, f := range files {
			if _, err := os.Stat(f.path); err == nil {
				existing = append(existing, f.path)
			}
		}
		if len(existing) > 0 {
			return fmt.Errorf("init: refusing to overwrite %s: pass --force to replace", strings.Join(existing, " and "))
		}
	}
	written := make([]string, 0, len(files))
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return fmt.Errorf("init: %w", err)
		}
		written = append(written, f.path)
		g.io.Success("wrote %s", f.path)
	}
	env, err := config.OSEnv(cfgPath, g.v.GetString("state-dir"))
	if err != nil {
		return err
	}
	cfg, err := config.Load(env)
	if err != nil {
		return fmt.Errorf("init: the configuration just written does not load (a bug: please report it): %w", err)
	}
	id, err := g.createIdentity(cfg, identityCreateOptions{Name: opts.Name, Sponsor: opts.Sponsor, Force: opts.Force, Now: opts.Now})
	if err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, identity.ErrExists) {
			return fmt.Errorf("init: %w", err)
		}
		return err
	}
	g.io.Success("created identity %s in %s", id.DID(), cfg.Source.StateDir)
	g.io.Hint("key  %s", id.Doc.Current().Fingerprint)
	fmt.Fprintln(g.io.Err, "\nNext:")
	g.io.Hint("agentmesh identity show")
	g.io.Hint("add %s to .gitignore: it holds private keys", filepath.Base(cfg.Source.StateDir)+"/")
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, initResult{Files: written, Config: cfgPath, StateDir: cfg.Source.StateDir,
			DID: id.DID(), Key: id.Doc.Current().Fingerprint})
	}
	return nil
}

// askMissing prompts for a missing name or sponsor on a terminal, and fails
// with a clear message otherwise.
func askMissing(g *globals, opts *initOptions) error {
	if opts.Name != "" && opts.Sponsor != "" {
		return nil
	}
	if !g.io.InTTY {
		var missing []string
		if opts.Name == "" {
			missing = append(missing, "--name")
		}
		if opts.Sponsor == "" {
			missing = append(missing, "--sponsor")
		}
		return fmt.Errorf("init: %s required when stdin is not a terminal\n  example: agentmesh init --name mcp-tool-server --sponsor devops@company.com", strings.Join(missing, " and ")+map[bool]string{true: " is", false: " are"}[len(missing) == 1])
	}
	in := bufio.NewReader(g.io.In)
	ask := func(prompt, def string, valid func(string) error) (string, error) {
		for {
			fmt.Fprintf(g.io.Err, "%s [%s]: ", prompt, def)
			line, err := in.ReadString('\n')
			line = strings.TrimSpace(line)
			if line == "" {
				line = def
			}
			if verr := valid(line); verr == nil {
				return line, nil
			} else if err != nil {
				return "", verr
			} else {
				fmt.Fprintf(g.io.Err, "  %v\n", verr)
			}
		}
	}
	var err error
	if opts.Name == "" {
		if opts.Name, err = ask("Agent name", "mcp-tool-server", identity.ValidName); err != nil {
			return err
		}
	}
	if opts.Sponsor == "" {
		if opts.Sponsor, err = ask("Sponsor e-mail", "", identity.ValidSponsor); err != nil {
			return err
		}
	}
	return nil
}
