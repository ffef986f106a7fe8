// Package policy holds agentmesh's policy files: the default policy that
// `agentmesh init` writes and `serve` uses with no configuration.
package policy

import _ "embed"

// DefaultYAML is policies/default.yaml.
//
//go:embed default.yaml
var DefaultYAML []byte

//go:generate sh -c "cp default.yaml ../../policies/default.yaml"
