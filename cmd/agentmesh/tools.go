package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/agentmesh/agentmesh/pkg/toolpin"
	"github.com/agentmesh/agentmesh/pkg/ui"
)

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
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return toolsListRun(g, "") },
	}
	var upstream string
	list := &cobra.Command{
		Use: "list", Short: "List pinned upstream tools with their status and flags", Args: cobra.NoArgs,
		Long: `List shows every pinned upstream tool: approved, changed (refused until
approved), new (refused and hidden until approved) or removed. It exits 1
when any tool needs an operator's review.`,
		Example: "  agentmesh tools list --output json",
		RunE:    func(c *cobra.Command, _ []string) error { return toolsListRun(g, upstream) },
	}
	list.Flags().StringVar(&upstream, "upstream", "", "only this upstream's tools")
	diff := &cobra.Command{
		Use: "diff NAME", Short: "Show how a tool's current definition differs from the approved one", Args: cobra.ExactArgs(1),
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

func (g *globals) openPins(ctx context.Context, write bool) (*toolpin.Store, func(), error) {
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

func toolsDiffRun(g *globals, name string) error {
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
	switch p.Status {
	case toolpin.Approved:
		fmt.Fprintf(g.io.Out, "%s is approved as served (%s); nothing to review.\n", p.Exposed, p.CurrentHash)
		printFlags(g, p)
		return nil
	case toolpin.Removed:
		fmt.Fprintf(g.io.Out, "%s was removed by upstream %s. Approving forgets its pin.\n", p.Exposed, p.Upstream)
		fmt.Fprint(g.io.Out, toolpin.Diff(p.Exposed, pinned, toolpin.Definition{}))
	case toolpin.New:
		fmt.Fprintf(g.io.Out, "%s is new: upstream %s added it after its tools were pinned.\n", p.Exposed, p.Upstream)
		fmt.Fprint(g.io.Out, toolpin.Diff(p.Exposed, toolpin.Definition{}, current))
	default:
		fmt.Fprintf(g.io.Out, "%s changed: approved %s, served now %s.\n", p.Exposed, p.PinnedHash, p.CurrentHash)
		fmt.Fprint(g.io.Out, toolpin.Diff(p.Exposed, pinned, current))
	}
	printFlags(g, p)
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

func printFlags(g *globals, p toolpin.Pin) {
	for _, f := range p.Findings {
		fmt.Fprintf(g.io.Out, "flag: %s in %s: %s\n", f.Rule, f.Field, f.Excerpt)
	}
}

type toolsApproveOptions struct {
	Hash string
}

func newToolsApproveCmd(g *globals) *cobra.Command {
	var opts toolsApproveOptions
	cmd := &cobra.Command{
		Use:   "approve NAME",
		Short: "Approve a tool's current definition (after reviewing `tools diff`)",
		Long: `Approve makes the definition the upstream serves now the pinned one, so
calls go through again; for a removed tool it forgets the pin. The approval
is recorded in the audit log with who ran it. With --hash, the approval is
refused unless the current definition is exactly the one reviewed.`,
		Example: `  agentmesh tools approve files__read_file
  agentmesh tools approve files/read_file --hash sha256:3f1c...`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error { return toolsApproveRun(g, args[0], opts) },
	}
	cmd.Flags().StringVar(&opts.Hash, "hash", "", "approve only if the current definition has this hash (see tools list --output json)")
	return cmd
}

func toolsApproveRun(g *globals, name string, opts toolsApproveOptions) error {
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
	who := operator()
	if err := store.Approve(ctx, p, opts.Hash, who); err != nil {
		return err
	}
	if p.Status == toolpin.Removed {
		g.io.Success("forgot the pin of removed tool %s (by %s)", p.Exposed, who)
	} else {
		g.io.Success("approved %s at %s (was %s; by %s)", p.Exposed, p.CurrentHash, p.Status, who)
	}
	return nil
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
