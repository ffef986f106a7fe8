package filesystem

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// Limits of a virtual path, as Linux's PATH_MAX and NAME_MAX.
const (
	MaxPathLen      = 4096
	MaxComponentLen = 255
)

// Clean canonicalises a virtual path the way the tools do before looking
// for its mount: it must be absolute ("/..."), valid UTF-8 without NUL
// bytes, backslashes or control characters, at most MaxPathLen bytes with
// components of at most MaxComponentLen bytes; empty and "." components are
// dropped and ".." removes the previous component. A ".." that would climb
// above "/" is refused. The result never contains "..", "." or empty
// components. Percent signs and other characters are taken literally:
// nothing is decoded.
func Clean(p string) (string, error) {
	vp, _, err := cleanPath(p)
	return vp, err
}

// cleanPath is Clean that also reports the lowest depth a ".." brought the
// path to (-1 if there was no ".."), so that a caller can refuse a path
// that leaves its mount on the way ("/data/../data/x" passes through "/").
func cleanPath(p string) (vp string, lowest int, err error) {
	if err := checkChars(p); err != nil {
		return "", 0, err
	}
	for _, comp := range strings.Split(p, "/") {
		if dec, err := url.PathUnescape(comp); err == nil && comp != ".." && (dec == ".." || dec == ".") && comp != "." {
			return "", 0, tools.Refuse("traversal", "%s hides a dot segment in percent-encoding (%q); virtual paths are not URL-encoded", quoteVirtual(p), comp)
		}
	}
	if !strings.HasPrefix(p, "/") {
		if slices.Contains(strings.Split(p, "/"), "..") {
			return "", 0, tools.Refuse("traversal", "%s climbs with %q from a relative path; virtual paths start with / (like /data/users.json)", quoteVirtual(p), "..")
		}
		return "", 0, tools.Refuse("path", "%s is not a virtual path: virtual paths start with / (like /data/users.json)", quoteVirtual(p))
	}
	lowest = -1
	stack := make([]string, 0, strings.Count(p, "/"))
	for rest := p[1:]; ; {
		var comp string
		var more bool
		comp, rest, more = strings.Cut(rest, "/")
		switch comp {
		case "", ".":
		case "..":
			if len(stack) == 0 {
				return "", 0, tools.Refuse("traversal", "%s climbs above / with %q", quoteVirtual(p), "..")
			}
			stack = stack[:len(stack)-1]
			if lowest < 0 || len(stack) < lowest {
				lowest = len(stack)
			}
		default:
			if len(comp) > MaxComponentLen {
				return "", 0, tools.Refuse("path", "a component of %s is %d bytes long; the limit is %d", quoteVirtual(p), len(comp), MaxComponentLen)
			}
			stack = append(stack, comp)
		}
		if !more {
			break
		}
	}
	return "/" + strings.Join(stack, "/"), lowest, nil
}

func checkChars(p string) error {
	switch {
	case p == "":
		return tools.Refuse("path", "the path is empty")
	case len(p) > MaxPathLen:
		return tools.Refuse("path", "the path is %d bytes long; the limit is %d", len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return tools.Refuse("path", "the path is not valid UTF-8")
	}
	for _, r := range p {
		switch {
		case r == 0:
			return tools.Refuse("traversal", "the path contains a NUL byte, which truncates paths in C APIs")
		case r == '\\':
			if strings.HasPrefix(p, `\\`) || slices.Contains(strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }), "..") {
				return tools.Refuse("traversal", "%s reaches for another host or climbs with %q behind backslashes; virtual paths use / as the separator", quoteVirtual(p), "..")
			}
			return tools.Refuse("path", "%s contains a backslash: virtual paths use / as the separator (like /data/users.json)", quoteVirtual(p))
		case unicode.IsControl(r):
			return tools.Refuse("path", "the path contains the control character %U", r)
		}
	}
	return nil
}

// quoteVirtual quotes a path from a caller for a message, shortened so a
// 5000-byte path does not flood the audit log. It is the caller's own
// string, never a host path.
func quoteVirtual(p string) string {
	const max = 120
	if len(p) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(p[cut]) {
			cut--
		}
		return strconv.Quote(p[:cut]) + "..."
	}
	return strconv.Quote(p)
}

// splitVirtual splits a clean virtual path into components; "/" has none.
func splitVirtual(vp string) []string {
	if vp == "/" {
		return nil
	}
	return strings.Split(vp[1:], "/")
}

// hasPrefix compares components, never bytes: ["database"] does not have
// the prefix ["data"].
func hasPrefix(comps, prefix []string) bool {
	if len(comps) < len(prefix) {
		return false
	}
	for i, c := range prefix {
		if comps[i] != c {
			return false
		}
	}
	return true
}

// joinVirtual appends a relative path ("." or "a/b") to a mount.
func joinVirtual(mount, rel string) string {
	if rel == "." || rel == "" {
		return mount
	}
	return mount + "/" + rel
}
