// Package pathglob matches slash-separated paths against patterns, by
// component, the way capability scopes, policy glob() and the filesystem
// tools' blocked globs all need: "*" inside a component matches any run of
// characters within that component, and a "**" component matches any run of
// components (none included). Matching compares components, never string
// prefixes, so "/data/*" can never match "/database".
package pathglob

import "strings"

// Component reports whether name matches pattern, where "*" matches any
// run of characters (name holds no "/"). Every other character matches
// itself. It allocates nothing.
func Component(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	// Greedy matching with backtracking to the last star: O(len·len) at
	// worst, linear in practice.
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && pattern[p] == name[n]:
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Match reports whether the components of target (split at "/") match pat,
// where a "**" element matches any run of components and other elements
// match one component with Component. It is the classic wildcard algorithm
// lifted from characters to components, backtracking only to the last
// "**" (O(len(pat)·components) at worst), and walks target by byte offsets
// without allocating.
func Match(pat []string, target string) bool {
	end := len(target) + 1 // offset past the last component: exhausted
	comp := func(t int) (string, int) {
		rest := target[t:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[:i], t + i + 1
		}
		return rest, end
	}
	p, t := 0, 0
	starP, starT := -1, 0
	for t < end {
		if p < len(pat) && pat[p] == "**" {
			starP, starT = p, t
			p++
			continue
		}
		if p < len(pat) {
			c, next := comp(t)
			if Component(pat[p], c) {
				p, t = p+1, next
				continue
			}
		}
		if starP < 0 {
			return false
		}
		_, starT = comp(starT) // the last "**" takes one more component
		p, t = starP+1, starT
	}
	for p < len(pat) && pat[p] == "**" {
		p++
	}
	return p == len(pat)
}
