package pgtoolpin

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/toolpin"
)

// Pins are a fleet's tool pins, each change recorded in the fleet's audit
// log in the transaction that stores it, as toolpin.Store does on SQLite
// (proxy.Pins).
type Pins struct {
	*Store
	Log   *pgaudit.Store
	Agent string
}

// errRecorded: another replica recorded the changes first.
var errRecorded = errors.New("the changes were recorded by another replica")

// Observe records what an upstream lists now against its pins (see
// toolpin.Store.Observe). It reads first and appends a
// tool_definition_changed entry only when something changed; replicas
// observing the same change at once record it once (the upstream's pins
// are locked inside the append).
func (p Pins) Observe(ctx context.Context, upstream string, mode toolpin.Mode, seen []toolpin.Seen, others []string) ([]toolpin.Change, error) {
	cs, err := p.Changes(ctx, upstream, mode, seen, others)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	var changes []toolpin.Change
	entry := audit.Entry{Agent: p.Agent, Action: audit.ActionToolDefinitionChanged, Upstream: upstream}
	_, err = p.Log.Append(ctx, entry, func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
		cs, err := p.Store.Observe(ctx, tx, e, upstream, mode, seen, others)
		if err != nil {
			return nil, err
		}
		if len(cs) == 0 {
			return nil, errRecorded
		}
		changes = cs
		return nil, nil
	})
	if errors.Is(err, errRecorded) {
		return nil, nil // already recorded: nothing new, as toolpin.Store.Observe reports it
	}
	if err != nil {
		return nil, fmt.Errorf("recording the tool pins of upstream %s: %w", upstream, err)
	}
	return changes, nil
}

// Approve makes a pin's current definition the approved one (see
// Store.Approve), recorded as a tool_approved entry by by; every replica
// reads approvals at call time.
func (p Pins) Approve(ctx context.Context, pin toolpin.Pin, hash, by string) error {
	entry := audit.Entry{Agent: p.Agent, Action: audit.ActionToolApproved, Tool: pin.Exposed, Upstream: pin.Upstream}
	_, err := p.Log.Append(ctx, entry, func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
		return nil, p.Store.Approve(ctx, tx, e, pin, hash, by)
	})
	return err
}
