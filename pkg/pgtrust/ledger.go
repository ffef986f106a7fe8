package pgtrust

import (
	"context"
	"errors"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Ledger is the fleet's audit log and trust store in PostgreSQL,
// recording each entry with the trust event it causes in one transaction
// (governance.Ledger).
type Ledger struct {
	Log   *pgaudit.Store
	Store *Store
}

// ErrNoBatching: batched durability (audit.batch_window) is not offered on
// PostgreSQL, whose group commit already shares one commit among a
// replica's concurrent calls.
var ErrNoBatching = errors.New("audit.batch_window is not supported with a PostgreSQL state database (group commit already batches concurrent calls)")

// Append commits e with ev charged to its subject (nil: no trust change).
func (l Ledger) Append(ctx context.Context, e audit.Entry, ev *trust.Event) (audit.Entry, error) {
	var hook pgaudit.Hook
	if ev != nil {
		hook = l.Store.Hook(*ev)
	}
	return l.Log.Append(ctx, e, hook)
}

// Enqueue refuses: see ErrNoBatching.
func (l Ledger) Enqueue(context.Context, audit.Entry, *trust.Event) error { return ErrNoBatching }

// Trust returns subject's state as of now, read from the database on every
// call, so a reset or revocation by any replica is seen on the next call.
func (l Ledger) Trust(ctx context.Context, subject string) (trust.State, error) {
	return l.Store.Get(ctx, subject)
}
