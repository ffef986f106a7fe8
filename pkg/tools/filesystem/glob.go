package filesystem

import (
	"errors"
	"path"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/pathglob"
)

// glob is a blocked-path pattern over virtual path components:
//
//   - "**" as a whole component matches zero or more components
//     ("**/.ssh/**" matches "/data/.ssh" and everything below it);
//   - any other component is a path.Match pattern within one component
//     ("*.pem", "id_rsa*", "[ab]c");
//   - a pattern is anchored at "/" whether or not it starts with one, so
//     "**/.env" matches ".env" in every directory of every mount.
//
// Matching is case-insensitive: on a case-insensitive filesystem ".ENV" is
// ".env", and blocking too much is the safe side of that mistake.
type glob struct {
	pattern string
	comps   []string // lower-cased
}

func parseGlob(p string) (glob, error) {
	trimmed := strings.TrimPrefix(p, "/")
	if trimmed == "" {
		return glob{}, errors.New("empty pattern")
	}
	if strings.ContainsAny(trimmed, "\x00\\") {
		return glob{}, errors.New("NUL bytes and backslashes are not allowed")
	}
	comps := strings.Split(strings.ToLower(trimmed), "/")
	for _, c := range comps {
		if c == "" {
			return glob{}, errors.New("empty component (double or trailing slash)")
		}
		if _, err := path.Match(c, ""); err != nil {
			return glob{}, err
		}
	}
	return glob{pattern: p, comps: comps}, nil
}

// match reports whether the clean virtual path vp matches, comparing
// components case-insensitively.
func (g glob) match(vp string) bool {
	if vp == "/" {
		return false
	}
	return pathglob.Match(g.comps, strings.ToLower(vp[1:]))
}
