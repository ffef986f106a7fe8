package main

import (
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/config"
)

// TestComplianceFreshness: under HIPAA a verification older than 24 hours
// or a witness that stopped following the log is critical; under SOC 2
// alone the witness is an attention point.
func TestComplianceFreshness(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cp := &auditlog.CheckpointView{Size: 40, Time: now.Add(-10 * time.Minute)}
	fresh := auditlog.Health{Checkpoint: cp, Witness: &auditlog.CheckpointView{Size: 40},
		LastVerification: &auditlog.LastVerification{At: now.Add(-23 * time.Hour), Mode: "incremental", OK: true}}
	hipaa := config.Default()
	hipaa.Compliance = []string{config.FrameworkHIPAA}
	soc2 := config.Default()
	soc2.Compliance = []string{config.FrameworkSOC2}

	tests := []struct {
		name     string
		cfg      config.Config
		health   func(h auditlog.Health) auditlog.Health
		critical string // substring of the one critical line; "" for none
	}{
		{"fresh", hipaa, func(h auditlog.Health) auditlog.Health { return h }, ""},
		{"verified 25h ago", hipaa, func(h auditlog.Health) auditlog.Health {
			h.LastVerification = &auditlog.LastVerification{At: now.Add(-25 * time.Hour), Mode: "full", OK: true}
			return h
		}, "a fresh audit verification: stale: the last verification passed 25h0m0s ago"},
		{"last run failed", hipaa, func(h auditlog.Health) auditlog.Health {
			h.LastVerification = &auditlog.LastVerification{At: now, Mode: "full", OK: false}
			h.FailedVerification = h.LastVerification
			return h
		}, "a fresh audit verification: the last verification failed"},
		{"witness behind for 10 minutes", hipaa, func(h auditlog.Health) auditlog.Health {
			h.Witness = &auditlog.CheckpointView{Size: 31}
			return h
		}, "a fresh audit witness: stale: the witness holds tree size 31 of 40"},
		{"witness behind a checkpoint signed just now", hipaa, func(h auditlog.Health) auditlog.Health {
			h.Checkpoint = &auditlog.CheckpointView{Size: 41, Time: now.Add(-50 * time.Millisecond)}
			return h
		}, ""},
		{"witness missing", hipaa, func(h auditlog.Health) auditlog.Health { h.Witness = nil; return h }, "a fresh audit witness: no witness"},
		{"soc2: stale is not critical", soc2, func(h auditlog.Health) auditlog.Health {
			h.Witness = &auditlog.CheckpointView{Size: 31}
			h.LastVerification.At = now.Add(-48 * time.Hour)
			return h
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, crit, att := describeCompliance(&tt.cfg, tt.health(fresh), now)
			if cs == nil {
				t.Fatal("no compliance section")
			}
			got := strings.Join(crit, "\n")
			if tt.critical == "" && got != "" || tt.critical != "" && (len(crit) != 1 || !strings.Contains(got, tt.critical)) {
				t.Errorf("critical %q, want %q", crit, tt.critical)
			}
			if tt.name == "soc2: stale is not critical" && (len(att) != 1 || !strings.Contains(att[0], "soc2 requires an audit witness: stale")) {
				t.Errorf("attention %q", att)
			}
		})
	}
	none := config.Default()
	if cs, crit, att := describeCompliance(&none, fresh, now); cs != nil || crit != nil || att != nil {
		t.Errorf("no framework: %+v %q %q", cs, crit, att)
	}
}
