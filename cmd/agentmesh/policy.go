package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/governance"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/policy"
	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/redact"
	"github.com/agentmesh/agentmesh/pkg/ui"
	"github.com/agentmesh/agentmesh/pkg/yamlpos"
)

// embeddedPolicyName names the built-in default policy in messages, when
// the configuration lists no policy files.
const embeddedPolicyName = "embedded:policies/default.yaml"

type policyOptions struct {
	Paths    []string
	Validate bool
}

func newPolicyCmd(g *globals) *cobra.Command {
	opts := policyOptions{}
	cmd := &cobra.Command{
		Use:   "policy [FILE|DIR...] [--validate]",
		Short: "Validate, list, test and explain policies",
		Long: `With --validate, policy checks policy files (a directory means its *.yaml and
*.yml files, except *_test.yaml) and reports every error as FILE:LINE:COL:
message, for CI: exit 0 when valid, 1 on errors, 2 when a file cannot be read.
Without --validate it also lists the rules. With no FILE it checks the
policies named in agentmesh.yaml (policies.paths), or the built-in default.

Conditions are expressions over tool, params, output, agent, trust_score,
client, upstream, upstream_tool, method and uri; see docs/policy.md.`,
		Example: `  agentmesh policy policies/default.yaml --validate
  agentmesh policy policies/ --validate --output json
  agentmesh policy test policies/default_test.yaml
  agentmesh policy explain --tool api_call --params '{"url": "https://api.weather.com/v1"}'`,
		Args: pathArgs,
		RunE: func(c *cobra.Command, args []string) error {
			opts.Paths = args
			return policyRun(g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Validate, "validate", false, "only check the files: print every error as FILE:LINE:COL: message")
	cmd.AddCommand(newPolicyTestCmd(g), newPolicyExplainCmd(g))
	return cmd
}

// policyProblem is one validation error in --output json.
type policyProblem struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

type policyReport struct {
	Valid  bool            `json:"valid"`
	Files  []string        `json:"files"`
	Errors []policyProblem `json:"errors"`
	Rules  []policyRule    `json:"rules,omitempty"`
}

type policyRule struct {
	Rule      string `json:"rule"`
	Stage     string `json:"stage"`
	Action    string `json:"action"`
	Limit     string `json:"limit,omitempty"`
	Severity  string `json:"severity,omitempty"`
	Enabled   bool   `json:"enabled"`
	Condition string `json:"condition"`
	Source    string `json:"source"`
}

func policyRun(g *globals, opts policyOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	set, files, err := loadPolicies(g, opts.Paths)
	report := policyReport{Valid: err == nil, Files: policyOrEmpty(files), Errors: []policyProblem{}}
	if err != nil && policy.IsReadError(err) {
		if format == ui.JSON {
			report.Errors = append(report.Errors, policyProblem{Message: err.Error()})
			ui.WriteJSON(g.io.Out, report)
		}
		return fmt.Errorf("policy: %w", err)
	}
	for _, e := range yamlpos.Errors(err) {
		report.Errors = append(report.Errors, policyProblem{File: e.File, Line: e.Line, Column: e.Column, Message: e.Msg})
	}
	if set != nil && !opts.Validate {
		for _, r := range set.Rules() {
			pr := policyRule{Rule: r.ID, Stage: r.Stage.String(), Action: string(r.Action), Severity: string(r.Severity),
				Enabled: r.Enabled, Condition: r.Condition, Source: r.Pos.String()}
			if r.Limit != nil {
				pr.Limit = r.Limit.String()
			}
			report.Rules = append(report.Rules, pr)
		}
	}
	if format == ui.JSON {
		if err := ui.WriteJSON(g.io.Out, report); err != nil {
			return err
		}
	} else {
		for _, e := range yamlpos.Errors(err) {
			fmt.Fprintln(g.io.Err, e.Error())
		}
		if !opts.Validate && set != nil {
			printPolicyRules(g, format, report.Rules)
		}
	}
	if !report.Valid {
		n := len(report.Errors)
		return problemf("policy: %d error%s in %s", n, policyPlural(n), strings.Join(files, ", "))
	}
	if format != ui.JSON {
		g.io.Success("%s: %d rules, valid", strings.Join(files, ", "), len(set.Rules()))
	}
	return nil
}

func printPolicyRules(g *globals, format ui.Format, rules []policyRule) {
	rows := make([][]string, len(rules))
	for i, r := range rules {
		action := r.Action
		if r.Limit != "" {
			action += " beyond " + r.Limit
		}
		if !r.Enabled {
			action += " (disabled)"
		}
		rows[i] = []string{r.Rule, r.Stage, action, r.Condition}
	}
	g.io.Rows(format, []string{"rule", "stage", "action", "condition"}, rows)
}

// loadPolicies loads the policy files named by paths, or the configured
// ones (policies.paths in agentmesh.yaml), or the built-in default. It
// returns the files it read, for messages.
func loadPolicies(g *globals, paths []string) (*policy.Set, []string, error) {
	if len(paths) == 0 {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, nil, &policy.ReadError{Path: "configuration", Err: err}
		}
		for _, p := range cfg.Policies.Paths {
			paths = append(paths, cfg.ResolvePath(p))
		}
	}
	if len(paths) == 0 {
		f, err := policy.ParseFile(embeddedPolicyName, policy.DefaultYAML)
		if err != nil {
			return nil, []string{embeddedPolicyName}, err
		}
		set, err := policy.NewSet(f)
		return set, []string{embeddedPolicyName}, err
	}
	files, err := policy.Expand(paths...)
	if err != nil {
		return nil, paths, err
	}
	set, err := policy.Load(paths...)
	return set, files, err
}

// secretDetector is the redaction detectors behind has_secret(), as
// configured (redaction.gitleaks, redaction.pii, redaction.phi and the
// hipaa framework, redaction.timeout).
func secretDetector(cfg *config.Config) policy.SecretDetector {
	return redact.New(cfg.RedactOptions())
}

type policyTestOptions struct {
	Files   []string
	Verbose bool
}

func newPolicyTestCmd(g *globals) *cobra.Command {
	opts := policyTestOptions{}
	cmd := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run policy test files: calls and the decisions they must get",
		Long: `Test runs policy test files. A test file names the policies it tests and
lists calls (tool, params, output, agent, trust_score, ...), how many identical
calls came just before (prior_calls, for rate limits), and the expected
action and matched rules:

  policies: [default.yaml]
  tests:
    - name: the 101st api_call in an hour is blocked
      call: {tool: api_call}
      prior_calls: 100
      expect: {action: block, rules: [rate-limit-api-calls/api-100-per-hour]}

Results are reported like go test; the exit status is 1 if a test fails or
a file is invalid, 2 if a file cannot be read. 'agentmesh init' writes
policies/default_test.yaml; see docs/policy.md for the format.`,
		Example: `  agentmesh policy test policies/default_test.yaml
  agentmesh policy test -v policies/*_test.yaml
  agentmesh policy test policies/default_test.yaml --output json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.Files = args
			return policyTestRun(g, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "also list the tests that pass")
	return cmd
}

type policyTestFileReport struct {
	File   string              `json:"file"`
	Passed bool                `json:"passed"`
	Errors []policyProblem     `json:"errors,omitempty"`
	Tests  []policy.TestResult `json:"tests"`
}

func policyTestRun(g *globals, opts policyTestOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	var secrets policy.SecretDetector
	var serve policy.ServeFunc
	cfg, cfgErr := g.loadConfig()
	if cfgErr == nil {
		secrets = secretDetector(cfg)
		serve = serveCase(cfg)
	} else {
		serve = func(context.Context, *policy.Engine, time.Time, *policy.Call, *string) (policy.ServeOutcome, error) {
			return policy.ServeOutcome{}, fmt.Errorf("the configuration (tools, scopes, trust) cannot be loaded: %v", cfgErr)
		}
	}
	ctx := context.Background()
	var reports []policyTestFileReport
	failed := 0
	for _, file := range opts.Files {
		start := time.Now()
		rep := policyTestFileReport{File: file, Tests: []policy.TestResult{}}
		tf, err := policy.LoadTestFile(file)
		switch {
		case err != nil && policy.IsReadError(err):
			return fmt.Errorf("policy test: %w", err)
		case err != nil:
			for _, e := range yamlpos.Errors(err) {
				rep.Errors = append(rep.Errors, policyProblem{File: e.File, Line: e.Line, Column: e.Column, Message: e.Msg})
			}
		default:
			rep.Tests = tf.Run(ctx, policy.TestOptions{Secrets: secrets, Serve: serve})
		}
		rep.Passed = len(rep.Errors) == 0
		for _, r := range rep.Tests {
			rep.Passed = rep.Passed && r.Passed
		}
		if !rep.Passed {
			failed++
		}
		reports = append(reports, rep)
		if format != ui.JSON {
			printTestFileReport(g.io.Out, rep, opts.Verbose, time.Since(start))
		}
	}
	if format == ui.JSON {
		if err := ui.WriteJSON(g.io.Out, map[string]any{"passed": failed == 0, "files": reports}); err != nil {
			return err
		}
	}
	if failed > 0 {
		return problemf("policy test: %d of %d file%s failed", failed, len(reports), policyPlural(len(reports)))
	}
	return nil
}

// serveCase decides a policy test's serve case as `agentmesh serve` would
// with cfg's tools, scopes, trust model and redaction, the test file's
// policies (the case's engine) and the case's trust score and clock.
func serveCase(cfg *config.Config) policy.ServeFunc {
	return func(ctx context.Context, e *policy.Engine, now time.Time, call *policy.Call, output *string) (policy.ServeOutcome, error) {
		ex, err := mcpserver.OpenExplainer(ctx, cfg, mcpserver.ExplainOptions{Policy: e, TrustScore: call.TrustScore, Now: func() time.Time { return now }})
		if err != nil {
			return policy.ServeOutcome{}, err
		}
		defer ex.Close()
		x := ex.Explain(ctx, governance.Call{Tool: call.Tool, Args: call.Params, Client: call.Client, Upstream: call.Upstream,
			UpstreamTool: call.UpstreamTool, Method: call.Method, URI: call.URI}, output)
		o := policy.ServeOutcome{Result: string(x.Result), Layer: x.Layer, Reason: x.Reason, Rules: x.Rules, Trust: string(x.Trust.Kind)}
		switch {
		case x.PreCall != nil && x.PostCall != nil:
			d := policy.Merge(*x.PreCall, *x.PostCall)
			o.Policy = &d
		case x.PreCall != nil:
			o.Policy = x.PreCall
		}
		return o, nil
	}
}

// printTestFileReport prints results the way go test does: failures in
// full, passes with -v, then one ok/FAIL line per file.
func printTestFileReport(w io.Writer, rep policyTestFileReport, verbose bool, elapsed time.Duration) {
	for _, e := range rep.Errors {
		fmt.Fprintf(w, "%s:%d:%d: %s\n", e.File, e.Line, e.Column, e.Message)
	}
	failed := 0
	for _, r := range rep.Tests {
		if r.Passed {
			if verbose {
				fmt.Fprintf(w, "--- PASS: %s (%s)\n", r.Name, r.Source)
			}
			continue
		}
		failed++
		fmt.Fprintf(w, "--- FAIL: %s (%s)\n", r.Name, r.Source)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
	secs := fmt.Sprintf("%.3fs", elapsed.Seconds())
	switch {
	case len(rep.Errors) > 0:
		fmt.Fprintf(w, "FAIL\t%s\t[invalid test file]\n", rep.File)
	case failed > 0:
		fmt.Fprintf(w, "FAIL\t%s\t%d of %d tests failed\t%s\n", rep.File, failed, len(rep.Tests), secs)
	default:
		fmt.Fprintf(w, "ok  \t%s\t%d tests\t%s\n", rep.File, len(rep.Tests), secs)
	}
}

type policyExplainOptions struct {
	Policies   []string
	Tool       string
	Params     string
	Output     string
	HasOutput  bool
	Agent      string
	TrustScore int
	Client     string
	Upstream   string
	UpTool     string
	Method     string
	URI        string
	PriorCalls int
	// Caller is who calls, as JSON (explainCaller).
	Caller string
}

// explainCaller is `policy explain --caller`: who calls, as conditions see
// it (caller.*).
type explainCaller struct {
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Iss      string         `json:"iss"`
	Sub      string         `json:"sub"`
	ClientID string         `json:"client_id"`
	Name     string         `json:"name"`
	Scopes   []string       `json:"scopes"`
	Groups   []string       `json:"groups"`
	Claims   map[string]any `json:"claims"`
}

// parseExplainCaller reads --caller: a JSON object with at least an id;
// the kind follows from the id's prefix when not given.
func parseExplainCaller(s string) (*caller.Caller, error) {
	var ec explainCaller
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ec); err != nil {
		return nil, fmt.Errorf("--caller must be a JSON object such as '{\"id\": \"oauth:https://as#alice\", \"groups\": [\"eng\"]}' (members: id, kind, iss, sub, client_id, name, scopes, groups, claims): %v", err)
	}
	if ec.ID == "" {
		return nil, errors.New("--caller needs an id (oauth:ISS#SUB, key:NAME, mtls:NAME, local:USER)")
	}
	kind := caller.Kind(ec.Kind)
	if kind == "" {
		var ok bool
		if kind, ok = caller.KindOf(ec.ID); !ok {
			kind = caller.OAuth
		}
	}
	return &caller.Caller{ID: ec.ID, Kind: kind, Issuer: ec.Iss, Subject: ec.Sub, ClientID: ec.ClientID, Name: ec.Name,
		Scopes: ec.Scopes, Groups: ec.Groups, Claims: ec.Claims}, nil
}

func newPolicyExplainCmd(g *globals) *cobra.Command {
	opts := policyExplainOptions{}
	cmd := &cobra.Command{
		Use:   "explain --tool TOOL [--params JSON] [--tool-output TEXT]",
		Short: "Show what serve would decide for a call, which layer decides, and why each rule did or did not match",
		Long: `Explain runs the decision path serve runs for one call, without running the
tool: the tool known, trust (the stored score, or --trust-score), the
configured scopes, the tool's own guards (paths, mounts, SSRF, endpoints,
statements, languages), secrets sent out, and the policies (--policy, else the
ones in agentmesh.yaml, else the built-in default). It prints serve's verdict
and the layer that decided it, what the call would cost in trust, then the
policy's decision, every matched rule and what became of each rule. With
--tool-output the rules that read the output run too, and redaction. Rate
limits start empty (--prior-calls N simulates N identical calls just before);
nothing is written to the audit log or the trust state.

(The tool's output is --tool-output, not --output: --output picks the format,
as in every command.)`,
		Example: `  agentmesh policy explain --tool api_call --prior-calls 100
  agentmesh policy explain --tool database_query --params '{"query": "DROP TABLE users"}'
  agentmesh policy explain --tool filesystem_read --params '{"path": "/data/users.json"}' \
      --tool-output 'password: hunter2' --output json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.HasOutput = c.Flags().Changed("tool-output")
			if !c.Flags().Changed("trust-score") {
				opts.TrustScore = -1
			}
			return policyExplainRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.Policies, "policy", nil, "policy file or directory (repeatable; default: policies.paths in agentmesh.yaml)")
	f.StringVar(&opts.Tool, "tool", "", "tool name (required)")
	f.StringVar(&opts.Params, "params", "{}", "the call's arguments as a JSON object")
	f.StringVar(&opts.Output, "tool-output", "", "the tool's output, for the rules that use output")
	f.StringVar(&opts.Agent, "agent", "", "agent DID (default: this server's, did:agentmesh:NAME)")
	f.IntVar(&opts.TrustScore, "trust-score", 0, "trust score (default: the stored score, else trust.initial)")
	f.StringVar(&opts.Client, "client", "", "MCP client name")
	f.StringVar(&opts.Upstream, "upstream", "", "upstream server, for a proxied call")
	f.StringVar(&opts.UpTool, "upstream-tool", "", "the upstream's own tool name")
	f.StringVar(&opts.Method, "method", "tools/call", "MCP method")
	f.StringVar(&opts.URI, "uri", "", "resource URI (resources/read)")
	f.IntVar(&opts.PriorCalls, "prior-calls", 0, "identical calls just before this one, for rate limits")
	f.StringVar(&opts.Caller, "caller", "", `who calls, as JSON: '{"id": "oauth:ISS#SUB", "groups": [...], "scopes": [...], "claims": {...}}' (default: the local user)`)
	cmd.MarkFlagRequired("tool")
	return cmd
}

func policyExplainRun(g *globals, opts policyExplainOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	var params map[string]any
	if err := json.Unmarshal([]byte(opts.Params), &params); err != nil {
		return fmt.Errorf("policy explain: --params must be a JSON object: %v", err)
	}
	if opts.PriorCalls < 0 || opts.PriorCalls > policy.MaxPriorCalls {
		return fmt.Errorf("policy explain: --prior-calls must be between 0 and %d", policy.MaxPriorCalls)
	}
	var who *caller.Caller
	if opts.Caller != "" {
		if who, err = parseExplainCaller(opts.Caller); err != nil {
			return fmt.Errorf("policy explain: %w", err)
		}
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	set, _, err := loadPolicies(g, opts.Policies)
	if err != nil {
		if policy.IsReadError(err) {
			return fmt.Errorf("policy explain: %w", err)
		}
		return problemf("policy explain: the policies do not validate:\n%s", indent(err.Error()))
	}
	now := time.Now()
	ctx := context.Background()
	scratch := func() *policy.Engine {
		return policy.NewEngine(set, policy.Options{
			Counter: ratelimit.NewMemory(), Secrets: secretDetector(cfg),
			Clock: func() time.Time { return now }, Shadow: cfg.Governance.ShadowMode,
		})
	}
	serveEngine := scratch()
	ex, err := mcpserver.OpenExplainer(ctx, cfg, mcpserver.ExplainOptions{Policy: serveEngine, TrustScore: opts.TrustScore, Now: func() time.Time { return now }})
	if err != nil {
		return fmt.Errorf("policy explain: %w", err)
	}
	defer ex.Close()
	call := &policy.Call{
		Tool: opts.Tool, Params: params, Agent: opts.Agent, TrustScore: ex.Score, Client: opts.Client,
		Upstream: opts.Upstream, UpstreamTool: opts.UpTool, Method: opts.Method, URI: opts.URI,
	}
	if call.Agent == "" {
		call.Agent = ex.Agent
	}
	if who != nil {
		call.Caller = governance.CallerEnv(who)
		if who.Kind.OwnTrust() {
			call.Subject = who.ID
		}
		ctx = caller.NewContext(ctx, who)
	}
	e := scratch()
	var output *string
	if opts.HasOutput {
		output = &opts.Output
	}
	for i := 0; i < opts.PriorCalls; i++ {
		for _, eng := range []*policy.Engine{e, serveEngine} {
			pre := eng.PreCall(ctx, call)
			if output != nil && pre.Proceeds() {
				eng.PostCall(ctx, call, *output)
			}
		}
	}
	x := e.Explain(ctx, call, output)
	verdict := ex.Explain(ctx, governance.Call{Tool: opts.Tool, Args: params, Client: opts.Client, Upstream: opts.Upstream,
		UpstreamTool: opts.UpTool, Method: opts.Method, URI: opts.URI}, output)
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, struct {
			Serve governance.Explanation `json:"serve"`
			policy.Explanation
		}{verdict, x})
	}
	printVerdict(g, verdict, ex.Score)
	printExplanation(g, format, x)
	return nil
}

// printVerdict says what serve would do with the call and which layer
// decides, and what it would cost in trust.
func printVerdict(g *globals, v governance.Explanation, score int) {
	what := string(v.Result)
	switch v.Layer {
	case "":
		what += ": every layer lets it through"
		if v.WriteAhead {
			what += " (its intent is logged before the tool runs)"
		}
	default:
		what += " by the " + v.Layer + " layer"
		if len(v.Rules) > 0 {
			what += " (" + strings.Join(v.Rules, ", ") + ")"
		}
	}
	cost := string(v.Trust.Kind)
	if v.Trust.Once != "" {
		cost += ", once per repeat window"
	}
	fields := []ui.Field{{Label: "serve", Value: what, Attention: v.Result != "allowed"}}
	if v.Reason != "" && v.Layer != "" {
		fields = append(fields, ui.Field{Label: "because", Value: v.Reason})
	}
	if v.Access != "" {
		fields = append(fields, ui.Field{Label: "access", Value: v.Access})
	}
	fields = append(fields, ui.Field{Label: "trust", Value: fmt.Sprintf("%d now; this call records %s", score, cost)})
	g.io.Record("", fields)
	fmt.Fprintln(g.io.Out)
}

func printExplanation(g *globals, format ui.Format, x policy.Explanation) {
	d := x.Decision
	decision := string(d.Action)
	if !d.Enforced {
		decision += " (shadow mode: not enforced)"
	}
	fields := []ui.Field{
		{Label: "decision", Value: decision + " (the policies)", Attention: !d.Permits()},
		{Label: "reason", Value: d.Reason},
	}
	if d.RedactionRequired() {
		fields = append(fields, ui.Field{Label: "redaction", Value: "mandatory: if the detectors find nothing to remove, the output is withheld", Attention: true})
	}
	for i, m := range d.Matched {
		label := ""
		if i == 0 {
			label = "matched"
		}
		fields = append(fields, ui.Field{Label: label, Value: m.String()})
	}
	if len(d.Matched) == 0 {
		fields = append(fields, ui.Field{Label: "matched", Value: "no rule"})
	}
	g.io.Record("", fields)
	fmt.Fprintln(g.io.Out)
	rows := make([][]string, len(x.Rules))
	for i, r := range x.Rules {
		mark := " "
		if r.Matched {
			mark = "✓"
		}
		result := r.Result
		if r.Error != "" {
			result += ": " + r.Error
		}
		rows[i] = []string{mark, r.Rule, r.Stage.String(), result}
	}
	g.io.Rows(format, []string{"", "rule", "stage", "result"}, rows)
}

func policyPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func policyOrEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
