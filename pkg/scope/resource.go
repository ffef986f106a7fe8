// Package scope implements capability scopes: which resources a credential
// lets the server touch, with which actions, until when.
//
// A resource is written KIND:PATTERN (DESIGN.md, "Tools see virtual paths;
// scopes name resources"):
//
//	filesystem:/data/*             virtual paths under a filesystem mount
//	database:users                 a configured database, by name
//	api:https://api.weather.com/*  URLs, scheme and host exact, path by pattern
//	code:starlark                  a code-execution language
//	mcp:github/*                   tools of an upstream MCP server
//
// Patterns compare path components, never string prefixes: "/data/*" covers
// "/data" and everything below it but never "/database"; without a trailing
// "/*" a pattern is exact; a "*" inside a component matches within that
// component only ("/logs/*.txt" covers "/logs/a.txt", not "/logs/a/b.txt").
package scope

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/pathglob"
)

// Kind is the resource family a pattern applies to.
type Kind string

// The resource kinds of DESIGN.md.
const (
	Filesystem Kind = "filesystem"
	Database   Kind = "database"
	API        Kind = "api"
	Code       Kind = "code"
	MCP        Kind = "mcp"
)

// Kinds lists every resource kind, in documentation order.
var Kinds = []Kind{Filesystem, Database, API, Code, MCP}

func (k Kind) valid() bool {
	for _, known := range Kinds {
		if k == known {
			return true
		}
	}
	return false
}

// maxPatternLen bounds patterns so matching cost stays predictable.
const maxPatternLen = 2048

// Resource is a parsed resource pattern.
type Resource struct {
	Kind    Kind
	Pattern string // as written after "KIND:"

	// origin is "scheme://host[:port]" for api patterns, matched exactly
	// (case-insensitively); empty otherwise.
	origin string
	// path is the component pattern: for filesystem and api a rooted path,
	// for database and code a single name, for mcp "upstream/tool".
	path pathPattern
}

// String returns the resource as written: "KIND:PATTERN".
func (r Resource) String() string { return string(r.Kind) + ":" + r.Pattern }

// ParseResource parses "KIND:PATTERN".
func ParseResource(s string) (Resource, error) {
	kindStr, pattern, ok := strings.Cut(s, ":")
	if !ok {
		return Resource{}, fmt.Errorf("resource %q has no kind: write KIND:PATTERN with KIND one of %s", s, kindList())
	}
	kind := Kind(kindStr)
	if !kind.valid() {
		return Resource{}, fmt.Errorf("resource %q: unknown kind %q (want one of %s)", s, kindStr, kindList())
	}
	if pattern == "" {
		return Resource{}, fmt.Errorf("resource %q: empty pattern after %q", s, kindStr+":")
	}
	if len(pattern) > maxPatternLen {
		return Resource{}, fmt.Errorf("resource %q...: pattern longer than %d bytes", s[:32], maxPatternLen)
	}
	if strings.ContainsAny(pattern, "\x00\\") {
		return Resource{}, fmt.Errorf("resource %q: NUL bytes and backslashes are not allowed in patterns", s)
	}
	r := Resource{Kind: kind, Pattern: pattern}
	var err error
	switch kind {
	case Filesystem:
		r.path, err = parseRootedPath(pattern)
	case API:
		r.origin, r.path, err = parseURLPattern(pattern)
	case Database, Code:
		r.path, err = parseRelative(pattern, 1)
	case MCP:
		r.path, err = parseRelative(pattern, 2)
	}
	if err != nil {
		return Resource{}, fmt.Errorf("resource %q: %w", s, err)
	}
	return r, nil
}

func kindList() string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// Covers reports whether the resource pattern covers target, a resource of
// the same kind written without the "KIND:" prefix (a virtual path, a
// database name, a URL, a language, "upstream/tool"). Targets that are not
// in canonical form ("." or ".." components, empty components, a relative
// filesystem path) are never covered: callers must canonicalise first, and a
// mistake there fails closed.
func (r Resource) Covers(kind Kind, target string) bool {
	if kind != r.Kind {
		return false
	}
	switch r.Kind {
	case Filesystem:
		if !strings.HasPrefix(target, "/") {
			return false
		}
		return r.path.match(target[1:])
	case API:
		origin, rest, ok := splitOrigin(target)
		if !ok || !strings.EqualFold(origin, r.origin) {
			return false
		}
		return r.path.match(strings.TrimPrefix(rest, "/"))
	default:
		return r.path.match(target)
	}
}

// pathPattern matches slash-separated components.
type pathPattern struct {
	comps []string
	// subtree is set for a trailing "/*": the pattern covers the parent
	// and everything below it.
	subtree bool
}

func parseRootedPath(p string) (pathPattern, error) {
	if !strings.HasPrefix(p, "/") {
		return pathPattern{}, fmt.Errorf("filesystem patterns are virtual paths and must start with /")
	}
	if p == "/" {
		return pathPattern{}, fmt.Errorf(`"/" alone names nothing; write "/*" to cover every mount`)
	}
	return parseRelative(p[1:], 0)
}

// parseRelative parses components; want > 0 demands exactly that many
// components (a trailing "/*" counts as one).
func parseRelative(p string, want int) (pathPattern, error) {
	if p == "*" && want != 1 {
		return pathPattern{subtree: true}, nil
	}
	comps := strings.Split(p, "/")
	if want > 0 && len(comps) != want {
		return pathPattern{}, fmt.Errorf("want %d component(s) separated by /, got %d", want, len(comps))
	}
	pp := pathPattern{}
	if len(comps) > 1 && comps[len(comps)-1] == "*" {
		pp.subtree = true
		comps = comps[:len(comps)-1]
	}
	for _, c := range comps {
		switch c {
		case "":
			return pathPattern{}, fmt.Errorf("empty path component (double or trailing slash)")
		case ".", "..":
			return pathPattern{}, fmt.Errorf("%q components are not allowed in patterns", c)
		}
	}
	pp.comps = comps
	return pp, nil
}

func parseURLPattern(p string) (origin string, pp pathPattern, err error) {
	origin, rest, ok := splitOrigin(p)
	if !ok {
		return "", pathPattern{}, fmt.Errorf("api patterns are URLs: http(s)://host[:port]/path")
	}
	if strings.Contains(origin, "*") {
		return "", pathPattern{}, fmt.Errorf("wildcards are not allowed in the scheme or host: name each host")
	}
	if rest == "" || rest == "/" {
		return origin, pathPattern{}, nil // exactly the root path
	}
	pp, err = parseRelative(strings.TrimPrefix(rest, "/"), 0)
	return origin, pp, err
}

// splitOrigin splits "scheme://host:port/path?q" into the origin and the
// path (query and fragment dropped), rejecting userinfo and non-HTTP schemes.
func splitOrigin(s string) (origin, path string, ok bool) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", "", false
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), u.EscapedPath(), true
}

// match reports whether target (slash-separated, no leading slash) is
// covered. It allocates nothing.
func (p pathPattern) match(target string) bool {
	if strings.HasSuffix(target, "/") || strings.Contains(target, "//") {
		return false
	}
	rest := target
	for _, pc := range p.comps {
		if rest == "" {
			return false // target shorter than the pattern
		}
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		if !componentOK(comp) || !pathglob.Component(pc, comp) {
			return false
		}
	}
	if rest == "" {
		return true
	}
	if !p.subtree {
		return false
	}
	for rest != "" { // everything below must be canonical too
		var comp string
		comp, rest, _ = strings.Cut(rest, "/")
		if !componentOK(comp) {
			return false
		}
	}
	return true
}

func componentOK(c string) bool {
	return c != "" && c != "." && c != ".."
}
