// Command agentmesh secures MCP tool servers: identity, policy, audit and
// trust around every tool call. See README.md and `agentmesh --help`.
package main

import (
	"os"

	"github.com/agentmesh/agentmesh/pkg/ui"
)

func main() {
	os.Exit(run(os.Args[1:], ui.System()))
}
