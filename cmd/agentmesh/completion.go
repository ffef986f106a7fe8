package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newCompletionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print a completion script for your shell. The same scripts are shipped in
completions/ in the repository.`,
		Example: `  source <(agentmesh completion bash)
  agentmesh completion zsh > "${fpath[1]}/_agentmesh"
  agentmesh completion fish > ~/.config/fish/completions/agentmesh.fish`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(c *cobra.Command, args []string) error {
			return writeCompletion(g.root, args[0], g.io.Out)
		},
	}
}

func writeCompletion(root *cobra.Command, shell string, w interface{ Write([]byte) (int, error) }) error {
	switch shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return fmt.Errorf("completion: unknown shell %q: want bash, zsh, fish or powershell", shell)
}
