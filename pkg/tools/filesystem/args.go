package filesystem

import (
	"encoding/json"
	"math"
	"slices"
	"sort"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// onlyArgs refuses argument names the tool does not define, so that a
// misspelt option ("maxbytes") is not silently ignored.
func onlyArgs(args map[string]any, names ...string) error {
	var unknown []string
	for k := range args {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return tools.Refuse("arguments", "unknown argument %q (this tool takes %v)", unknown[0], names)
	}
	return nil
}

// intArg returns an optional positive integer argument (JSON numbers arrive
// as float64), or def when absent.
func intArg(args map[string]any, name string, def, max int64) (int64, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return def, nil
	}
	var n int64
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || x < 1 || x > float64(max) {
			return 0, tools.Refuse("arguments", "argument %q must be a whole number from 1 to %d", name, max)
		}
		n = int64(x)
	case int:
		n = int64(x)
	case int64:
		n = x
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, tools.Refuse("arguments", "argument %q must be a whole number", name)
		}
		n = i
	default:
		return 0, tools.Refuse("arguments", "argument %q must be a number, got %T", name, v)
	}
	if n < 1 || n > max {
		return 0, tools.Refuse("arguments", "argument %q must be a whole number from 1 to %d", name, max)
	}
	return n, nil
}

// boolArg returns an optional boolean argument.
func boolArg(args map[string]any, name string) (bool, error) {
	v, ok := args[name]
	if !ok || v == nil {
		return false, nil
	}
	b, ok := v.(bool)
	if !ok {
		return false, tools.Refuse("arguments", "argument %q must be true or false, got %T", name, v)
	}
	return b, nil
}
