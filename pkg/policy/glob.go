package policy

import (
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/agentmesh/agentmesh/pkg/pathglob"
)

// glob(pattern, path) compares "/"-separated components, with the pattern
// language of capability scopes (DESIGN.md, "Tools see virtual paths"):
//
//   - "/data/*" covers "/data" and everything below it, never "/database";
//   - "*" inside a component matches within that component only
//     ("/logs/*.txt" covers "/logs/a.txt", not "/logs/a/b.txt");
//   - "**" as a whole component matches any number of components
//     ("**/.env" covers ".env" in any directory);
//   - anything else matches exactly.
//
// A target starting with "/" is a virtual path and is cleaned first
// ("/data/../etc/passwd" is "/etc/passwd"), so ".." can neither escape an
// allow rule nor dodge a block rule.

// globPatterns caches the split form of the patterns written as string
// literals in conditions, so that evaluation does not allocate. Patterns
// computed at run time are split on each call and not cached: their number
// is not bounded.
var globPatterns sync.Map // string -> []string

func splitGlob(pattern string) []string {
	comps := strings.Split(pattern, "/")
	if n := len(comps); n > 1 && comps[n-1] == "*" {
		comps[n-1] = "**" // a trailing "/*" covers the directory and below
	}
	return comps
}

// registerGlob caches a pattern known at compile time.
func registerGlob(pattern string) {
	if _, ok := globPatterns.Load(pattern); !ok {
		globPatterns.Store(pattern, splitGlob(pattern))
	}
}

// globFunc is the expression function glob(pattern, path). A missing path
// (nil, e.g. an absent parameter) matches nothing; other non-strings are an
// error, which fails the call closed.
func globFunc(args ...any) (any, error) {
	pattern, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("glob: the pattern must be a string, got %s", typeName(args[0]))
	}
	var target string
	switch t := args[1].(type) {
	case nil:
		return false, nil
	case string:
		target = t
	default:
		return nil, fmt.Errorf("glob: the path must be a string, got %s", typeName(args[1]))
	}
	return globMatch(pattern, target), nil
}

// globTyped is glob for typed calls (see fastCalls): an error panics, and
// expr turns the panic into the evaluation error.
func globTyped(pattern, path any) bool {
	ok, err := globFunc(pattern, path)
	if err != nil {
		panic(err)
	}
	return ok.(bool)
}

func globMatch(pattern, target string) bool {
	var comps []string
	if cached, ok := globPatterns.Load(pattern); ok {
		comps = cached.([]string)
	} else {
		comps = splitGlob(pattern)
	}
	if strings.HasPrefix(target, "/") {
		target = path.Clean(target)
	}
	return pathglob.Match(comps, target)
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int, int64, float64:
		return "a number"
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}
