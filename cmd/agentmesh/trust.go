package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/trust"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

func newTrustCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Show, explain and reset the trust score",
		Long: `The trust score (0-1000) rises slowly with allowed calls, falls with
violations by severity, recovers toward its baseline after a quiet period,
and below trust.revoke_below refuses every call until an operator runs
'agentmesh trust reset --reason ...'. See docs/trust.md for the formula.`,
		Example: `  agentmesh trust show
  agentmesh trust explain
  agentmesh trust reset --reason "reviewed the blocked calls: a misconfigured client"`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return trustShowRun(g, time.Now) },
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "show", Short: "Show the score, tier and revocation state", Args: cobra.NoArgs,
			Example: "  agentmesh trust show --output json",
			RunE:    func(c *cobra.Command, _ []string) error { return trustShowRun(g, time.Now) },
		},
		&cobra.Command{
			Use: "explain", Short: "Replay the audit log and show every event that moved the score", Args: cobra.NoArgs,
			Example: "  agentmesh trust explain",
			RunE:    func(c *cobra.Command, _ []string) error { return trustExplainRun(g) },
		},
		newTrustResetCmd(g),
	)
	return cmd
}

// trustView is `trust show --output json` (and part of `status`).
type trustView struct {
	Agent         string `json:"agent"`
	Score         int    `json:"score"`
	Tier          string `json:"tier"`
	Revoked       bool   `json:"revoked"`
	RevokeBelow   int    `json:"revoke_below"`
	Initial       int    `json:"initial"`
	LastViolation string `json:"last_violation,omitempty"`
}

type trustContext struct {
	id    *identity.Document
	store *trust.Store
	log   *auditlog.Log
	close func()
}

func (g *globals) openTrust(ctx context.Context) (*trustContext, error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, err
	}
	l, db, err := openAuditReader(ctx, cfg, d)
	if err != nil {
		return nil, err
	}
	doc, err := identity.LoadDocument(d)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &trustContext{id: doc, store: &trust.Store{DB: db, Model: trust.FromConfig(cfg.Trust)}, log: l, close: func() { db.Close() }}, nil
}

func describeTrust(m trust.Model, agent string, st trust.State) trustView {
	v := trustView{Agent: agent, Score: st.Score, Tier: m.Tier(st.Score), Revoked: st.Revoked, RevokeBelow: m.RevokeBelow, Initial: m.Initial}
	if !st.LastViolation.IsZero() {
		v.LastViolation = st.LastViolation.UTC().Format(time.RFC3339)
	}
	return v
}

func trustShowRun(g *globals, now func() time.Time) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	tc, err := g.openTrust(ctx)
	if err != nil {
		return err
	}
	defer tc.close()
	tc.store.Now = now
	st, err := tc.store.Get(ctx, tc.id.ID)
	if err != nil {
		return err
	}
	v := describeTrust(tc.store.Model, tc.id.ID, st)
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, v)
	}
	state := "active"
	if v.Revoked {
		state = fmt.Sprintf("REVOKED (below %d): every call is refused until `agentmesh trust reset --reason ...`", v.RevokeBelow)
	}
	fields := []ui.Field{
		{Label: "agent", Value: v.Agent},
		{Label: "score", Value: fmt.Sprintf("%d / 1000", v.Score), Attention: v.Revoked},
		{Label: "tier", Value: v.Tier},
		{Label: "access", Value: state, Attention: v.Revoked},
		{Label: "baseline", Value: strconv.Itoa(v.Initial)},
	}
	if v.LastViolation != "" {
		fields = append(fields, ui.Field{Label: "last violation", Value: v.LastViolation})
	}
	g.io.Record("Trust", fields)
	return nil
}

func trustExplainRun(g *globals) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	tc, err := g.openTrust(ctx)
	if err != nil {
		return err
	}
	defer tc.close()
	all, err := tc.log.List(ctx, auditlog.Filter{Agent: tc.id.ID, AfterSeq: -1})
	if err != nil {
		return err
	}
	entries := make([]audit.Entry, len(all))
	for i, s := range all {
		entries[i] = s.Entry
	}
	m := tc.store.Model
	states, steps := m.Replay(entries)
	replayed, ok := states[tc.id.ID]
	if !ok {
		replayed = m.Fresh()
	}
	stored, err := tc.store.Get(ctx, tc.id.ID)
	if err != nil {
		return err
	}
	// Compare like with like: recovery credited up to the last event.
	storedAtLast := stored
	if !replayed.Updated.IsZero() {
		storedAtLast, _ = storedAt(ctx, tc, replayed.Updated)
	}
	consistent := storedAtLast.Score == replayed.Score && storedAtLast.Revoked == replayed.Revoked
	if format == ui.JSON {
		if err := ui.WriteJSON(g.io.Out, map[string]any{"agent": tc.id.ID, "initial": m.Initial, "steps": orEmpty(steps),
			"replayed_score": replayed.Score, "stored_score": storedAtLast.Score, "consistent": consistent}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.io.Out, "Trust of %s: starts at %d\n", tc.id.ID, m.Initial)
		rows := make([][]string, len(steps))
		for i, s := range steps {
			change := fmt.Sprintf("%+d", s.After-s.Before)
			if s.Recovered > 0 {
				change += fmt.Sprintf(" (recovered %+d)", s.Recovered)
			}
			note := s.Reason
			if s.Revoked {
				note = strings.TrimSpace("REVOKED " + note)
			}
			seq := strconv.FormatUint(s.Seq, 10)
			if s.Intent != nil {
				seq = strconv.FormatUint(*s.Intent, 10) + "→" + seq
			}
			rows[i] = []string{seq, s.Time[:19] + "Z", string(s.Kind), s.Tool, change, strconv.Itoa(s.After), note}
		}
		if len(rows) > 0 {
			g.io.Rows(format, []string{"seq", "time", "event", "tool", "change", "score", "note"}, rows)
		}
		fmt.Fprintf(g.io.Out, "replayed score %d, stored score %d\n", replayed.Score, storedAtLast.Score)
	}
	if !consistent {
		return problemf("the stored trust state (%d) differs from the audit log's replay (%d): the state was changed outside agentmesh", storedAtLast.Score, replayed.Score)
	}
	return nil
}

func storedAt(ctx context.Context, tc *trustContext, t time.Time) (trust.State, error) {
	s := *tc.store
	s.Now = func() time.Time { return t }
	return s.Get(ctx, tc.id.ID)
}

func orEmpty(s []trust.Step) []trust.Step {
	if s == nil {
		return []trust.Step{}
	}
	return s
}

type trustResetOptions struct {
	Reason string
	Now    func() time.Time
}

func newTrustResetCmd(g *globals) *cobra.Command {
	opts := trustResetOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "reset --reason TEXT",
		Short: "Reset the score to its baseline and lift a revocation (audited)",
		Long: `Reset sets the score back to trust.initial and lifts a revocation. It is
recorded in the audit log with who ran it and why; running 'serve' processes
see it on their next call, without a restart.`,
		Example: `  agentmesh trust reset --reason "INC-1234: client misconfiguration fixed"`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.TrimSpace(opts.Reason) == "" {
				return usageError(c, "trust reset: --reason is required: say why the score may be trusted again (it is recorded in the audit log)")
			}
			return trustResetRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why the reset is justified (required; recorded in the audit log)")
	return cmd
}

func trustResetRun(g *globals, opts trustResetOptions) error {
	ctx := context.Background()
	w, err := g.openAuditWriter(ctx)
	if err != nil {
		return err
	}
	defer w.close()
	cfg, id, db, l := w.cfg, w.id, w.db, w.log
	store := &trust.Store{DB: db, Model: trust.FromConfig(cfg.Trust)}
	before, err := store.Get(ctx, id.DID())
	if err != nil {
		return err
	}
	who := operator()
	e, err := l.Append(ctx, audit.Entry{
		Timestamp: opts.Now(), Agent: id.DID(), Action: audit.ActionTrustReset, Reason: opts.Reason,
		Details: details(map[string]any{"by": who, "from": before.Score, "was_revoked": before.Revoked}),
	}, store.Hook(trust.Event{Kind: trust.Reset}))
	if err != nil {
		return fmt.Errorf("trust reset: %w", err)
	}
	g.io.Success("trust of %s reset from %d to %d by %s (audit entry %d)", id.DID(), before.Score, *e.TrustScore, who, e.Seq)
	return nil
}

// operator names who ran a command: the OS user and host.
func operator() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}
