package config

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agentmesh/agentmesh/pkg/redact"
)

// Compliance frameworks (`compliance:` in agentmesh.yaml). Each turns on
// what it requires, and `agentmesh status` shows what is on and what is
// missing (docs/compliance.md).
const (
	// FrameworkSOC2: SOC 2 controls mapped to what agentmesh enforces and
	// records (`agentmesh compliance report --framework soc2`).
	FrameworkSOC2 = "soc2"
	// FrameworkHIPAA: the PHI detectors redact outputs and audit params,
	// audit.retention is at least six years, and status is critical when
	// the audit witness or verification is stale.
	FrameworkHIPAA = "hipaa"
)

// Frameworks are the compliance frameworks agentmesh knows, sorted.
var Frameworks = []string{FrameworkHIPAA, FrameworkSOC2}

// HIPAARetention is the shortest audit retention HIPAA allows: documentation
// of the Security Rule's required activities is kept six years
// (45 CFR 164.316(b)(2)(i)).
const HIPAARetention Retention = 6 * 365

// Retention is how long audit entries are kept, in days. It is written in
// days or years ("2190d", "6y"; a year counts 365 days, so 6y is 2190d);
// zero ("0d") declares nothing. agentmesh never deletes audit entries: the
// value is the operator's declared minimum (backups, archives), recorded in
// the configuration and shown by status, and checked against the
// frameworks that set one.
type Retention int

// ParseRetention parses "Nd" or "Ny".
func ParseRetention(s string) (Retention, error) {
	bad := fmt.Errorf("expected a retention in days or years such as \"2190d\" or \"6y\", got %q", s)
	if len(s) < 2 {
		if s == "0" {
			return 0, nil
		}
		return 0, bad
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 0 || n > 1000*365 || strings.HasPrefix(s, "+") {
		return 0, bad
	}
	switch s[len(s)-1] {
	case 'd':
		return Retention(n), nil
	case 'y':
		if n > 1000 {
			return 0, bad
		}
		return Retention(n * 365), nil
	}
	return 0, bad
}

// Days is the retention in days.
func (r Retention) Days() int { return int(r) }

// String writes whole years as "6y", other values as days ("100d").
func (r Retention) String() string {
	if r > 0 && r%365 == 0 {
		return strconv.Itoa(int(r)/365) + "y"
	}
	return strconv.Itoa(int(r)) + "d"
}

// UnmarshalYAML accepts "Nd" or "Ny"; a bare number is an error because
// its unit would be a guess.
func (r *Retention) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		return fmt.Errorf("expected a retention in days or years such as \"2190d\" or \"6y\", got %q", n.Value)
	}
	v, err := ParseRetention(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML writes the retention as text.
func (r Retention) MarshalYAML() (any, error) { return r.String(), nil }

// HasFramework reports whether `compliance:` lists the framework.
func (c *Config) HasFramework(name string) bool {
	for _, f := range c.Compliance {
		if f == name {
			return true
		}
	}
	return false
}

// HIPAA reports whether `compliance:` lists hipaa.
func (c *Config) HIPAA() bool { return c.HasFramework(FrameworkHIPAA) }

// PHIRedaction reports whether the PHI detectors run: redaction.phi, or
// the hipaa framework, with redaction enabled.
func (c *Config) PHIRedaction() bool {
	return c.Redaction.Enabled && (c.Redaction.PHI || c.HIPAA())
}

// AuditRetention is the retention in force: audit.retention, or HIPAA's
// six years when hipaa is on and none is declared.
func (c *Config) AuditRetention() Retention {
	if c.Audit.Retention == 0 && c.HIPAA() {
		return HIPAARetention
	}
	return c.Audit.Retention
}

// RedactOptions are the detectors and limits the redaction settings (and
// the compliance frameworks) ask for.
func (c *Config) RedactOptions() redact.Options {
	return redact.Options{
		Timeout:         c.Redaction.Timeout.D(),
		DisableGitleaks: !c.Redaction.Gitleaks,
		DisablePII:      !c.Redaction.PII,
		PHI:             c.PHIRedaction(),
	}
}

func (v *validator) checkCompliance(c *Config) {
	seen := map[string]bool{}
	for i, f := range c.Compliance {
		p := fmt.Sprintf("compliance[%d]", i)
		switch f {
		case FrameworkSOC2, FrameworkHIPAA:
		default:
			v.errorf(p, "unknown compliance framework %q (known: %s)", f, strings.Join(Frameworks, ", "))
		}
		if seen[f] {
			v.errorf(p, "framework %q is listed twice", f)
		}
		seen[f] = true
	}
	if r := c.Audit.Retention; c.HIPAA() && r != 0 && r < HIPAARetention {
		v.errorf("audit.retention", "HIPAA (compliance: [hipaa]) requires audit records to be kept at least %s (%dd, 45 CFR 164.316(b)(2)(i)); audit.retention is %s: raise it, or remove it to declare %s",
			HIPAARetention, HIPAARetention.Days(), r, HIPAARetention)
	}
}
