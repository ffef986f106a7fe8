package main

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/compliance"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
)

func newComplianceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compliance",
		Short: "Compliance frameworks (SOC 2, HIPAA): evidence reports from the audit log",
		Long: `compliance: in agentmesh.yaml lists the frameworks in force (soc2, hipaa);
'agentmesh status' shows what each requires and whether it is on. 'agentmesh
compliance report' gives, for every control of a framework, the evidence the
audit log holds over a period, citing entries and signed checkpoints so that
an auditor can check each claim (docs/compliance.md).`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newComplianceReportCmd(g))
	return cmd
}

type complianceReportOptions struct {
	Framework string
	Since     string
	Proofs    string
	Now       func() time.Time
}

func newComplianceReportCmd(g *globals) *cobra.Command {
	opts := complianceReportOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Evidence for each control of a framework over a period (exit 1 when one has none or failed)",
		Long: `For each control of the framework, the evidence from the audit log over the
period: how many entries show it operating, the first and last of them and a
few between (seqs), each with the first signed checkpoint that covers it,
what was in force when the period began, and the verification runs with
their roots. --output md (default), html (one self-contained page) or json
(stable, versioned). --proofs DIR writes each cited entry's inclusion proof
against its checkpoint, for 'agentmesh audit verify --proof FILE --key VKEY'.

Exit status 1 when a control failed (a verification failed, or disagrees with
the signed checkpoints) or has no evidence in the period (e.g. no full
verification passed in it); the report is printed either way.`,
		Example: `  agentmesh compliance report --framework hipaa
  agentmesh compliance report --framework soc2 --since 90d --output html > soc2.html
  agentmesh compliance report --framework soc2 --output json --proofs proofs/`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return complianceReportRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Framework, "framework", "", "soc2 or hipaa (default: the one framework compliance: lists)")
	f.StringVar(&opts.Since, "since", "90d", "the period: since a duration ago (90d, 1y, 72h) or an RFC 3339 time")
	f.StringVar(&opts.Proofs, "proofs", "", "write each cited entry's inclusion proof against its checkpoint into this directory")
	return cmd
}

// parsePeriodStart reads --since: days or years (90d, 1y), a Go duration
// (72h) or an RFC 3339 time.
func parsePeriodStart(s string, now time.Time) (time.Time, error) {
	if r, err := config.ParseRetention(s); err == nil && s != "0" {
		return now.AddDate(0, 0, -r.Days()), nil
	}
	t, err := parseSince(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 90d, 1y or 72h, or an RFC 3339 time such as 2026-01-31T10:00:00Z", s)
	}
	return t, nil
}

func complianceReportRun(g *globals, opts complianceReportOptions) error {
	format := g.v.GetString("output")
	switch format {
	case "", "table", "text", "markdown":
		format = compliance.FormatMarkdown
	case compliance.FormatMarkdown, compliance.FormatHTML, compliance.FormatJSON:
	default:
		return fmt.Errorf("--output %q: compliance report writes md, html or json", format)
	}
	now := opts.Now().UTC()
	since, err := parsePeriodStart(opts.Since, now)
	if err != nil {
		return err
	}
	if !since.Before(now) {
		return fmt.Errorf("--since %q: the period must start in the past", opts.Since)
	}
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	framework := opts.Framework
	if framework == "" {
		if len(cfg.Compliance) != 1 {
			return fmt.Errorf("--framework: name the framework to report on (%s); compliance: in %s lists %d", strings.Join(config.Frameworks, " or "), cfg.Source.File, len(cfg.Compliance))
		}
		framework = cfg.Compliance[0]
	}
	if len(compliance.Controls(framework)) == 0 {
		return fmt.Errorf("--framework %q: want %s", framework, strings.Join(config.Frameworks, " or "))
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		return err
	}
	keys, err := auditlog.VerifierKeys(doc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	ropts := compliance.Options{Framework: framework, Since: since, Until: now, VerifierKeys: keys}
	if r := cfg.AuditRetention(); r > 0 {
		ropts.Retention = r.String()
	}
	if opts.Proofs != "" {
		if err := os.MkdirAll(opts.Proofs, 0o755); err != nil {
			return err
		}
	}
	var rep *compliance.Report
	evaluate := func(r evidenceReader) error {
		if rep, err = compliance.Evaluate(ctx, evidenceSource{r}, ropts); err != nil {
			return err
		}
		if opts.Proofs != "" {
			return writeProofs(r, rep, opts.Proofs)
		}
		return nil
	}
	if onPostgres(cfg) {
		f, ferr := openFleet(ctx, cfg, d, false)
		if ferr != nil {
			return ferr
		}
		defer f.close()
		origin, verifiers, ferr := logKeys(doc)
		if ferr != nil {
			return ferr
		}
		err = pgaudit.ReadEvidence(ctx, f.db, origin, verifiers, func(r *pgaudit.EvidenceReader) error { return evaluate(r) })
	} else {
		l, db, lerr := openAuditReader(ctx, cfg, d)
		if lerr != nil {
			return lerr
		}
		defer db.Close()
		err = l.ReadEvidence(ctx, func(r *auditlog.EvidenceReader) error { return evaluate(r) })
	}
	if err != nil {
		return err
	}
	if err := rep.Write(g.io.Out, format); err != nil {
		return err
	}
	if !rep.OK {
		var bad []string
		for _, c := range rep.Controls {
			if c.Status == compliance.StatusFail || c.Status == compliance.StatusNoEvidence {
				bad = append(bad, c.ID+" ("+c.Status+")")
			}
		}
		return problemf("compliance report: %s: %d of %d controls failed or have no evidence in the period: %s",
			compliance.FrameworkName(framework), len(bad), len(rep.Controls), strings.Join(bad, ", "))
	}
	return nil
}

// writeProofs writes the inclusion proof of every cited entry against the
// checkpoint the report cites for it, and names the file in the report.
func writeProofs(r evidenceReader, rep *compliance.Report, dir string) error {
	written := map[string]bool{}
	for _, c := range rep.Citations() {
		name := fmt.Sprintf("seq-%d-size-%d.json", c.Seq, c.Checkpoint)
		c.Proof = filepath.Join(dir, name)
		if written[name] {
			continue
		}
		proof, err := r.Prove(int64(c.Seq), c.Checkpoint)
		if err != nil {
			return fmt.Errorf("proof of entry %d: %w", c.Seq, err)
		}
		if err := os.WriteFile(c.Proof, proof, 0o644); err != nil {
			return err
		}
		written[name] = true
	}
	return nil
}

// evidenceReader is one consistent read of the evidence in an audit log:
// auditlog.EvidenceReader on SQLite, pgaudit.EvidenceReader on a fleet's
// PostgreSQL database.
type evidenceReader interface {
	Origin() string
	Size() int64
	Latest() ([]byte, audit.Checkpoint, error)
	Entries(since, until time.Time) iter.Seq2[auditlog.Stored, error]
	LastBefore(t time.Time, actions ...audit.Action) (*auditlog.Stored, error)
	Entry(seq int64) (auditlog.Stored, error)
	Covering(seq int64) ([]byte, audit.Checkpoint, error)
	CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error)
	Prove(seq, size int64) ([]byte, error)
	Verifications(since, until time.Time) ([]auditlog.VerificationRecord, error)
}

// evidenceSource adapts an evidenceReader to compliance.Source.
type evidenceSource struct{ r evidenceReader }

func (s evidenceSource) Origin() string { return s.r.Origin() }
func (s evidenceSource) Size() int64    { return s.r.Size() }
func (s evidenceSource) Latest() ([]byte, audit.Checkpoint, error) {
	return s.r.Latest()
}

func (s evidenceSource) Entries(since, until time.Time) iter.Seq2[audit.Entry, error] {
	return func(yield func(audit.Entry, error) bool) {
		for st, err := range s.r.Entries(since, until) {
			if !yield(st.Entry, err) {
				return
			}
		}
	}
}

func (s evidenceSource) LastBefore(t time.Time, actions ...audit.Action) (*audit.Entry, error) {
	st, err := s.r.LastBefore(t, actions...)
	if st == nil || err != nil {
		return nil, err
	}
	return &st.Entry, nil
}

func (s evidenceSource) Entry(seq int64) (audit.Entry, error) {
	st, err := s.r.Entry(seq)
	return st.Entry, err
}

func (s evidenceSource) Covering(seq int64) ([]byte, audit.Checkpoint, error) {
	return s.r.Covering(seq)
}

func (s evidenceSource) CheckpointAt(size int64) ([]byte, audit.Checkpoint, bool, error) {
	return s.r.CheckpointAt(size)
}

func (s evidenceSource) Verifications(since, until time.Time) ([]compliance.Verification, error) {
	recs, err := s.r.Verifications(since, until)
	if err != nil {
		return nil, err
	}
	out := make([]compliance.Verification, len(recs))
	for i, v := range recs {
		out[i] = compliance.Verification{At: v.At, Mode: v.Mode, Size: v.Size, Root: v.Root, OK: v.OK, Detail: v.Detail, Note: v.Note, Signed: v.Signed}
	}
	return out, nil
}
