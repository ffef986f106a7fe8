package mcpserver

import (
	"fmt"
	"io"
	"strings"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/secretref"
)

// resolveSecrets resolves the configuration's secret references (upstream
// env and headers, api_call endpoint headers, the introspection client
// secret) before anything is created: a server whose credentials cannot
// all be resolved does not start (fail closed), and says which and why.
func resolveSecrets(cfg *config.Config) (*config.Config, []config.Secret, error) {
	resolved, secrets, err := cfg.ResolveSecrets(secretref.OS(cfg.Source.Dir()))
	if err != nil {
		return nil, nil, fmt.Errorf("secret references that cannot be resolved (the server starts only when every one does; `agentmesh status` lists them):\n%w", err)
	}
	return resolved, secrets, nil
}

// warnSecrets says what weakens the redaction of the configured secrets.
func (rt *Runtime) warnSecrets() {
	if len(rt.secrets) == 0 {
		return
	}
	for _, s := range rt.secrets {
		if n := len(s.Value); n < config.ShortSecret {
			rt.warnf("%s is only %d characters long: it is easy to guess, and every occurrence of it in tool outputs and audit params is redacted", s.Where(), n)
		}
	}
	r := rt.Cfg.Redaction
	var off []string
	if !r.Enabled || !r.Outputs {
		off = append(off, "tool outputs (redaction.outputs)")
	}
	if !r.Enabled || !r.Params {
		off = append(off, "audit params (redaction.params)")
	}
	if len(off) > 0 {
		rt.warnf("redaction of %s is off: an upstream or API that echoes one of the %d configured secrets passes it on there", strings.Join(off, " and "), len(rt.secrets))
	}
}

// knownSecretsWriter removes the configured secrets from what an upstream
// writes to its stderr (one line per Write, as the proxy writes it) before
// it reaches the console.
type knownSecretsWriter struct {
	w io.Writer
	r *redact.Redactor
}

func (k knownSecretsWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(k.w, k.r.RedactKnown(string(b))); err != nil {
		return 0, err
	}
	return len(b), nil
}
