package main

import (
	"context"

	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/trust"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

type statusOptions struct {
	Dir string
	Now func() time.Time
}

func newStatusCmd(g *globals) *cobra.Command {
	opts := statusOptions{Now: time.Now}
	return &cobra.Command{
		Use:   "status [DIR]",
		Short: "Identity, credential, trust, policies, rate limits and audit log health",
		Long: `Status reads the real state: the identity and its current credential, the
trust score and tier, the policies in force, rate-limit usage, and the audit
log's checkpoint and witness (cheap checks only: no entry is re-hashed; run
'agentmesh audit verify' for that). DIR is the directory holding
agentmesh.yaml. Exit status 1 when something is critical: access revoked, or
the checkpoint or witness inconsistent.`,
		Example: `  agentmesh status .
  agentmesh status --output json | jq .trust.score`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			return statusRun(g, opts)
		},
	}
}

type statusView struct {
	Config     string            `json:"config"`
	StateDir   string            `json:"state_dir"`
	Identity   identityStatus    `json:"identity"`
	Credential *credentialView   `json:"credential"`
	Trust      trustStatus       `json:"trust"`
	Policies   policyStatus      `json:"policies"`
	RateLimits []rateLimitStatus `json:"rate_limits"`
	Audit      auditlog.Health   `json:"audit"`
	Upstreams  int               `json:"upstreams"`
	// UpstreamTools counts pinned upstream tools (agentmesh tools list).
	UpstreamTools upstreamToolsStatus `json:"upstream_tools"`
	// Callers are the callers whose calls the audit log shows in the
	// last hour, with their trust.
	Callers []callerStatus `json:"callers_1h"`
	// CallersSampled is set when the hour held more entries than status
	// reads for its callers (callersScanLimit): the counts are of the
	// newest ones.
	CallersSampled bool `json:"callers_sampled,omitempty"`
	// HTTPListeners are the running `serve --http` processes.
	HTTPListeners []mcpserver.ListenerRecord `json:"http_listeners"`
	// Auth is how HTTP callers authenticate.
	Auth      authStatus `json:"auth"`
	Attention []string   `json:"attention"`
	Critical  []string   `json:"critical"`

	// Secrets are the configuration's secret references and whether they
	// resolve (statussecrets.go).
	Secrets []secretStatus `json:"secrets"`
	// Compliance is the frameworks in force and their requirements
	// (statuscompliance.go).
	Compliance *complianceStatus `json:"compliance,omitempty"`
}

type callerStatus struct {
	ID      string `json:"id"`
	Calls   int    `json:"calls"`
	Blocked int    `json:"blocked"`
	Last    string `json:"last"`
	Score   int    `json:"score"`
	Revoked bool   `json:"revoked"`
}

// callersScanLimit bounds the entries status reads for its callers.
const callersScanLimit = 5000

// callersSeen summarises the calls of the last hour by caller, with each
// caller's trust (audit.Entry.Subject decides whose score a call moved).
// It reads at most the newest callersScanLimit entries of the hour, so
// that status stays fast on a busy log.
func callersSeen(ctx context.Context, list func(context.Context, auditlog.Filter) ([]auditlog.Stored, error), store trustStates, now time.Time) ([]callerStatus, bool, error) {
	entries, err := list(ctx, auditlog.Filter{Since: now.Add(-time.Hour), AfterSeq: -1, Limit: callersScanLimit})
	if err != nil {
		return nil, false, err
	}
	by := map[string]*callerStatus{}
	var order []string
	for _, s := range entries {
		e := s.Entry
		if e.Caller == nil || e.Action != audit.ActionToolInvocation {
			continue
		}
		c := by[e.Caller.ID]
		if c == nil {
			c = &callerStatus{ID: e.Caller.ID}
			by[e.Caller.ID] = c
			order = append(order, e.Caller.ID)
		}
		c.Calls++
		if e.Result == audit.ResultBlocked {
			c.Blocked++
		}
		c.Last = e.Timestamp.UTC().Format(time.RFC3339)
		if st, err := store.Get(ctx, e.Subject()); err == nil {
			c.Score, c.Revoked = st.Score, st.Revoked
		}
	}
	out := []callerStatus{}
	for _, id := range order {
		out = append(out, *by[id])
	}
	return out, len(entries) == callersScanLimit, nil
}

type identityStatus struct {
	DID         string `json:"did"`
	Fingerprint string `json:"fingerprint"`
	Sponsor     string `json:"sponsor"`
	Keys        int    `json:"keys"`
}

type trustStatus struct {
	trustView
	// Trend is the change over the last hour (from the audit log).
	Trend int `json:"trend_1h"`
}

type policyStatus struct {
	Files      []string `json:"files"`
	Rules      int      `json:"rules"`
	ShadowMode bool     `json:"shadow_mode"`
	Valid      bool     `json:"valid"`
	Problem    string   `json:"problem,omitempty"`
}

type upstreamToolsStatus struct {
	Pinned  int `json:"pinned"`
	Review  int `json:"need_review"`
	Flagged int `json:"flagged"`
}

type rateLimitStatus struct {
	Rule  string `json:"rule"`
	Used  int    `json:"used"`
	Limit int    `json:"limit"`
	Per   string `json:"per"`
}

func statusRun(g *globals, opts statusOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	if opts.Dir != "" && g.v.GetString("config") == "" {
		p := filepath.Join(opts.Dir, config.FileName)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("status %s: no %s there (run `agentmesh init %s`)", opts.Dir, config.FileName, opts.Dir)
		}
		g.v.Set("config", p)
	}
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	ctx := context.Background()
	now := opts.Now()
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	src, err := openStatusSources(ctx, cfg, d, &id.Doc, opts.Now)
	if err != nil {
		return err
	}
	defer src.close()
	v := statusView{Config: cfg.Source.File, StateDir: d.Path, Upstreams: len(cfg.Upstreams), Attention: []string{}, Critical: []string{}, RateLimits: []rateLimitStatus{}}
	if v.Config == "" {
		v.Config = "embedded defaults"
	}
	v.Identity = identityStatus{DID: id.DID(), Fingerprint: id.Doc.Current().Fingerprint, Sponsor: id.Doc.Sponsor, Keys: len(id.Doc.Keys)}
	if id.Doc.Sponsor == config.PlaceholderSponsor {
		v.Attention = append(v.Attention, "the sponsor is a placeholder: run `agentmesh identity set-sponsor EMAIL` (and set agent.sponsor in agentmesh.yaml)")
	}
	v.Credential = describeCredential(cfg, d, &id.Doc, now)
	if !v.Credential.Valid {
		v.Attention = append(v.Attention, "no valid credential: "+v.Credential.Problem)
	} else if exp, _ := time.Parse(time.RFC3339, v.Credential.Expires); exp.Sub(now) < 2*time.Minute {
		v.Attention = append(v.Attention, "the credential expires within 2 minutes and no serve process has renewed it")
	}
	model := trust.FromConfig(cfg.Trust)
	st, err := src.trust.Get(ctx, id.DID())
	if err != nil {
		return err
	}
	v.Trust = trustStatus{trustView: describeTrust(model, id.DID(), st), Trend: st.Score - scoreAt(ctx, src, id.DID(), now.Add(-time.Hour), model.Initial)}
	if st.Revoked {
		v.Critical = append(v.Critical, fmt.Sprintf("access revoked: trust score %d is below %d (`agentmesh trust reset --reason ...`)", st.Score, model.RevokeBelow))
	} else if st.Score < model.RevokeBelow+100 {
		v.Attention = append(v.Attention, fmt.Sprintf("trust score %d is close to the revocation threshold %d", st.Score, model.RevokeBelow))
	}
	// A damaged log must not hide the rest of the status: the audit
	// section below says what is wrong with it.
	if v.Callers, v.CallersSampled, err = callersSeen(ctx, src.list, src.trust, now); err != nil {
		v.Callers = []callerStatus{}
		v.Attention = append(v.Attention, "the callers of the last hour could not be listed: "+err.Error())
	}
	for _, c := range v.Callers {
		if k, _ := caller.KindOf(c.ID); c.Revoked && k.OwnTrust() {
			v.Attention = append(v.Attention, fmt.Sprintf("caller %s is revoked (trust %d): its calls are refused until `agentmesh trust reset --caller %q --reason ...`", c.ID, c.Score, c.ID))
		}
	}
	v.Policies, v.RateLimits = policiesStatus(ctx, cfg, src.counter, id.DID(), now)
	if !v.Policies.Valid {
		v.Attention = append(v.Attention, "the policies do not validate: "+firstLine(v.Policies.Problem))
	}
	pins, err := src.pins.List(ctx, "")
	if err != nil {
		return err
	}
	for _, p := range pins {
		v.UpstreamTools.Pinned++
		if p.Status != toolpin.Approved {
			v.UpstreamTools.Review++
		}
		if len(p.Findings) > 0 {
			v.UpstreamTools.Flagged++
		}
	}
	if n := v.UpstreamTools.Review; n > 0 {
		v.Attention = append(v.Attention, fmt.Sprintf("%d upstream tool(s) changed, new or removed since pinned and refused until approved (`agentmesh tools list`)", n))
	}
	if n := v.UpstreamTools.Flagged; n > 0 {
		v.Attention = append(v.Attention, fmt.Sprintf("%d upstream tool(s) flagged for possible tool poisoning (`agentmesh tools list`)", n))
	}
	if v.Policies.ShadowMode {
		v.Attention = append(v.Attention, "shadow mode: decisions are recorded but not enforced")
	}
	if v.Audit, err = src.health(ctx); err != nil {
		return err
	}
	if v.Audit.CheckpointProblem != "" {
		v.Critical = append(v.Critical, "audit checkpoint: "+v.Audit.CheckpointProblem+" (appends are refused: `agentmesh audit verify`)")
	}
	if v.Audit.WitnessProblem != "" {
		v.Critical = append(v.Critical, "audit witness: "+v.Audit.WitnessProblem)
	}
	if fv := v.Audit.FailedVerification; fv != nil {
		v.Critical = append(v.Critical, fmt.Sprintf("the %s audit verification of %s failed: %s (until a full `agentmesh audit verify` passes)", fv.Mode, fv.At.Format(time.RFC3339), fv.Detail))
	}
	switch lv := v.Audit.LastVerification; {
	case lv == nil:
		v.Attention = append(v.Attention, "the audit log was never verified: run `agentmesh audit verify`")
	case now.Sub(lv.At) > 24*time.Hour:
		v.Attention = append(v.Attention, fmt.Sprintf("the audit log was last verified %s ago", now.Sub(lv.At).Round(time.Hour)))
	}
	for _, w := range v.Audit.Witnesses {
		switch {
		case w.State == auditlog.WitnessRefused:
			v.Critical = append(v.Critical, fmt.Sprintf("external witness %s refused this log's checkpoints: %s", w.URL, w.Detail))
		case w.State == auditlog.WitnessUnreachable:
			v.Attention = append(v.Attention, fmt.Sprintf("external witness %s is unreachable since %s (it has cosigned up to tree size %d): %s", w.URL, w.At.Format(time.RFC3339), w.Size, w.Detail))
		case v.Audit.Checkpoint != nil && w.Size < v.Audit.Checkpoint.Size && now.Sub(v.Audit.Checkpoint.Time) > time.Minute:
			v.Attention = append(v.Attention, fmt.Sprintf("external witness %s lags: it cosigned tree size %d of %d", w.URL, w.Size, v.Audit.Checkpoint.Size))
		}
	}
	var crit, att []string
	v.HTTPListeners, crit, att = httpExposure(cfg, d)
	var acrit, aatt []string
	v.Auth, acrit, aatt = describeAuth(ctx, cfg, src.keys)
	crit, att = append(crit, acrit...), append(att, aatt...)
	v.Secrets, acrit, aatt = describeSecrets(cfg)
	crit, att = append(crit, acrit...), append(att, aatt...)
	v.Compliance, acrit, aatt = describeCompliance(cfg, v.Audit, now)
	crit, att = append(crit, acrit...), append(att, aatt...)
	v.Critical, v.Attention = append(v.Critical, crit...), append(v.Attention, att...)
	if format == ui.JSON {
		if err := ui.WriteJSON(g.io.Out, v); err != nil {
			return err
		}
	} else {
		printStatus(g, v, now)
	}
	if len(v.Critical) > 0 {
		if format == ui.JSON {
			return silentProblem
		}
		return problemf("status: %s", strings.Join(v.Critical, "; "))
	}
	return nil
}

// scoreAt is the agent's score at time t, from the last audit entry before
// it that carries one (auditlog.ScoreBefore: two index lookups, so it stays
// cheap on a large log).
func scoreAt(ctx context.Context, src *statusSources, agent string, t time.Time, initial int) int {
	if score, ok, err := src.scoreBefore(ctx, agent, t); err == nil && ok {
		return score
	}
	return initial
}

func policiesStatus(ctx context.Context, cfg *config.Config, counter ratelimit.Counter, agent string, now time.Time) (policyStatus, []rateLimitStatus) {
	ps := policyStatus{ShadowMode: cfg.Governance.ShadowMode, Files: []string{}}
	limits := []rateLimitStatus{}
	set, files, err := mcpserver.LoadPolicies(cfg)
	ps.Files = append(ps.Files, files...)
	if len(files) == 0 && len(cfg.Policies.Paths) == 0 {
		ps.Files = []string{mcpserver.EmbeddedPolicyName}
	}
	if err != nil {
		ps.Problem = err.Error()
		return ps, limits
	}
	ps.Valid = true
	var checks []ratelimit.Check
	var ids []string
	for _, r := range set.Rules() {
		ps.Rules++
		if r.Limit == nil || !r.Enabled {
			continue
		}
		name := r.Name
		if name == "" {
			name = fmt.Sprintf("#%d", r.Index)
		}
		checks = append(checks, ratelimit.Check{Key: ratelimit.Key{Policy: r.Policy, Rule: name, Agent: agent}, Window: *r.Limit})
		ids = append(ids, r.ID)
	}
	used, err := counter.Usage(ctx, now, checks)
	if err != nil {
		ps.Problem = "rate-limit counters unreadable: " + err.Error()
		return ps, limits
	}
	for i, c := range checks {
		limits = append(limits, rateLimitStatus{Rule: ids[i], Used: used[i], Limit: c.Window.Limit, Per: c.Window.Unit})
	}
	return ps, limits
}

func firstLine(s string) string {
	first, rest, _ := strings.Cut(s, "\n")
	if rest != "" {
		return first + " (and more: `agentmesh policy --validate`)"
	}
	return first
}

func printStatus(g *globals, v statusView, now time.Time) {
	cv := v.Credential
	cred := cv.Problem
	if cv.Valid {
		exp, _ := time.Parse(time.RFC3339, cv.Expires)
		cred = fmt.Sprintf("valid, expires in %s (%s)", exp.Sub(now).Round(time.Second), cv.Expires)
	}
	trend := fmt.Sprintf("%+d in the last hour", v.Trust.Trend)
	access := "active"
	if v.Trust.Revoked {
		access = "REVOKED"
	}
	fields := []ui.Field{
		{Label: "config", Value: v.Config},
		{Label: "state", Value: v.StateDir},
		{Label: "identity", Value: v.Identity.DID},
		{Label: "key", Value: fmt.Sprintf("%s (%d in history)", v.Identity.Fingerprint, v.Identity.Keys)},
		{Label: "sponsor", Value: v.Identity.Sponsor, Attention: v.Identity.Sponsor == config.PlaceholderSponsor},
		{Label: "credential", Value: cred, Attention: !cv.Valid},
		{Label: "trust", Value: fmt.Sprintf("%d (%s), %s, %s", v.Trust.Score, v.Trust.Tier, trend, access), Attention: v.Trust.Revoked},
	}
	pol := fmt.Sprintf("%d rules in %s", v.Policies.Rules, strings.Join(v.Policies.Files, ", "))
	if !v.Policies.Valid {
		pol = "INVALID: " + firstLine(v.Policies.Problem)
	}
	if v.Policies.ShadowMode {
		pol += " (shadow mode)"
	}
	fields = append(fields, ui.Field{Label: "policies", Value: pol, Attention: !v.Policies.Valid})
	for _, r := range v.RateLimits {
		fields = append(fields, ui.Field{Label: "rate limit", Value: fmt.Sprintf("%s: %d/%d per %s", r.Rule, r.Used, r.Limit, r.Per), Attention: r.Used >= r.Limit})
	}
	a := v.Audit
	fields = append(fields, ui.Field{Label: "audit log", Value: fmt.Sprintf("%d entries", a.Size)})
	if a.Checkpoint != nil {
		fields = append(fields, ui.Field{Label: "checkpoint", Value: fmt.Sprintf("size %d, signed %s", a.Checkpoint.Size, a.Checkpoint.Time.Format(time.RFC3339))})
	}
	if a.CheckpointProblem != "" {
		fields = append(fields, ui.Field{Label: "checkpoint", Value: "INCONSISTENT: " + a.CheckpointProblem, Attention: true})
	}
	switch {
	case a.WitnessProblem != "":
		fields = append(fields, ui.Field{Label: "witness", Value: "INCONSISTENT: " + a.WitnessProblem, Attention: true})
	case a.Witness != nil:
		fields = append(fields, ui.Field{Label: "witness", Value: fmt.Sprintf("consistent (size %d)", a.Witness.Size)})
	default:
		fields = append(fields, ui.Field{Label: "witness", Value: "none yet"})
	}
	for _, w := range a.Witnesses {
		fields = append(fields, ui.Field{Label: "ext. witness", Value: fmt.Sprintf("%s: %s, cosigned size %d", w.URL, w.State, w.Size),
			Attention: w.State != auditlog.WitnessCosigned})
	}
	if lv := a.LastVerification; lv != nil {
		res := "ok"
		if !lv.OK {
			res = "FAILED: " + lv.Detail
		}
		fields = append(fields, ui.Field{Label: "last verify", Value: fmt.Sprintf("%s %s, %s ago", lv.Mode, res, now.Sub(lv.At).Round(time.Second)), Attention: !lv.OK})
	} else {
		fields = append(fields, ui.Field{Label: "last verify", Value: "never", Attention: true})
	}
	if v.Upstreams > 0 || v.UpstreamTools.Pinned > 0 {
		t := v.UpstreamTools
		fields = append(fields, ui.Field{Label: "upstreams", Value: fmt.Sprintf("%d configured; %d tools pinned, %d need review, %d flagged", v.Upstreams, t.Pinned, t.Review, t.Flagged),
			Attention: t.Review > 0 || t.Flagged > 0})
	}
	for _, l := range v.HTTPListeners {
		auth := "authenticated"
		if !l.Authenticated {
			auth = "no client authentication"
		}
		scheme := "http"
		if l.TLS {
			scheme = "https"
		}
		fields = append(fields, ui.Field{Label: "http", Value: fmt.Sprintf("serve (pid %d) on %s://%s%s, %s", l.PID, scheme, l.Addr, mcpserver.Endpoint, auth),
			Attention: !l.Loopback && !l.Authenticated})
	}
	if au := v.Auth; au.Mode != "off" || len(au.APIKeys) > 0 {
		val := au.Mode
		if au.Resource != "" {
			val += " for " + au.Resource
		}
		if n := au.APIKeys["active"]; n > 0 || au.Mode != "off" {
			val += fmt.Sprintf("; %d active API key(s)", n)
		}
		fields = append(fields, ui.Field{Label: "auth", Value: val})
		for _, is := range au.Issuers {
			st := fmt.Sprintf("%s: %d signing key(s), fetched %s", is.Issuer, is.Keys, is.Fetched.UTC().Format(time.RFC3339))
			if is.Problem != "" {
				st = fmt.Sprintf("%s: UNREACHABLE: %s", is.Issuer, is.Problem)
			}
			fields = append(fields, ui.Field{Label: "issuer", Value: st, Attention: is.Problem != "" || is.Keys == 0})
		}
	}
	fields = append(fields, secretFields(v.Secrets)...)
	g.io.Record("agentmesh status", fields)
	printCompliance(g, v.Compliance)
	if len(v.Callers) > 0 {
		rows := make([][]string, len(v.Callers))
		for i, c := range v.Callers {
			access := "active"
			if c.Revoked {
				access = "REVOKED"
			}
			rows[i] = []string{c.ID, strconv.Itoa(c.Calls), strconv.Itoa(c.Blocked), strconv.Itoa(c.Score), access, c.Last}
		}
		if v.CallersSampled {
			fmt.Fprintf(g.io.Out, "\nCallers in the last hour (its newest %d entries):\n", callersScanLimit)
		} else {
			fmt.Fprintln(g.io.Out, "\nCallers in the last hour:")
		}
		format, _ := g.format()
		g.io.Rows(format, []string{"caller", "calls", "blocked", "trust", "access", "last call"}, rows)
	}
	for _, c := range v.Critical {
		fmt.Fprintf(g.io.Out, "✗ %s\n", c)
	}
	for _, a := range v.Attention {
		fmt.Fprintf(g.io.Out, "! %s\n", a)
	}
}
