package trust

import (
	"context"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
)

// Ledger is the audit log and the trust store of one SQLite state
// database, recording each entry with the trust event it causes in one
// transaction (governance.Ledger).
type Ledger struct {
	Log   *auditlog.Log
	Store *Store
}

func (l Ledger) hook(ev *Event) auditlog.Hook {
	if ev == nil {
		return nil
	}
	return l.Store.Hook(*ev)
}

// Append commits e with ev charged to its subject (nil: no trust change).
func (l Ledger) Append(ctx context.Context, e audit.Entry, ev *Event) (audit.Entry, error) {
	return l.Log.Append(ctx, e, l.hook(ev))
}

// Enqueue queues e with ev for the log's next batched commit.
func (l Ledger) Enqueue(ctx context.Context, e audit.Entry, ev *Event) error {
	return l.Log.Enqueue(ctx, e, l.hook(ev))
}

// Trust returns subject's state as of now.
func (l Ledger) Trust(ctx context.Context, subject string) (State, error) {
	return l.Store.Get(ctx, subject)
}
