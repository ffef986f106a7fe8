package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/demo"
)

type demoOptions struct {
	Keep bool
}

func newDemoCmd(g *globals) *cobra.Command {
	opts := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "A scripted session against a real serve: allowed and blocked calls, audit, trust",
		Long: `Demo starts 'agentmesh serve' as a subprocess on a temporary state directory,
acts as an MCP client and walks through the seed's "Try asking Claude" list:
an allowed file, /etc/hosts, a path traversal, user records, a DROP TABLE, an
allowed and a disallowed API (a stand-in weather API runs on loopback), a
file holding a secret, sandboxed code and a burst past a rate limit. It
prints each decision and the trust score, then verifies the audit log.
Exit status 1 if any decision differs from the expected one.`,
		Example: "  agentmesh demo\n  agentmesh demo --keep   # keep the state directory to explore it",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "agentmesh-demo-")
			if err != nil {
				return err
			}
			if opts.Keep {
				defer fmt.Fprintf(g.io.Err, "\nstate kept in %s (agentmesh --config %s/agentmesh.yaml audit)\n", dir, dir)
			} else {
				defer os.RemoveAll(dir)
			}
			exe, err := selfExe()
			if err != nil {
				return err
			}
			rep, err := demo.Run(context.Background(), demo.Options{Exe: exe, Out: g.io.Out, Dir: dir})
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			if rep.Mismatches > 0 {
				return problemf("demo: %d step(s) did not behave as expected", rep.Mismatches)
			}
			fmt.Fprintf(g.io.Out, "\n✓ every decision was as expected, and the audit log verifies\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "keep the temporary state directory")
	return cmd
}
