package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]Retention{"0d": 0, "0": 0, "2190d": 2190, "6y": 2190, "7y": 2555, "100d": 100} {
		got, err := ParseRetention(in)
		if err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "6", "6 y", "-1d", "+3d", "2190h", "1.5y", "y", "99999y"} {
		if _, err := ParseRetention(bad); err == nil {
			t.Errorf("ParseRetention(%q) accepted", bad)
		}
	}
	for r, want := range map[Retention]string{2190: "6y", 2191: "2191d", 0: "0d", 365: "1y"} {
		if r.String() != want {
			t.Errorf("%d days prints %q, want %q", int(r), r.String(), want)
		}
	}
}

func TestComplianceConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agentmesh.yaml")
	cfg, err := Parse(file, []byte("compliance: [soc2, hipaa]\naudit:\n  retention: 7y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.HIPAA() || !cfg.HasFramework(FrameworkSOC2) || cfg.AuditRetention() != 7*365 {
		t.Errorf("parsed %v, retention %s", cfg.Compliance, cfg.AuditRetention())
	}
	if !cfg.PHIRedaction() || !cfg.RedactOptions().PHI {
		t.Error("hipaa does not turn the PHI detectors on")
	}

	// hipaa with no retention declared: six years.
	cfg, err = Parse(file, []byte("compliance: [hipaa]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AuditRetention() != HIPAARetention || cfg.Audit.Retention != 0 {
		t.Errorf("retention %s (declared %s), want 6y in force", cfg.AuditRetention(), cfg.Audit.Retention)
	}

	// Without hipaa nothing changes: PHI off, no retention.
	cfg, err = Parse(file, []byte("compliance: [soc2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PHIRedaction() || cfg.AuditRetention() != 0 {
		t.Errorf("soc2 alone: PHI %v, retention %s", cfg.PHIRedaction(), cfg.AuditRetention())
	}
	cfg, err = Parse(file, []byte("redaction:\n  phi: true\n"))
	if err != nil || !cfg.RedactOptions().PHI {
		t.Errorf("redaction.phi: true: %v, %+v", err, cfg)
	}
	cfg, err = Parse(file, []byte("compliance: [hipaa]\nredaction:\n  enabled: false\n"))
	if err != nil || cfg.PHIRedaction() {
		t.Errorf("redaction disabled still reports PHI redaction: %v", err)
	}

	for _, bad := range []struct{ yaml, want string }{
		{"compliance: [hipaa]\naudit:\n  retention: 5y\n", "agentmesh.yaml:3:14: HIPAA (compliance: [hipaa]) requires audit records to be kept at least 6y (2190d"},
		{"compliance: [hipaa]\naudit:\n  retention: 2189d\n", "audit.retention is 2189d"},
		{"compliance: [pci]\n", `agentmesh.yaml:1:14: unknown compliance framework "pci" (known: hipaa, soc2)`},
		{"compliance: [soc2, soc2]\n", `agentmesh.yaml:1:20: framework "soc2" is listed twice`},
		{"audit:\n  retention: 6\n", `agentmesh.yaml:2:14: audit.retention: expected a retention in days or years`},
		{"audit:\n  retention: 6 years\n", `got "6 years"`},
	} {
		_, err := Parse(file, []byte(bad.yaml))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error containing %q", bad.yaml, err, bad.want)
		}
	}
	// A long enough retention is accepted under hipaa.
	if _, err := Parse(file, []byte("compliance: [hipaa]\naudit:\n  retention: 2190d\n")); err != nil {
		t.Errorf("2190d under hipaa: %v", err)
	}
}
