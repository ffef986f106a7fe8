package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/secretref"
	"github.com/agentmesh/agentmesh/pkg/ui"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// secretStatus is one secret reference of the configuration as status
// reports it: where it is and whether it resolves now, never its value.
type secretStatus struct {
	// Key is the configuration key holding the reference.
	Key string `json:"key"`
	// Source is FILE:LINE:COL of the value.
	Source string `json:"source,omitempty"`
	Scheme string `json:"scheme"`
	// Name is the environment variable, or the path as written.
	Name string `json:"name"`
	// Path is the absolute path of a file reference.
	Path     string `json:"path,omitempty"`
	Resolves bool   `json:"resolves"`
	Problem  string `json:"problem,omitempty"`
}

// describeSecrets resolves every secret reference as serve would, in this
// process's environment, and keeps only whether it worked. A file that
// cannot be used is critical (serve would refuse to start whatever its
// environment); an unset variable needs attention, since serve may be
// started with an environment this shell does not have (Claude Desktop's
// "env").
func describeSecrets(cfg *config.Config) (v []secretStatus, critical, attention []string) {
	v = []secretStatus{}
	r := secretref.OS(cfg.Source.Dir())
	allResolve := true
	for _, ref := range cfg.SecretRefs() {
		s := secretStatus{Key: ref.Key, Source: ref.Pos.String(), Scheme: string(ref.Ref.Scheme), Name: ref.Ref.Arg}
		if ref.Ref.Scheme == secretref.File {
			s.Path, _ = r.Path(ref.Ref)
		}
		value, err := r.Resolve(ref.Ref)
		switch {
		case err != nil:
			allResolve = false
			s.Problem = strings.TrimPrefix(err.Error(), ref.Ref.String()+": ")
			if ref.Ref.Scheme == secretref.Env {
				attention = append(attention, fmt.Sprintf("%s: %s: serve refuses to start unless its environment sets it", ref.Where(), s.Problem))
			} else {
				critical = append(critical, fmt.Sprintf("%s: %s: serve refuses to start", ref.Where(), s.Problem))
			}
		case len(value) < config.ShortSecret:
			s.Resolves = true
			attention = append(attention, fmt.Sprintf("%s is only %d characters long: easy to guess, and redacted wherever it occurs", ref.Where(), len(value)))
		default:
			s.Resolves = true
		}
		v = append(v, s)
	}
	if len(v) == 0 {
		return v, critical, attention
	}
	// What every reference resolving does not prove: the values fit where
	// they go (a header cannot hold a line break).
	if _, _, err := cfg.ResolveSecrets(r); err != nil && allResolve {
		var list yamlpos.ErrorList
		if errors.As(err, &list) {
			for _, e := range list {
				critical = append(critical, e.Error()+": serve refuses to start")
			}
		} else {
			critical = append(critical, err.Error())
		}
	}
	if red := cfg.Redaction; !red.Enabled || !red.Outputs {
		attention = append(attention, fmt.Sprintf("redaction of tool outputs is off: an upstream or API that echoes one of the %d configured secrets passes it to the model", len(v)))
	}
	return v, critical, attention
}

// secretFields are the status lines of the secret references.
func secretFields(secrets []secretStatus) []ui.Field {
	var fields []ui.Field
	for _, s := range secrets {
		state := "resolves"
		if !s.Resolves {
			state = "DOES NOT RESOLVE: " + s.Problem
		}
		fields = append(fields, ui.Field{Label: "secret", Value: fmt.Sprintf("%s: ${%s:%s} %s", s.Key, s.Scheme, s.Name, state), Attention: !s.Resolves})
	}
	return fields
}
