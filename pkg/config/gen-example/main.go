// Command gen-example writes the seed example configuration to the file
// named on the command line (the repository's agentmesh.yaml).
package main

import (
	"fmt"
	"os"

	"github.com/agentmesh/agentmesh/pkg/config"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gen-example FILE")
		os.Exit(2)
	}
	if err := os.WriteFile(os.Args[1], config.SeedExample(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
