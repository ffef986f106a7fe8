package scope

import (
	"fmt"
	"strings"
	"time"
)

// Action is what a tool does to a resource.
type Action string

// The actions of DESIGN.md.
const (
	Read    Action = "read"
	List    Action = "list"
	Write   Action = "write"
	Query   Action = "query"
	Call    Action = "call"
	Execute Action = "execute"
)

// Actions lists every action, in documentation order.
var Actions = []Action{Read, List, Write, Query, Call, Execute}

// ParseAction checks that s names a known action.
func ParseAction(s string) (Action, error) {
	for _, a := range Actions {
		if string(a) == s {
			return a, nil
		}
	}
	names := make([]string, len(Actions))
	for i, a := range Actions {
		names[i] = string(a)
	}
	return "", fmt.Errorf("unknown action %q (want one of %s)", s, strings.Join(names, ", "))
}

// Scope grants actions on resources until it expires. It is what a
// credential carries, one per configured capability scope.
type Scope struct {
	Resources []Resource
	Actions   []Action
	// Expires is when the grant ends; the zero time never matches (a scope
	// without an expiry grants nothing).
	Expires time.Time
}

// Grant is the wire form of a scope inside a credential.
type Grant struct {
	Resources []string `json:"resources"`
	Actions   []string `json:"actions"`
	// Expires is Unix seconds.
	Expires int64 `json:"exp"`
}

// Parse checks a grant and returns the scope it describes.
func (g Grant) Parse() (Scope, error) {
	if len(g.Resources) == 0 {
		return Scope{}, fmt.Errorf("scope grants no resources")
	}
	if len(g.Actions) == 0 {
		return Scope{}, fmt.Errorf("scope grants no actions")
	}
	s := Scope{Expires: time.Unix(g.Expires, 0).UTC()}
	for _, r := range g.Resources {
		res, err := ParseResource(r)
		if err != nil {
			return Scope{}, err
		}
		s.Resources = append(s.Resources, res)
	}
	for _, a := range g.Actions {
		act, err := ParseAction(a)
		if err != nil {
			return Scope{}, err
		}
		s.Actions = append(s.Actions, act)
	}
	return s, nil
}

// Grant returns the wire form of s.
func (s Scope) Grant() Grant {
	g := Grant{Expires: s.Expires.Unix()}
	for _, r := range s.Resources {
		g.Resources = append(g.Resources, r.String())
	}
	for _, a := range s.Actions {
		g.Actions = append(g.Actions, string(a))
	}
	return g
}

// Allows reports whether the scope, at time now, permits action on the
// target resource of the given kind. An expired scope grants nothing.
func (s Scope) Allows(now time.Time, kind Kind, target string, action Action) bool {
	if s.Expires.IsZero() || !now.Before(s.Expires) {
		return false
	}
	actionOK := false
	for _, a := range s.Actions {
		if a == action {
			actionOK = true
			break
		}
	}
	if !actionOK {
		return false
	}
	for _, r := range s.Resources {
		if r.Covers(kind, target) {
			return true
		}
	}
	return false
}

// Set is every scope a credential carries.
type Set []Scope

// Allows reports whether any scope in the set permits the access.
func (set Set) Allows(now time.Time, kind Kind, target string, action Action) bool {
	for _, s := range set {
		if s.Allows(now, kind, target, action) {
			return true
		}
	}
	return false
}
