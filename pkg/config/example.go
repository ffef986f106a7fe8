package config

import (
	_ "embed"
	"strings"
)

//go:embed example.yaml
var exampleTemplate string

// Example returns the commented example configuration with the agent's name
// and sponsor filled in: what `agentmesh init` writes.
func Example(name, sponsor string) []byte {
	r := strings.NewReplacer("{{NAME}}", name, "{{SPONSOR}}", sponsor)
	return []byte(r.Replace(exampleTemplate))
}

// SeedExample is the example with the seed's values, as shipped at the
// repository root.
func SeedExample() []byte { return Example("mcp-tool-server", "devops@company.com") }

//go:generate go run ./gen-example ../../agentmesh.yaml
