package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/redact"
)

// How fresh the audit log's checks must be under a framework: a
// verification (full or incremental) that passed within verifyFreshness,
// and a witness that followed the log's newest checkpoint within
// witnessFreshness of its signing (it is written at most ~100 ms after a
// commit, and at shutdown).
const (
	verifyFreshness  = 24 * time.Hour
	witnessFreshness = time.Minute
)

// complianceStatus is status's compliance section: the frameworks in
// force and, for each, its requirements and whether they are on.
type complianceStatus struct {
	Frameworks []string `json:"frameworks"`
	// Retention is the audit retention in force ("6y"), empty when none
	// is declared; Declared is audit.retention as written.
	Retention    string                  `json:"retention,omitempty"`
	Declared     string                  `json:"retention_declared,omitempty"`
	Requirements []complianceRequirement `json:"requirements"`
}

type complianceRequirement struct {
	Framework string `json:"framework"`
	Name      string `json:"name"`
	On        bool   `json:"on"`
	Detail    string `json:"detail"`
	// Critical: missing makes status critical (exit 1).
	Critical bool `json:"critical,omitempty"`
}

// describeCompliance checks each framework's requirements against the
// configuration and the audit log's health. It returns nil when no
// framework is on and nothing compliance-related is configured.
func describeCompliance(cfg *config.Config, a auditlog.Health, now time.Time) (cs *complianceStatus, critical, attention []string) {
	if len(cfg.Compliance) == 0 && cfg.Audit.Retention == 0 && !cfg.Redaction.PHI {
		return nil, nil, nil
	}
	cs = &complianceStatus{Frameworks: append([]string{}, cfg.Compliance...), Requirements: []complianceRequirement{}}
	if r := cfg.AuditRetention(); r > 0 {
		cs.Retention = r.String()
	}
	if cfg.Audit.Retention > 0 {
		cs.Declared = cfg.Audit.Retention.String()
	}
	verify := verificationFresh(a, now)
	witness := witnessFresh(cfg, a, now)
	add := func(fw, name string, on bool, detail string, crit bool) {
		cs.Requirements = append(cs.Requirements, complianceRequirement{Framework: fw, Name: name, On: on, Detail: detail, Critical: crit && !on})
		switch {
		case on:
		case crit:
			critical = append(critical, fmt.Sprintf("%s: %s: %s", fw, name, detail))
		default:
			attention = append(attention, fmt.Sprintf("%s requires %s: %s", fw, name, detail))
		}
	}
	if cfg.HIPAA() {
		phi := "on: " + strings.Join(redact.PHIRules(), ", ")
		outputs, params := cfg.PHIRedaction() && cfg.Redaction.Outputs, cfg.PHIRedaction() && cfg.Redaction.Params
		add(config.FrameworkHIPAA, "PHI redaction of tool outputs", outputs, onOr(outputs, phi, "off: redaction.enabled and redaction.outputs must be true"), false)
		add(config.FrameworkHIPAA, "PHI redaction of audit params", params, onOr(params, phi, "off: redaction.enabled and redaction.params must be true"), false)
		ret := cfg.AuditRetention()
		add(config.FrameworkHIPAA, "audit retention of at least 6y", ret >= config.HIPAARetention, retentionDetail(cfg), false)
		add(config.FrameworkHIPAA, "a fresh audit witness", witness == "", onOr(witness == "", "the witness follows the log", witness), true)
		add(config.FrameworkHIPAA, "a fresh audit verification", verify == "", onOr(verify == "", "passed within 24h", verify), true)
	}
	if cfg.HasFramework(config.FrameworkSOC2) {
		add(config.FrameworkSOC2, "an audit witness", witness == "", onOr(witness == "", "the witness follows the log", witness), false)
		// status already says when the log was not verified for a day.
		cs.Requirements = append(cs.Requirements, complianceRequirement{Framework: config.FrameworkSOC2, Name: "a fresh audit verification",
			On: verify == "", Detail: onOr(verify == "", "passed within 24h", verify)})
		red := cfg.Redaction.Enabled && cfg.Redaction.Outputs && cfg.Redaction.Params
		add(config.FrameworkSOC2, "redaction of outputs and audit params", red, onOr(red, "on", "off: redaction.enabled, outputs and params must be true"), false)
	}
	return cs, critical, attention
}

func onOr(on bool, yes, no string) string {
	if on {
		return yes
	}
	return no
}

func retentionDetail(cfg *config.Config) string {
	if cfg.Audit.Retention == 0 {
		return config.HIPAARetention.String() + " (the HIPAA minimum: audit.retention declares none)"
	}
	return cfg.Audit.Retention.String() + " declared in audit.retention"
}

// verificationFresh says why the last verification is not fresh ("" when
// it is).
func verificationFresh(a auditlog.Health, now time.Time) string {
	lv := a.LastVerification
	switch {
	case a.FailedVerification != nil:
		return "the last verification failed and no full one passed since"
	case lv == nil:
		return "the log was never verified (`agentmesh audit verify`, e.g. hourly `--incremental` and a daily full run)"
	case !lv.OK:
		return "the last verification failed"
	case now.Sub(lv.At) > verifyFreshness:
		return fmt.Sprintf("stale: the last verification passed %s ago, more than %s (`agentmesh audit verify`)", now.Sub(lv.At).Round(time.Minute), verifyFreshness)
	}
	return ""
}

// witnessFresh says why the local witness is off or stale ("" when it
// follows the log).
func witnessFresh(cfg *config.Config, a auditlog.Health, now time.Time) string {
	switch {
	case !cfg.Audit.Witness:
		return "off: audit.witness is false (nothing outside the state directory detects a rollback)"
	case a.WitnessProblem != "":
		return a.WitnessProblem
	case a.Checkpoint == nil:
		return "" // nothing signed yet, nothing to witness
	case a.Witness == nil:
		return "no witness of the signed log"
	case a.Witness.Size < a.Checkpoint.Size && now.Sub(a.Checkpoint.Time) > witnessFreshness:
		return fmt.Sprintf("stale: the witness holds tree size %d of %d, signed %s ago (its writes are failing?)", a.Witness.Size, a.Checkpoint.Size, now.Sub(a.Checkpoint.Time).Round(time.Second))
	}
	return ""
}

// printCompliance prints the compliance section of `status`.
func printCompliance(g *globals, cs *complianceStatus) {
	if cs == nil {
		return
	}
	frameworks := "none"
	if len(cs.Frameworks) > 0 {
		frameworks = strings.Join(cs.Frameworks, ", ")
	}
	retention := ""
	if cs.Retention != "" {
		retention = "; audit retention " + cs.Retention
	}
	fmt.Fprintf(g.io.Out, "\nCompliance: %s%s\n", frameworks, retention)
	if len(cs.Requirements) == 0 {
		return
	}
	rows := make([][]string, len(cs.Requirements))
	for i, r := range cs.Requirements {
		state := "✓ on"
		if !r.On {
			state = "✗ missing"
		}
		rows[i] = []string{r.Framework, r.Name, state, r.Detail}
	}
	format, _ := g.format()
	g.io.Rows(format, []string{"framework", "requirement", "state", "detail"}, rows)
}
