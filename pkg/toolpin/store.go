package toolpin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Status of a pinned tool.
type Status string

const (
	// Approved: the upstream's current definition is the pinned one.
	Approved Status = "approved"
	// Changed: the definition differs from the pinned one; calls are
	// refused until `agentmesh tools approve`.
	Changed Status = "changed"
	// New: a tool that appeared after the upstream was pinned (pin:
	// strict); hidden and refused until approved.
	New Status = "new"
	// Removed: a pinned tool the upstream no longer lists.
	Removed Status = "removed"
)

// Pin is one row of the pin table.
type Pin struct {
	Upstream    string    `json:"upstream"`
	Tool        string    `json:"upstream_tool"`
	Exposed     string    `json:"name"`
	Status      Status    `json:"status"`
	PinnedHash  string    `json:"pinned_hash,omitempty"`
	CurrentHash string    `json:"current_hash,omitempty"`
	Findings    []Finding `json:"flags"`
	FirstSeen   time.Time `json:"first_seen"`
	ChangedAt   time.Time `json:"changed_at"`
	ApprovedAt  time.Time `json:"approved_at,omitzero"`
	ApprovedBy  string    `json:"approved_by,omitempty"`
	PinnedDef   []byte    `json:"-"`
	CurrentDef  []byte    `json:"-"`
}

// StatusOf is the status of a pin whose approved hash is pinned (NULL:
// never approved) and whose last seen hash is current ("": removed).
func StatusOf(pinned sql.NullString, current string) Status {
	switch {
	case current == "":
		return Removed
	case !pinned.Valid:
		return New
	case pinned.String != current:
		return Changed
	}
	return Approved
}

// Mode is an upstream's policy for tools that appear after pinning.
type Mode string

const (
	Strict     Mode = "strict"      // new tools are blocked until approved
	NewAllowed Mode = "new-allowed" // new tools are pinned on first sight
)

// Change is one difference Observe found and recorded.
type Change struct {
	Tool        string    `json:"tool"`
	Exposed     string    `json:"name"`
	Kind        string    `json:"change"` // pinned, new, new-pinned, changed, restored, removed
	PinnedHash  string    `json:"pinned_hash,omitempty"`
	CurrentHash string    `json:"current_hash,omitempty"`
	Findings    []Finding `json:"flags,omitempty"`
}

// Blocks reports whether the change leaves the tool refused.
func (c Change) Blocks() bool { return c.Kind == "new" || c.Kind == "changed" }

// Store keeps pins in the state database; every change is recorded in the
// audit log in the same transaction.
type Store struct {
	DB    *state.DB
	Log   *auditlog.Log
	Agent string
	Now   func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Seen is one tool as an upstream lists it now.
type Seen struct {
	Def     Definition
	Exposed string
}

// Observe records what an upstream lists now against its pins: on first
// sight of the upstream every tool is pinned (trust on first use); later a
// changed definition, a new tool (mode strict) or a removed tool is
// recorded as such and stays refused until approved. Changes are appended
// to the audit log as one tool_definition_changed entry, atomically with
// the pin update.
//
// others are the names of tools from elsewhere (other upstreams, built-in
// tools) that a definition mentioning them may be trying to shadow; a
// tool naming its own siblings is ordinary.
func (s *Store) Observe(ctx context.Context, upstream string, mode Mode, seen []Seen, others []string) ([]Change, error) {
	var pending bool
	if err := s.DB.Read(ctx, func(tx *sql.Tx) error {
		cs, err := s.diff(ctx, tx, upstream, mode, seen, others)
		pending = len(cs) > 0
		return err
	}); err != nil {
		return nil, err
	}
	if !pending {
		return nil, nil
	}
	var changes []Change
	entry := audit.Entry{Agent: s.Agent, Action: audit.ActionToolDefinitionChanged, Upstream: upstream}
	_, err := s.Log.Append(ctx, entry, func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		cs, err := s.diff(ctx, tx, upstream, mode, seen, others)
		if err != nil {
			return nil, err
		}
		if err := s.apply(ctx, tx, upstream, seen, cs); err != nil {
			return nil, err
		}
		changes = cs
		if e.Details, err = ObservedDetails(upstream, mode, cs); err != nil {
			return nil, err
		}
		return nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("recording the tool pins of upstream %s: %w", upstream, err)
	}
	return changes, nil
}

// Stored is what the pin table holds of one tool, as Changes compares it.
type Stored struct {
	Pinned  sql.NullString // the approved definition's hash; NULL: never approved
	Current string         // the last seen definition's hash; "": removed
	Exposed string
}

func (s *Store) rows(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, upstream string) (map[string]Stored, error) {
	rs, err := q.QueryContext(ctx, `SELECT tool, pinned_hash, current_hash, exposed FROM tool_pins WHERE upstream = ?`, upstream)
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	defer rs.Close()
	m := map[string]Stored{}
	for rs.Next() {
		var tool string
		var r Stored
		if err := rs.Scan(&tool, &r.Pinned, &r.Current, &r.Exposed); err != nil {
			return nil, err
		}
		m[tool] = r
	}
	return m, rs.Err()
}

// diff computes the changes seen makes to the stored pins.
func (s *Store) diff(ctx context.Context, tx *sql.Tx, upstream string, mode Mode, seen []Seen, others []string) ([]Change, error) {
	rows, err := s.rows(ctx, tx, upstream)
	if err != nil {
		return nil, err
	}
	return Changes(rows, mode, seen, others), nil
}

// Changes computes the changes that what an upstream lists now (seen) makes
// to its stored pins (rows, by the upstream's tool name): every store
// decides them here, so that pins behave alike on every backend.
func Changes(rows map[string]Stored, mode Mode, seen []Seen, others []string) []Change {
	first := len(rows) == 0
	var cs []Change
	listed := map[string]bool{}
	for _, t := range seen {
		name, h := t.Def.Name, t.Def.Hash()
		listed[name] = true
		r, ok := rows[name]
		c := Change{Tool: name, Exposed: t.Exposed, CurrentHash: h}
		switch {
		case !ok && first:
			c.Kind, c.PinnedHash = "pinned", h
		case !ok && mode == NewAllowed:
			c.Kind, c.PinnedHash = "new-pinned", h
		case !ok:
			c.Kind = "new"
		case r.Current == h && r.Exposed == t.Exposed:
			continue
		case r.Current == h:
			c.Kind = "renamed" // only the exposed name moved (prefix changed)
		case r.Pinned.Valid && r.Pinned.String == h:
			c.Kind, c.PinnedHash = "restored", h
		case r.Pinned.Valid:
			c.Kind, c.PinnedHash = "changed", r.Pinned.String
		default:
			c.Kind = "new" // never approved, and changed again
		}
		c.Findings = Scan(t.Def, others)
		cs = append(cs, c)
	}
	tools := make([]string, 0, len(rows))
	for tool := range rows {
		tools = append(tools, tool)
	}
	sort.Strings(tools)
	for _, tool := range tools {
		r := rows[tool]
		if listed[tool] || r.Current == "" {
			continue
		}
		cs = append(cs, Change{Tool: tool, Exposed: r.Exposed, Kind: "removed", PinnedHash: r.Pinned.String})
	}
	return cs
}

func (s *Store) apply(ctx context.Context, tx *sql.Tx, upstream string, seen []Seen, cs []Change) error {
	defs := map[string]Seen{}
	for _, t := range seen {
		defs[t.Def.Name] = t
	}
	now := s.now().Format(time.RFC3339Nano)
	for _, c := range cs {
		findings, _ := json.Marshal(nonNil(c.Findings))
		var err error
		switch c.Kind {
		case "pinned", "new-pinned", "new":
			def := defs[c.Tool].Def.Canonical()
			var pinned, pinnedDef, approvedBy any
			approvedBy = ""
			if c.Kind != "new" {
				pinned, pinnedDef, approvedBy = c.CurrentHash, def, "first sight"
			}
			approvedAt := ""
			if pinned != nil {
				approvedAt = now
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO tool_pins(upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, approved_at, approved_by)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(upstream, tool) DO UPDATE SET exposed = excluded.exposed, current_hash = excluded.current_hash, current_def = excluded.current_def, findings = excluded.findings, changed_at = excluded.changed_at`,
				upstream, c.Tool, c.Exposed, pinned, pinnedDef, c.CurrentHash, def, string(findings), now, now, approvedAt, approvedBy)
		case "removed":
			_, err = tx.ExecContext(ctx, `UPDATE tool_pins SET current_hash = '', current_def = NULL, findings = '[]', changed_at = ? WHERE upstream = ? AND tool = ?`, now, upstream, c.Tool)
		default: // changed, restored, renamed
			_, err = tx.ExecContext(ctx, `UPDATE tool_pins SET exposed = ?, current_hash = ?, current_def = ?, findings = ?, changed_at = ? WHERE upstream = ? AND tool = ?`,
				c.Exposed, c.CurrentHash, defs[c.Tool].Def.Canonical(), string(findings), now, upstream, c.Tool)
		}
		if err != nil {
			return fmt.Errorf("updating the pin of %s/%s: %w", upstream, c.Tool, err)
		}
	}
	return nil
}

func nonNil(f []Finding) []Finding {
	if f == nil {
		return []Finding{}
	}
	return f
}

// Approved reports whether the definition with hash is the approved one
// for upstream's tool: a tool may be called only then.
func (s *Store) Approved(ctx context.Context, upstream, tool, hash string) (bool, error) {
	var pinned sql.NullString
	err := s.DB.Reader().QueryRowContext(ctx, `SELECT pinned_hash FROM tool_pins WHERE upstream = ? AND tool = ?`, upstream, tool).Scan(&pinned)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the pin of %s/%s: %w", upstream, tool, err)
	}
	return pinned.Valid && pinned.String == hash, nil
}

// List returns every pin, by upstream and tool; upstream "" for all.
func (s *Store) List(ctx context.Context, upstream string) ([]Pin, error) {
	q := `SELECT upstream, tool, exposed, pinned_hash, pinned_def, current_hash, current_def, findings, first_seen, changed_at, approved_at, approved_by FROM tool_pins`
	args := []any{}
	if upstream != "" {
		q += ` WHERE upstream = ?`
		args = append(args, upstream)
	}
	rs, err := s.DB.Reader().QueryContext(ctx, q+` ORDER BY upstream, tool`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading tool pins: %w", err)
	}
	defer rs.Close()
	var out []Pin
	for rs.Next() {
		var p Pin
		var pinned sql.NullString
		var findings, first, changed, approved string
		if err := rs.Scan(&p.Upstream, &p.Tool, &p.Exposed, &pinned, &p.PinnedDef, &p.CurrentHash, &p.CurrentDef, &findings, &first, &changed, &approved, &p.ApprovedBy); err != nil {
			return nil, err
		}
		p.PinnedHash = pinned.String
		p.Status = StatusOf(pinned, p.CurrentHash)
		p.Findings = []Finding{}
		if err := json.Unmarshal([]byte(findings), &p.Findings); err != nil {
			// Never show a damaged row as a tool without flags.
			return nil, fmt.Errorf("the pin of %s/%s is damaged (findings: %v)", p.Upstream, p.Tool, err)
		}
		p.FirstSeen, _ = time.Parse(time.RFC3339Nano, first)
		p.ChangedAt, _ = time.Parse(time.RFC3339Nano, changed)
		if approved != "" {
			p.ApprovedAt, _ = time.Parse(time.RFC3339Nano, approved)
		}
		out = append(out, p)
	}
	return out, rs.Err()
}

// Find returns the pin named name: the exposed name ("files__read"), or
// "upstream/tool".
func (s *Store) Find(ctx context.Context, name string) (Pin, error) {
	pins, err := s.List(ctx, "")
	if err != nil {
		return Pin{}, err
	}
	return FindIn(pins, name)
}

// FindIn returns the pin of pins named name, as Find does.
func FindIn(pins []Pin, name string) (Pin, error) {
	var found []Pin
	for _, p := range pins {
		if p.Exposed == name || p.Upstream+"/"+p.Tool == name {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		names := make([]string, 0, len(pins))
		for _, p := range pins {
			names = append(names, p.Exposed)
		}
		hint := "no upstream tool has been pinned yet: run `agentmesh serve` with upstreams first"
		if len(names) > 0 {
			hint = "pinned tools: " + strings.Join(names, ", ")
		}
		return Pin{}, fmt.Errorf("no pinned tool %q (%s)", name, hint)
	}
	return Pin{}, fmt.Errorf("%q names %d tools; write it as UPSTREAM/TOOL", name, len(found))
}

// Approve makes a pin's current definition the approved one (or, for a
// removed tool, forgets the pin), recording who approved it in the audit
// log in the same transaction. hash, when not empty, must be the current
// hash: an operator approves what they reviewed, not what the upstream
// changed to since.
func (s *Store) Approve(ctx context.Context, p Pin, hash, by string) error {
	if p.Status == Approved {
		return fmt.Errorf("%s is already approved (%s); nothing to do", p.Exposed, p.PinnedHash)
	}
	if hash != "" && hash != p.CurrentHash {
		return fmt.Errorf("%s: the current definition is %s, not %s; review `agentmesh tools diff %s` again", p.Exposed, p.CurrentHash, hash, p.Exposed)
	}
	entry := audit.Entry{Agent: s.Agent, Action: audit.ActionToolApproved, Tool: p.Exposed, Upstream: p.Upstream}
	_, err := s.Log.Append(ctx, entry, func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		var res sql.Result
		var err error
		if p.Status == Removed {
			res, err = tx.ExecContext(ctx, `DELETE FROM tool_pins WHERE upstream = ? AND tool = ? AND current_hash = ''`, p.Upstream, p.Tool)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE tool_pins SET pinned_hash = current_hash, pinned_def = current_def, approved_at = ?, approved_by = ?
				WHERE upstream = ? AND tool = ? AND current_hash = ?`, s.now().Format(time.RFC3339Nano), by, p.Upstream, p.Tool, p.CurrentHash)
		}
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, fmt.Errorf("%s changed while it was being approved; look at `agentmesh tools diff %s` again", p.Exposed, p.Exposed)
		}
		e.Details, err = ApprovedDetails(p, by)
		return nil, err
	})
	return err
}

// ObservedDetails are the details of the tool_definition_changed entry
// recording changes cs to upstream's pins: every store records the same.
func ObservedDetails(upstream string, mode Mode, cs []Change) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"upstream": upstream, "pin": mode, "changes": cs})
}

// ApprovedDetails are the details of the tool_approved entry of p,
// approved by by.
func ApprovedDetails(p Pin, by string) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"upstream": p.Upstream, "upstream_tool": p.Tool, "status_was": p.Status,
		"previous_hash": p.PinnedHash, "approved_hash": p.CurrentHash, "by": by})
}
