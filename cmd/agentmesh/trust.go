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
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/pgtrust"
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
  agentmesh trust show --caller 'oauth:https://auth.example.com#alice'
  agentmesh trust explain
  agentmesh trust reset --reason "reviewed the blocked calls: a misconfigured client"
  agentmesh trust reset --caller key:ci --reason "INC-7: the CI job's prompt injection removed"`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return trustShowRun(g, "", time.Now) },
	}
	var who string
	callerFlag := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&who, "caller", "", "an authenticated caller's ID (oauth:ISS#SUB, key:NAME, mtls:NAME) instead of the server's own score")
		return c
	}
	cmd.AddCommand(
		callerFlag(&cobra.Command{
			Use: "show", Short: "Show the score, tier and revocation state (the server's, and each caller's)", Args: cobra.NoArgs,
			Long: `Show the trust score of the server (the local user over stdio and
unauthenticated loopback callers share it) and, below it, each
authenticated caller's: every caller of a team gateway has a score of its
own, so one misbehaving caller is revoked and the others are not.`,
			Example: "  agentmesh trust show --output json\n  agentmesh trust show --caller key:ci",
			RunE:    func(c *cobra.Command, _ []string) error { return trustShowRun(g, who, time.Now) },
		}),
		callerFlag(&cobra.Command{
			Use: "explain", Short: "Replay the audit log and show every event that moved the score", Args: cobra.NoArgs,
			Example: "  agentmesh trust explain\n  agentmesh trust explain --caller key:ci",
			RunE:    func(c *cobra.Command, _ []string) error { return trustExplainRun(g, who) },
		}),
		newTrustResetCmd(g),
	)
	return cmd
}

// trustSubject is whose trust a --caller flag names: the caller's ID, or
// the server's DID when the flag is empty or names the local user (whose
// calls charge the server's own score, trust.Subject).
func trustSubject(did, who string) (subject string, c *audit.Caller, err error) {
	if who == "" || who == did {
		return did, nil, nil
	}
	kind, ok := caller.KindOf(who)
	switch {
	case !ok:
		return "", nil, fmt.Errorf("--caller %q: want a caller ID as audit entries show it: oauth:ISSUER#SUBJECT, key:NAME or mtls:NAME", who)
	case !kind.OwnTrust():
		return did, nil, nil // the local user and anonymous callers charge the server's own score
	}
	return who, &audit.Caller{ID: who, Kind: string(kind)}, nil
}

// trustView is `trust show --output json` (and part of `status`).
type trustView struct {
	Agent string `json:"agent"`
	// Caller is set when the view is of a caller's score.
	Caller        string `json:"caller,omitempty"`
	Score         int    `json:"score"`
	Tier          string `json:"tier"`
	Revoked       bool   `json:"revoked"`
	RevokeBelow   int    `json:"revoke_below"`
	Initial       int    `json:"initial"`
	LastViolation string `json:"last_violation,omitempty"`
}

// trustStates reads stored trust states: trust.Store on SQLite,
// pgtrust.Store on PostgreSQL.
type trustStates interface {
	Get(ctx context.Context, subject string) (trust.State, error)
	Subjects(ctx context.Context) ([]string, error)
}

type trustContext struct {
	id    *identity.Document
	model trust.Model
	// states reads trust states as of the time now returns (nil: the
	// current time).
	states func(now func() time.Time) trustStates
	// list lists audit entries.
	list  func(ctx context.Context, f auditlog.Filter) ([]auditlog.Stored, error)
	close func()
}

func (g *globals) openTrust(ctx context.Context) (*trustContext, error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, err
	}
	model := trust.FromConfig(cfg.Trust)
	if onPostgres(cfg) {
		f, err := openFleet(ctx, cfg, d, false)
		if err != nil {
			return nil, err
		}
		return &trustContext{id: f.doc, model: model, close: f.close,
			states: func(now func() time.Time) trustStates { return &pgtrust.Store{DB: f.db, Model: model, Now: now} },
			list: func(ctx context.Context, flt auditlog.Filter) ([]auditlog.Stored, error) {
				return pgaudit.List(ctx, f.db, flt)
			}}, nil
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
	return &trustContext{id: doc, model: model, list: l.List, close: func() { db.Close() },
		states: func(now func() time.Time) trustStates { return &trust.Store{DB: db, Model: model, Now: now} }}, nil
}

func describeTrust(m trust.Model, agent string, st trust.State) trustView {
	v := trustView{Agent: agent, Score: st.Score, Tier: m.Tier(st.Score), Revoked: st.Revoked, RevokeBelow: m.RevokeBelow, Initial: m.Initial}
	if !st.LastViolation.IsZero() {
		v.LastViolation = st.LastViolation.UTC().Format(time.RFC3339)
	}
	return v
}

func trustShowRun(g *globals, who string, now func() time.Time) error {
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
	store := tc.states(now)
	subject, _, err := trustSubject(tc.id.ID, who)
	if err != nil {
		return fmt.Errorf("trust show: %v", err)
	}
	st, err := store.Get(ctx, subject)
	if err != nil {
		return err
	}
	v := describeTrust(tc.model, tc.id.ID, st)
	if subject != tc.id.ID {
		v.Caller = subject
	}
	// Without --caller: every authenticated caller's score as well.
	var callers []trustView
	if who == "" {
		subjects, err := store.Subjects(ctx)
		if err != nil {
			return err
		}
		for _, s := range subjects {
			if s == tc.id.ID {
				continue
			}
			cst, err := store.Get(ctx, s)
			if err != nil {
				return err
			}
			cv := describeTrust(tc.model, tc.id.ID, cst)
			cv.Caller = s
			callers = append(callers, cv)
		}
	}
	if format == ui.JSON {
		if who != "" {
			return ui.WriteJSON(g.io.Out, v)
		}
		type withCallers struct {
			trustView
			Callers []trustView `json:"callers"`
		}
		if callers == nil {
			callers = []trustView{}
		}
		return ui.WriteJSON(g.io.Out, withCallers{v, callers})
	}
	state := "active"
	if v.Revoked {
		state = fmt.Sprintf("REVOKED (below %d): every call is refused until `agentmesh trust reset%s --reason ...`", v.RevokeBelow, callerFlagText(v.Caller))
	}
	fields := []ui.Field{
		{Label: "agent", Value: v.Agent},
		{Label: "score", Value: fmt.Sprintf("%d / 1000", v.Score), Attention: v.Revoked},
		{Label: "tier", Value: v.Tier},
		{Label: "access", Value: state, Attention: v.Revoked},
		{Label: "baseline", Value: strconv.Itoa(v.Initial)},
	}
	if v.Caller != "" {
		fields = append(fields[:1], append([]ui.Field{{Label: "caller", Value: v.Caller}}, fields[1:]...)...)
	}
	if v.LastViolation != "" {
		fields = append(fields, ui.Field{Label: "last violation", Value: v.LastViolation})
	}
	g.io.Record("Trust", fields)
	if len(callers) > 0 {
		rows := make([][]string, len(callers))
		for i, c := range callers {
			access := "active"
			if c.Revoked {
				access = "REVOKED"
			}
			rows[i] = []string{c.Caller, strconv.Itoa(c.Score), c.Tier, access, c.LastViolation}
		}
		g.io.Rows(format, []string{"caller", "score", "tier", "access", "last violation"}, rows)
	}
	return nil
}

// callerFlagText is the --caller flag that names a caller's score.
func callerFlagText(subject string) string {
	if subject == "" {
		return ""
	}
	return " --caller " + strconv.Quote(subject)
}

func trustExplainRun(g *globals, who string) error {
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
	subject, _, err := trustSubject(tc.id.ID, who)
	if err != nil {
		return fmt.Errorf("trust explain: %v", err)
	}
	all, err := tc.list(ctx, auditlog.Filter{Agent: tc.id.ID, AfterSeq: -1})
	if err != nil {
		return err
	}
	entries := make([]audit.Entry, len(all))
	for i, s := range all {
		entries[i] = s.Entry
	}
	m := tc.model
	states, allSteps := m.Replay(entries)
	var steps []trust.Step
	for _, s := range allSteps {
		if s.Subject == subject {
			steps = append(steps, s)
		}
	}
	replayed, ok := states[subject]
	if !ok {
		replayed = m.Fresh()
	}
	stored, err := tc.states(nil).Get(ctx, subject)
	if err != nil {
		return err
	}
	// Compare like with like: recovery credited up to the last event.
	storedAtLast := stored
	if !replayed.Updated.IsZero() {
		storedAtLast, _ = storedAt(ctx, tc, subject, replayed.Updated)
	}
	consistent := storedAtLast.Score == replayed.Score && storedAtLast.Revoked == replayed.Revoked
	if format == ui.JSON {
		if err := ui.WriteJSON(g.io.Out, map[string]any{"agent": tc.id.ID, "subject": subject, "initial": m.Initial, "steps": orEmpty(steps),
			"replayed_score": replayed.Score, "stored_score": storedAtLast.Score, "consistent": consistent}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.io.Out, "Trust of %s: starts at %d\n", subject, m.Initial)
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

func storedAt(ctx context.Context, tc *trustContext, subject string, t time.Time) (trust.State, error) {
	return tc.states(func() time.Time { return t }).Get(ctx, subject)
}

func orEmpty(s []trust.Step) []trust.Step {
	if s == nil {
		return []trust.Step{}
	}
	return s
}

type trustResetOptions struct {
	Reason string
	// Caller names a caller's score (--caller); empty: the server's.
	Caller string
	Now    func() time.Time
}

func newTrustResetCmd(g *globals) *cobra.Command {
	opts := trustResetOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "reset --reason TEXT",
		Short: "Reset the score to its baseline and lift a revocation (audited)",
		Long: `Reset sets the score back to trust.initial and lifts a revocation. It is
recorded in the audit log with who ran it and why; running 'serve' processes
see it on their next call, without a restart. --caller resets one
authenticated caller's score (see 'agentmesh trust show') and no other.`,
		Example: `  agentmesh trust reset --reason "INC-1234: client misconfiguration fixed"
  agentmesh trust reset --caller 'oauth:https://auth.example.com#alice' --reason "INC-1240: reviewed"`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.TrimSpace(opts.Reason) == "" {
				return usageError(c, "trust reset: --reason is required: say why the score may be trusted again (it is recorded in the audit log)")
			}
			return trustResetRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Reason, "reason", "", "why the reset is justified (required; recorded in the audit log)")
	cmd.Flags().StringVar(&opts.Caller, "caller", "", "reset this authenticated caller's score (oauth:ISS#SUB, key:NAME, mtls:NAME) instead of the server's")
	return cmd
}

func trustResetRun(g *globals, opts trustResetOptions) error {
	ctx := context.Background()
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	// On a fleet's database every replica reads the state on its next call.
	l, done, err := g.openLedger(ctx, cfg, d, id)
	if err != nil {
		return err
	}
	defer done()
	subject, target, err := trustSubject(id.DID(), opts.Caller)
	if err != nil {
		return fmt.Errorf("trust reset: %v", err)
	}
	before, err := l.Trust(ctx, subject)
	if err != nil {
		return err
	}
	who := operator()
	e, err := l.Append(ctx, trustResetEntry(opts, id.DID(), target, who, before), &trust.Event{Kind: trust.Reset})
	if err != nil {
		return fmt.Errorf("trust reset: %w", err)
	}
	g.io.Success("trust of %s reset from %d to %d by %s (audit entry %d)", subject, before.Score, *e.TrustScore, who, e.Seq)
	return nil
}

// trustResetEntry is the trust_reset entry; it names the caller whose
// score it resets (trust.Subject).
func trustResetEntry(opts trustResetOptions, agent string, target *audit.Caller, who string, before trust.State) audit.Entry {
	return audit.Entry{
		Timestamp: opts.Now(), Agent: agent, Caller: target, Action: audit.ActionTrustReset, Reason: opts.Reason,
		Details: details(map[string]any{"by": who, "from": before.Score, "was_revoked": before.Revoked}),
	}
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
