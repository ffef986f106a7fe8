package policy

import _ "embed"

// DefaultYAML is policies/default.yaml: the policy `agentmesh init` writes
// and `serve` uses with no configuration.
//
//go:embed default.yaml
var DefaultYAML []byte

// DefaultTestYAML is policies/default_test.yaml, the tests of DefaultYAML
// that `agentmesh init` writes beside it (`agentmesh policy test`).
//
//go:embed default_test.yaml
var DefaultTestYAML []byte

//go:generate sh -c "cp default.yaml ../../policies/default.yaml && cp default_test.yaml ../../policies/default_test.yaml"
