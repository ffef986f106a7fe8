package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/tools/code"
)

// newSandboxCmd is the hidden child side of code_execute: agentmesh
// re-executes itself with this subcommand, and the child applies its
// limits (rlimits, Landlock) before running the Starlark program it reads
// from stdin. It loads no configuration and no state.
func newSandboxCmd() *cobra.Command {
	return &cobra.Command{
		Use:    code.ChildCommand,
		Hidden: true,
		Args:   cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			os.Exit(code.RunChild(os.Stdin, os.Stdout))
		},
	}
}
