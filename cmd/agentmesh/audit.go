package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

type auditListOptions struct {
	Agent, Caller, Tool, Result, Since string
	Limit                              int
	Follow                             bool
	Now                                func() time.Time
}

func newAuditCmd(g *globals) *cobra.Command {
	opts := auditListOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List audit entries (newest last); verify, prove and export the log",
		Long: `Every governed tool call, allowed or not, and every lifecycle event (identity
created, key rotated, credential issued, policy loaded, trust changed) is an
entry in a tamper-evident log: an RFC 6962 Merkle tree whose root is signed
as a C2SP checkpoint with the identity key.

--output json prints one JSON array; --output jsonl one canonical entry per
line, byte for byte as hashed.`,
		Example: `  agentmesh audit --agent did:agentmesh:mcp-tool-server --limit 50
  agentmesh audit --tool api_call --result blocked --since 1h
  agentmesh audit --follow
  agentmesh audit --output jsonl | jq .`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return auditListRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Agent, "agent", "", "only entries of this agent DID")
	f.StringVar(&opts.Caller, "caller", "", "only calls by this caller ID (oauth:ISS#SUB, key:NAME, local:USER; see the caller column)")
	f.StringVar(&opts.Tool, "tool", "", "only entries of this tool")
	f.StringVar(&opts.Result, "result", "", "only entries with this result: allowed, blocked, redacted, withheld (a redact rule matched and nothing could be removed) or error")
	f.StringVar(&opts.Since, "since", "", "only entries since a duration ago (1h, 30m) or an RFC 3339 time")
	f.IntVar(&opts.Limit, "limit", 50, "show at most the newest N entries (0: all)")
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new entries as they are written (by any process)")
	cmd.AddCommand(newAuditVerifyCmd(g), newAuditProveCmd(g), newAuditExportCmd(g))
	return cmd
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("--since %q: give a positive duration", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want a duration such as 1h or an RFC 3339 time such as 2026-01-31T10:00:00Z", s)
	}
	return t, nil
}

func auditListRun(g *globals, opts auditListOptions) error {
	jsonl := g.v.GetString("output") == "jsonl"
	var format ui.Format
	if !jsonl {
		var err error
		if format, err = g.format(); err != nil {
			return fmt.Errorf("%w (audit also accepts jsonl)", err)
		}
	}
	if opts.Follow && format == ui.JSON {
		return fmt.Errorf("--follow streams entries as they are written, which --output json (one array) cannot: use --output jsonl (one JSON entry per line)")
	}
	switch opts.Result {
	case "", "allowed", "blocked", "redacted", "withheld", "error":
	default:
		return fmt.Errorf("--result %q: want allowed, blocked, redacted, withheld or error", opts.Result)
	}
	if opts.Limit < 0 {
		return fmt.Errorf("--limit must not be negative")
	}
	since, err := parseSince(opts.Since, opts.Now())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	l, err := g.openAuditSource(ctx)
	if err != nil {
		return err
	}
	defer l.close()
	filter := auditlog.Filter{Agent: opts.Agent, Caller: opts.Caller, Tool: opts.Tool, Result: opts.Result, Since: since, AfterSeq: -1, Limit: opts.Limit}
	entries, err := l.list(ctx, filter)
	if err != nil {
		return err
	}
	// A followed listing is printed as a stream: one header, then rows in
	// the same columns as they come.
	var stream *ui.RowStream
	switch {
	case jsonl:
		for _, s := range entries {
			fmt.Fprintf(g.io.Out, "%s\n", s.Raw)
		}
	case format == ui.JSON:
		out := make([]jsonRaw, len(entries))
		for i, s := range entries {
			out[i] = s.Raw
		}
		return ui.WriteJSON(g.io.Out, out)
	case opts.Follow:
		stream = g.io.StreamRows(format, entryHeaders)
		stream.Rows(entryRows(entries))
	case len(entries) == 0:
		fmt.Fprintln(g.io.Err, "no audit entries match")
		return nil
	default:
		g.io.Rows(format, entryHeaders, entryRows(entries))
	}
	if !opts.Follow {
		return nil
	}
	if len(entries) > 0 {
		filter.AfterSeq = int64(entries[len(entries)-1].Entry.Seq)
	} else if n, err := l.size(ctx); err == nil {
		filter.AfterSeq = n - 1
	}
	for s, err := range l.follow(ctx, filter, 200*time.Millisecond) {
		if err != nil {
			return err
		}
		if jsonl {
			fmt.Fprintf(g.io.Out, "%s\n", s.Raw)
		} else {
			stream.Rows(entryRows([]auditlog.Stored{s}))
		}
	}
	return nil
}

// jsonRaw embeds stored entry bytes in JSON output unchanged.
type jsonRaw []byte

func (r jsonRaw) MarshalJSON() ([]byte, error) { return r, nil }

// entryHeaders are the columns of the audit listing. target comes last so
// that the columns before it keep their places for scripts reading text.
var entryHeaders = []string{"seq", "time", "action", "tool", "result", "trust", "caller", "reason", "target"}

// entryRows shows a call whose intent was logged ahead (write-ahead) as
// one row, "INTENT→SEQ", when both are listed; an intent with no outcome
// (still running, or the process died while it ran) is a row of its own.
func entryRows(entries []auditlog.Stored) [][]string {
	done := map[uint64]bool{}
	for _, s := range entries {
		if s.Entry.Intent != nil {
			done[*s.Entry.Intent] = true
		}
	}
	rows := make([][]string, 0, len(entries))
	for _, s := range entries {
		e := s.Entry
		if e.Action == audit.ActionToolIntent && done[e.Seq] {
			continue
		}
		trust := ""
		if e.TrustScore != nil {
			trust = strconv.Itoa(*e.TrustScore)
		}
		result := string(e.Result)
		switch e.Result {
		case audit.ResultAllowed:
			result = "✓ allowed"
		case audit.ResultBlocked:
			result = "✗ blocked"
		}
		reason := e.Reason
		if len(e.Rules) > 0 {
			reason = strings.TrimSpace(reason + " [" + strings.Join(e.Rules, ", ") + "]")
		}
		seq := strconv.FormatUint(e.Seq, 10)
		if e.Intent != nil {
			seq = strconv.FormatUint(*e.Intent, 10) + "→" + seq
		}
		if e.Action == audit.ActionToolIntent {
			result = "… no outcome yet"
		}
		who := ""
		if e.Caller != nil {
			who = e.Caller.ID
		}
		rows = append(rows, []string{seq, e.Timestamp.Format(time.RFC3339), string(e.Action), e.Tool, result, trust, who, reason, entryTarget(e)})
	}
	return rows
}

// shortLen is how many characters of a database query or of code the
// target column shows.
const shortLen = 40

// entryTarget is what a call reached for: the path, URL, database query,
// code or upstream tool. It comes from the access the pipeline recorded
// ("read filesystem:/data/users.json", "call api:https://x/y", "call
// mcp:files/read_file"), else from the call's parameters.
func entryTarget(e audit.Entry) string {
	var params map[string]any
	if len(e.Params) > 0 {
		_ = json.Unmarshal(e.Params, &params)
	}
	param := func(key string) string {
		v, _ := params[key].(string)
		return v
	}
	var details struct {
		Access       string `json:"access"`
		Upstream     string `json:"upstream"`
		UpstreamTool string `json:"upstream_tool"`
		KeyID        string `json:"key_id"`     // api_key_created, api_key_revoked
		KeyCaller    string `json:"key_caller"` // the key's caller, key:NAME
	}
	if len(e.Details) > 0 {
		_ = json.Unmarshal(e.Details, &details)
	}
	if details.Access != "" {
		_, target, ok := strings.Cut(details.Access, " ")
		if !ok {
			return details.Access
		}
		kind, what, ok := strings.Cut(target, ":")
		if !ok {
			return target
		}
		switch kind {
		case "filesystem", "api", "mcp":
			return what
		case "database":
			if q := param("query"); q != "" {
				return what + ": " + shorten(q, shortLen)
			}
			return target
		case "code":
			if c := param("code"); c != "" {
				return what + ": " + shorten(c, shortLen)
			}
			return target
		}
		return target
	}
	for _, key := range []string{"path", "url", "uri"} {
		if v := param(key); v != "" {
			return v
		}
	}
	for _, key := range []string{"query", "code"} {
		if v := param(key); v != "" {
			return shorten(v, shortLen)
		}
	}
	switch {
	case details.Upstream != "" && details.UpstreamTool != "":
		return details.Upstream + "/" + details.UpstreamTool
	case e.Upstream != "":
		return "upstream " + e.Upstream
	case details.KeyID != "":
		return "API key " + details.KeyID + " of " + details.KeyCaller
	}
	return ""
}

// shorten puts s on one line and cuts it to n characters, ending it with
// "…" when anything was cut.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return strings.TrimSpace(string(r[:n-1])) + "…"
	}
	return s
}

type auditVerifyOptions struct {
	Incremental bool
	Proof       string
	Key         string
	NoWitness   bool
	// Database is a PostgreSQL state database to verify instead of the
	// state directory's SQLite log (a fleet's shared log).
	Database    string
	WitnessKeys []string
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	opts := auditVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole log offline: entries, Merkle root, signed checkpoints, witnesses",
		Long: `Verify recomputes the RFC 6962 tree from every entry and checks it against the
signed checkpoint (any key of the identity's history), against every signed
checkpoint kept since, and against the witness copy kept outside the state
directory, all in one consistent read (writers may keep appending). It names
what it finds and where: an edited entry, an edited stored hash or column
copy, a deletion (at the first missing seq), a rollback (at the tail), or a
fork (two signed roots for one size, naming both). Exit status 1 when
anything is wrong.

--incremental hashes only the entries added since the last full verification
that passed (its record is signed with the identity key), and checks the
stored tree's roots at both ends; it cannot clear a failed full
verification, which stays the verdict of 'agentmesh status' until a full
verification passes.

A log with signed checkpoints but no witness fails, since a rollback could no
longer be seen; --no-witness accepts that knowingly (a log copied from another
machine) and, when everything else verifies, starts a new witness.

--witness-key VKEY (repeatable) requires a cosignature from that external
witness (audit.witnesses) and checks the log against the newest checkpoint it
cosigned.

--proof FILE checks an inclusion proof from 'agentmesh audit prove' instead
('-' reads stdin); with --key (the log's verifier key, as 'agentmesh identity
show' prints it, or a copy of identity.json) it needs nothing else from the
state directory, so an auditor can check it on another machine.`,
		Example: `  agentmesh audit verify
  agentmesh audit verify --incremental
  agentmesh audit verify --witness-key witness.example+8e1c0b5a+BF0pW...
  agentmesh audit prove 41 > proof.json && agentmesh audit verify --proof proof.json
  agentmesh audit verify --proof proof.json --key 'agentmesh/did:agentmesh:srv/3ea0...+626cf83e+AUm...'`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if opts.Key != "" && opts.Proof == "" {
				return usageError(c, "--key goes with --proof FILE: it names the key that signed the proof's checkpoint")
			}
			return auditVerifyRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Incremental, "incremental", false, "hash only entries added since the last full verification")
	f.StringVar(&opts.Proof, "proof", "", "verify an inclusion proof file instead of the log ('-': stdin)")
	f.StringVar(&opts.Key, "key", "", "with --proof: the log's verifier key, or a file holding it or identity.json")
	f.BoolVar(&opts.NoWitness, "no-witness", false, "accept a log without a witness (copied from another machine) and start one")
	f.StringVar(&opts.Database, "database", "", "verify the audit log in this PostgreSQL state database (postgres://...; a fleet's, or `state migrate`'s copy) instead of the state directory's")
	f.StringArrayVar(&opts.WitnessKeys, "witness-key", nil, "require a cosignature by this external witness (verifier key; repeatable)")
	return cmd
}

func auditVerifyRun(g *globals, opts auditVerifyOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if opts.Database != "" {
		return verifyPostgresRun(g, opts.Database, format)
	}
	if cfg, err := g.loadConfig(); err == nil && onPostgres(cfg) {
		if opts.Proof != "" {
			_, d, err := g.openState()
			if err != nil {
				return err
			}
			doc, err := identity.LoadDocument(d)
			if err != nil {
				return err
			}
			vs, err := auditlog.Verifiers(doc)
			if err != nil {
				return err
			}
			return verifyProofRun(g, vs, opts.Proof, format)
		}
		if opts.Incremental || len(opts.WitnessKeys) > 0 {
			return fmt.Errorf("audit verify: --incremental and --witness-key are not supported yet with a PostgreSQL state database (from %s); a full verify is", cfg.Source.DatabaseFrom)
		}
		return verifyPostgresRun(g, cfg.Source.Database, format)
	}
	if opts.Proof != "" && opts.Key != "" {
		vs, err := proofVerifiers(opts.Key)
		if err != nil {
			return err
		}
		return verifyProofRun(g, vs, opts.Proof, format)
	}
	cfg, d, err := g.openState()
	if err != nil {
		return err
	}
	l, db, err := openAuditVerifier(ctx, cfg, d, opts.Proof == "")
	if err != nil {
		return err
	}
	defer db.Close()
	if opts.Proof != "" {
		return verifyProofRun(g, l.Verifiers(), opts.Proof, format)
	}
	vopts := auditlog.VerifyOptions{Incremental: opts.Incremental, NoWitness: opts.NoWitness}
	if len(opts.WitnessKeys) > 0 {
		if vopts.Cosigned, err = cosignedCheckpoints(ctx, cfg, l, opts.WitnessKeys); err != nil {
			return err
		}
	}
	rep, err := l.Verify(ctx, vopts)
	started := ""
	if err == nil && opts.NoWitness && rep.Witness == nil && rep.Checkpoint != nil && !opts.Incremental {
		if started, err = l.StartWitness(); err != nil {
			err = fmt.Errorf("the log verified, but starting its witness failed: %w", err)
		}
	}
	if format == ui.JSON {
		out := struct {
			OK bool `json:"ok"`
			auditlog.Report
			WitnessStarted string `json:"witness_started,omitempty"`
			Seq            *int64 `json:"seq,omitempty"`
			Kind           string `json:"kind,omitempty"`
			Reason         string `json:"reason,omitempty"`
		}{OK: err == nil, Report: rep, WitnessStarted: started}
		if err != nil {
			out.Reason = err.Error()
			if rep.Problem != nil {
				out.Kind, out.Reason = rep.Problem.Kind.String(), rep.Problem.Detail
				if rep.Problem.Seq >= 0 {
					out.Seq = &rep.Problem.Seq
				}
			}
		}
		if werr := ui.WriteJSON(g.io.Out, out); werr != nil {
			return werr
		}
		if err != nil {
			return silentProblem
		}
		return nil
	}
	if err != nil {
		if p := rep.Problem; p != nil {
			if p.Seq >= 0 {
				return problemf("audit verify failed at seq %d: %s: %s", p.Seq, p.Kind, p.Detail)
			}
			return problemf("audit verify failed: %s: %s", p.Kind, p.Detail)
		}
		return problemf("audit verify failed: %v", err)
	}
	fmt.Fprintf(g.io.Out, "✓ audit log verified (%s): %d entries, %d hashed in %s\n", rep.Mode, rep.Size, rep.Hashed, rep.Duration.Round(time.Millisecond))
	if rep.FullBecause != "" {
		fmt.Fprintf(g.io.Out, "  full run    %s\n", rep.FullBecause)
	}
	fmt.Fprintf(g.io.Out, "  root        %s\n", rep.Root)
	if rep.Checkpoint != nil {
		fmt.Fprintf(g.io.Out, "  checkpoint  size %d, signed %s\n", rep.Checkpoint.Size, rep.Checkpoint.Time.Format(time.RFC3339))
	}
	switch {
	case started != "":
		fmt.Fprintf(g.io.Out, "  witness     started at size %d (%s): --no-witness accepted the log as it is\n", rep.Checkpoint.Size, started)
	case rep.Witness != nil:
		fmt.Fprintf(g.io.Out, "  witness     size %d, consistent (%s)\n", rep.Witness.Size, rep.WitnessPath)
	case rep.WitnessPath != "" && rep.Checkpoint != nil:
		fmt.Fprintf(g.io.Out, "  witness     NONE at %s (accepted with --no-witness)\n", rep.WitnessPath)
	case rep.WitnessPath != "":
		fmt.Fprintf(g.io.Out, "  witness     none yet at %s\n", rep.WitnessPath)
	default:
		fmt.Fprintf(g.io.Out, "  witness     disabled\n")
	}
	for _, c := range rep.Cosigned {
		fmt.Fprintf(g.io.Out, "  cosigned    size %d by %s, consistent\n", c.Size, c.Witness)
	}
	return nil
}

// proofVerifiers reads --key: a verifier key, or a file holding one, or a
// copy of identity.json (every key of its history).
func proofVerifiers(key string) (note.Verifiers, error) {
	text := strings.TrimSpace(key)
	if b, err := os.ReadFile(key); err == nil {
		text = strings.TrimSpace(string(b))
		if strings.HasPrefix(text, "{") {
			doc, err := identity.ParseDocument(b)
			if err != nil {
				return nil, fmt.Errorf("--key %s: %w", key, err)
			}
			return auditlog.Verifiers(doc)
		}
	}
	var vs []note.Verifier
	for _, line := range strings.Fields(text) {
		v, err := note.NewVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("--key: %q is not a verifier key (want NAME+HASH+BASE64 as `agentmesh identity show` prints it, or a file holding it or identity.json): %v", line, err)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("--key is empty")
	}
	return note.VerifierList(vs...), nil
}

func verifyProofRun(g *globals, verifiers note.Verifiers, path string, format ui.Format) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(g.io.In)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return err
	}
	v, err := audit.VerifyInclusionProof(data, verifiers)
	if err != nil {
		if format == ui.JSON {
			out := map[string]any{"ok": false, "reason": err.Error()}
			var ve *audit.VerifyError
			if errors.As(err, &ve) {
				out["kind"], out["reason"] = ve.Kind.String(), ve.Detail
			}
			if werr := ui.WriteJSON(g.io.Out, out); werr != nil {
				return werr
			}
			return silentProblem
		}
		return problemf("proof %s: %v", path, err)
	}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, map[string]any{"ok": true, "seq": v.Entry.Seq, "tree_size": v.Checkpoint.Size, "root": v.Checkpoint.Root.String(), "signed_by": v.SignedBy.String()})
	}
	fmt.Fprintf(g.io.Out, "✓ entry %d is included in the log of tree size %d (root %s), checkpoint signed by %s\n",
		v.Entry.Seq, v.Checkpoint.Size, v.Checkpoint.Root, v.SignedBy)
	return nil
}

func newAuditProveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "prove SEQ",
		Short: "Print an inclusion proof of one entry against the latest checkpoint",
		Long: `Prove prints a JSON document holding entry SEQ, the latest signed checkpoint
and the RFC 6962 audit path between them. Anyone with the identity's public
keys can check it offline with 'agentmesh audit verify --proof FILE'.`,
		Example: "  agentmesh audit prove 41 > proof-41.json",
		Args:    exactArgs(1, "SEQ, the entry's sequence number", "agentmesh audit prove 41"),
		RunE: func(c *cobra.Command, args []string) error {
			seq, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || seq < 0 {
				return usageError(c, "SEQ must be a sequence number (0, 1, 2, ...), got %q", args[0])
			}
			ctx := context.Background()
			l, err := g.openAuditSource(ctx)
			if err != nil {
				return err
			}
			defer l.close()
			proof, err := l.prove(ctx, seq)
			if err != nil {
				return fmt.Errorf("audit prove %d: %w", seq, err)
			}
			_, err = g.io.Out.Write(proof)
			return err
		},
	}
}

type auditExportOptions struct {
	Format string
	Since  string
	Now    func() time.Time
}

func newAuditExportCmd(g *globals) *cobra.Command {
	opts := auditExportOptions{Now: time.Now}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write entries for a SIEM as JSON lines or CloudEvents",
		Long: `Export writes every entry (or those since --since) to stdout, oldest first:
--format jsonl writes the canonical entries byte for byte; --format
cloudevents wraps each in a CloudEvents 1.0 structured-mode JSON event
(type dev.agentmesh.audit.<action>, id = origin/seq).`,
		Example: `  agentmesh audit export --format jsonl > audit.jsonl
  agentmesh audit export --format cloudevents --since 24h`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return auditExportRun(g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Format, "format", "jsonl", "jsonl or cloudevents")
	cmd.Flags().StringVar(&opts.Since, "since", "", "only entries since a duration ago or an RFC 3339 time")
	return cmd
}

func auditExportRun(g *globals, opts auditExportOptions) error {
	if opts.Format != "jsonl" && opts.Format != "cloudevents" {
		return fmt.Errorf("--format %q: want jsonl or cloudevents", opts.Format)
	}
	since, err := parseSince(opts.Since, opts.Now())
	if err != nil {
		return err
	}
	ctx := context.Background()
	l, err := g.openAuditSource(ctx)
	if err != nil {
		return err
	}
	defer l.close()
	entries, err := l.list(ctx, auditlog.Filter{Since: since, AfterSeq: -1})
	if err != nil {
		return err
	}
	for _, s := range entries {
		if opts.Format == "jsonl" {
			fmt.Fprintf(g.io.Out, "%s\n", s.Raw)
			continue
		}
		ev := auditlog.CloudEvent(l.origin, s)
		b, err := ev.MarshalJSON()
		if err != nil {
			return err
		}
		fmt.Fprintf(g.io.Out, "%s\n", b)
	}
	return nil
}
