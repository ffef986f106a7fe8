package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/pgtoolpin"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

// toolNameArg names the NAME argument of tools diff and approve.
const toolNameArg = "NAME, the tool's exposed name (files__read_file) or UPSTREAM/TOOL"

func newToolsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "List, diff and approve the pinned definitions of upstream tools",
		Long: `agentmesh serve pins the definition (name, description, schemas,
annotations) of every tool of every upstream MCP server the first time it
sees the upstream. After that, a tool whose definition changes (a "rug
pull"), a new tool (pin: strict) or a removed tool is recorded in the audit
log and refused until an operator reviews it here and approves it. Until
then clients keep seeing the approved definition; a new tool is not listed.

Descriptions and schemas are also scanned for known tool-poisoning patterns
(hidden <IMPORTANT> instructions, requests to read ~/.ssh or mcp.json,
invisible characters, references to other tools); findings are shown as
flags. A running serve picks approvals up without a restart.`,
		Example: `  agentmesh tools list
  agentmesh tools diff files__read_file
  agentmesh tools approve files__read_file`,
		Args: noArgs,
		RunE: func(c *cobra.Command, _ []string) error { return toolsListRun(g, "") },
	}
	var upstream string
	list := &cobra.Command{
		Use: "list", Short: "List pinned upstream tools with their status and flags", Args: noArgs,
		Long: `List shows every pinned upstream tool: approved, changed (refused until
approved), new (refused and hidden until approved) or removed. It exits 1
when any tool needs an operator's review.`,
		Example: "  agentmesh tools list --output json",
		RunE:    func(c *cobra.Command, _ []string) error { return toolsListRun(g, upstream) },
	}
	list.Flags().StringVar(&upstream, "upstream", "", "only this upstream's tools")
	diff := &cobra.Command{
		Use: "diff NAME", Short: "Show how a tool's current definition differs from the approved one",
		Args: exactArgs(1, toolNameArg, "agentmesh tools diff files__read_file"),
		Long: `Diff prints a unified diff of the approved (pinned) definition against the
one the upstream serves now, and the poisoning flags of the new one. NAME is
the exposed name (files__read_file) or UPSTREAM/TOOL. It exits 1 when there
is something to approve, 0 when the tool is approved as served.`,
		Example: "  agentmesh tools diff files__read_file",
		RunE:    func(c *cobra.Command, args []string) error { return toolsDiffRun(g, args[0]) },
	}
	cmd.AddCommand(list, diff, newToolsApproveCmd(g))
	return cmd
}

// openPins opens the tool pins; write opens the audit log for appending
// (approve), which needs the identity key.
func (g *globals) openPins(ctx context.Context, write bool) (pinStore, func(), error) {
	cfg, d, err := g.openState()
	if err != nil {
		return nil, nil, err
	}
	if onPostgres(cfg) {
		f, err := openFleet(ctx, cfg, d, write)
		if err != nil {
			return nil, nil, err
		}
		return pgtoolpin.Pins{Store: &pgtoolpin.Store{DB: f.db}, Log: f.log, Agent: f.agent()}, f.close, nil
	}
	if write {
		w, err := g.openAuditWriter(ctx)
		if err != nil {
			return nil, nil, err
		}
		return &toolpin.Store{DB: w.db, Log: w.log, Agent: w.id.DID()}, w.close, nil
	}
	_, _, db, err := g.openAudit(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &toolpin.Store{DB: db}, func() { db.Close() }, nil
}

// pinStore is the tool pins of the state directory (toolpin.Store) or of
// a fleet's PostgreSQL database (pgtoolpin.Pins).
type pinStore interface {
	List(ctx context.Context, upstream string) ([]toolpin.Pin, error)
	Find(ctx context.Context, name string) (toolpin.Pin, error)
	Approve(ctx context.Context, p toolpin.Pin, hash, by string) error
}

func toolsListRun(g *globals, upstream string) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, done, err := g.openPins(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	pins, err := store.List(ctx, upstream)
	if err != nil {
		return err
	}
	review := 0
	for _, p := range pins {
		if p.Status != toolpin.Approved {
			review++
		}
	}
	if format == ui.JSON {
		if pins == nil {
			pins = []toolpin.Pin{}
		}
		if err := ui.WriteJSON(g.io.Out, pins); err != nil {
			return err
		}
	} else if len(pins) == 0 {
		fmt.Fprintln(g.io.Out, "No upstream tools pinned yet: they are pinned when `agentmesh serve` first connects to an upstream.")
	} else {
		rows := make([][]string, len(pins))
		for i, p := range pins {
			flags := make([]string, 0, len(p.Findings))
			for _, f := range p.Findings {
				flags = append(flags, f.Rule)
			}
			rows[i] = []string{p.Exposed, p.Upstream, p.Tool, string(p.Status), shortHash(p.CurrentHash), strings.Join(uniq(flags), ",")}
		}
		g.io.Rows(format, []string{"name", "upstream", "upstream tool", "status", "definition", "flags"}, rows)
	}
	if review > 0 {
		return problemf("%d upstream tool(s) need review: run `agentmesh tools diff NAME`, then `agentmesh tools approve NAME`", review)
	}
	return nil
}

// toolDiff is `tools diff --output json`.
type toolDiff struct {
	Name           string            `json:"name"`
	Upstream       string            `json:"upstream"`
	Tool           string            `json:"upstream_tool"`
	Status         toolpin.Status    `json:"status"`
	ApprovedHash   string            `json:"approved_hash,omitempty"`
	CurrentHash    string            `json:"current_hash,omitempty"`
	Approved       json.RawMessage   `json:"approved_definition"`
	Current        json.RawMessage   `json:"current_definition"`
	Diff           string            `json:"diff"`
	Flags          []toolpin.Finding `json:"flags"`
	NeedsApproval  bool              `json:"needs_approval"`
	ApproveCommand string            `json:"approve_command,omitempty"`
}

func toolsDiffRun(g *globals, name string) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, done, err := g.openPins(ctx, false)
	if err != nil {
		return err
	}
	defer done()
	p, err := store.Find(ctx, name)
	if err != nil {
		return err
	}
	pinned, current, err := definitions(p)
	if err != nil {
		return err
	}
	var head, diff string
	switch p.Status {
	case toolpin.Approved:
		head = fmt.Sprintf("%s is approved as served (%s); nothing to review.", p.Exposed, p.CurrentHash)
	case toolpin.Removed:
		head = fmt.Sprintf("%s was removed by upstream %s. Approving forgets its pin.", p.Exposed, p.Upstream)
		diff = toolpin.Diff(p.Exposed, pinned, toolpin.Definition{})
	case toolpin.New:
		head = fmt.Sprintf("%s is new: upstream %s added it after its tools were pinned.", p.Exposed, p.Upstream)
		diff = toolpin.Diff(p.Exposed, toolpin.Definition{}, current)
	default:
		head = fmt.Sprintf("%s changed: approved %s, served now %s.", p.Exposed, p.PinnedHash, p.CurrentHash)
		diff = toolpin.Diff(p.Exposed, pinned, current)
	}
	review := p.Status != toolpin.Approved
	if format == ui.JSON {
		out := toolDiff{Name: p.Exposed, Upstream: p.Upstream, Tool: p.Tool, Status: p.Status,
			ApprovedHash: p.PinnedHash, CurrentHash: p.CurrentHash, Diff: diff, Flags: p.Findings, NeedsApproval: review}
		if len(p.PinnedDef) > 0 {
			out.Approved = pinned.Canonical()
		}
		if len(p.CurrentDef) > 0 {
			out.Current = current.Canonical()
		}
		if out.Flags == nil {
			out.Flags = []toolpin.Finding{}
		}
		if review {
			out.ApproveCommand = "agentmesh tools approve " + p.Exposed
		}
		if err := ui.WriteJSON(g.io.Out, out); err != nil {
			return err
		}
		if review {
			return silentProblem
		}
		return nil
	}
	fmt.Fprintln(g.io.Out, head)
	fmt.Fprint(g.io.Out, diff)
	printFlags(g.io.Out, p)
	if !review {
		return nil
	}
	return problemf("%s needs review: `agentmesh tools approve %s` accepts the definition shown", p.Exposed, p.Exposed)
}

func definitions(p toolpin.Pin) (pinned, current toolpin.Definition, err error) {
	if len(p.PinnedDef) > 0 {
		if pinned, err = toolpin.FromRaw(p.PinnedDef); err != nil {
			return pinned, current, fmt.Errorf("the pinned definition of %s is unreadable: %w", p.Exposed, err)
		}
	}
	if len(p.CurrentDef) > 0 {
		if current, err = toolpin.FromRaw(p.CurrentDef); err != nil {
			return pinned, current, fmt.Errorf("the current definition of %s is unreadable: %w", p.Exposed, err)
		}
	}
	return pinned, current, nil
}

func printFlags(w io.Writer, p toolpin.Pin) {
	for _, f := range p.Findings {
		fmt.Fprintf(w, "flag: %s in %s: %s\n", f.Rule, f.Field, f.Excerpt)
	}
}

type toolsApproveOptions struct {
	Hash string
	Yes  bool
}

func newToolsApproveCmd(g *globals) *cobra.Command {
	var opts toolsApproveOptions
	cmd := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve a tool's current definition (after reviewing `tools diff`)",
		Long: `Approve makes the definition the upstream serves now the pinned one, so
calls go through again; for a removed tool it forgets the pin. The approval
is recorded in the audit log with who ran it. With --hash, the approval is
refused unless the current definition is exactly the one reviewed.

A definition with poisoning flags is approved only after confirmation: on a
terminal approve shows the flags and asks; otherwise it refuses unless
--yes says the definition was reviewed ('agentmesh tools diff NAME').`,
		Example: `  agentmesh tools approve files__read_file
  agentmesh tools approve files/read_file --hash sha256:3f1c...
  agentmesh tools approve files__read_file --yes --output json`,
		Args: exactArgs(1, toolNameArg, "agentmesh tools approve files__read_file"),
		RunE: func(c *cobra.Command, args []string) error { return toolsApproveRun(g, args[0], opts) },
	}
	cmd.Flags().StringVar(&opts.Hash, "hash", "", "approve only if the current definition has this hash (see tools list --output json)")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "approve a flagged definition without asking (after reviewing `agentmesh tools diff NAME`)")
	return cmd
}

// toolApproval is `tools approve --output json`.
type toolApproval struct {
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Tool     string `json:"upstream_tool"`
	// Approved says this run approved the definition (false: it already
	// was); Forgotten, that it forgot the pin of a removed tool.
	Approved        bool              `json:"approved"`
	AlreadyApproved bool              `json:"already_approved,omitempty"`
	Forgotten       bool              `json:"forgotten,omitempty"`
	StatusWas       toolpin.Status    `json:"status_was"`
	Hash            string            `json:"hash,omitempty"`
	PreviousHash    string            `json:"previous_hash,omitempty"`
	Flags           []toolpin.Finding `json:"flags"`
	By              string            `json:"by,omitempty"`
}

func toolsApproveRun(g *globals, name string, opts toolsApproveOptions) error {
	format, err := g.format()
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, done, err := g.openPins(ctx, true)
	if err != nil {
		return err
	}
	defer done()
	p, err := store.Find(ctx, name)
	if err != nil {
		return err
	}
	out := toolApproval{Name: p.Exposed, Upstream: p.Upstream, Tool: p.Tool, StatusWas: p.Status,
		Hash: p.CurrentHash, PreviousHash: p.PinnedHash, Flags: p.Findings}
	if out.Flags == nil {
		out.Flags = []toolpin.Finding{}
	}
	if p.Status == toolpin.Approved {
		if opts.Hash != "" && opts.Hash != p.CurrentHash {
			return fmt.Errorf("%s: the approved definition is %s, not %s", p.Exposed, p.CurrentHash, opts.Hash)
		}
		fmt.Fprintf(g.io.Err, "%s is already approved (%s); nothing to do.\n", p.Exposed, p.PinnedHash)
		out.AlreadyApproved, out.PreviousHash = true, ""
		if format == ui.JSON {
			return ui.WriteJSON(g.io.Out, out)
		}
		return nil
	}
	if opts.Hash != "" && opts.Hash != p.CurrentHash {
		return fmt.Errorf("%s: the current definition is %s, not %s; review `agentmesh tools diff %s` again", p.Exposed, p.CurrentHash, opts.Hash, p.Exposed)
	}
	if len(p.Findings) > 0 && p.Status != toolpin.Removed {
		if err := confirmFlagged(g, p, opts.Yes); err != nil {
			return err
		}
	}
	who := operator()
	if err := store.Approve(ctx, p, opts.Hash, who); err != nil {
		return err
	}
	out.Approved, out.By = true, who
	if p.Status == toolpin.Removed {
		out.Forgotten, out.Hash = true, ""
		g.io.Success("forgot the pin of removed tool %s (by %s)", p.Exposed, who)
	} else {
		g.io.Success("approved %s at %s (was %s; by %s)", p.Exposed, p.CurrentHash, p.Status, who)
	}
	if format == ui.JSON {
		return ui.WriteJSON(g.io.Out, out)
	}
	return nil
}

// confirmFlagged shows the poisoning flags of the definition about to be
// approved and asks for confirmation on a terminal; elsewhere it refuses
// unless --yes.
func confirmFlagged(g *globals, p toolpin.Pin, yes bool) error {
	rules := make([]string, 0, len(p.Findings))
	for _, f := range p.Findings {
		rules = append(rules, f.Rule)
	}
	fmt.Fprintf(g.io.Err, "%s is flagged as possible tool poisoning (%s):\n", p.Exposed, strings.Join(uniq(rules), ","))
	for _, f := range p.Findings {
		fmt.Fprintf(g.io.Err, "  %s in %s: %s\n", f.Rule, f.Field, f.Excerpt)
	}
	switch {
	case yes:
		return nil
	case !g.io.InTTY:
		return problemf("%s not approved: it is flagged, and without a terminal approve cannot ask. Review `agentmesh tools diff %s`, then pass --yes to approve it anyway", p.Exposed, p.Exposed)
	}
	if g.io.Confirm(fmt.Sprintf("approve %s anyway?", p.Exposed)) {
		return nil
	}
	return problemf("%s not approved", p.Exposed)
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "-"
	}
	return h
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
