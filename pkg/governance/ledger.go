package governance

import (
	"context"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

// Ledger is where the pipeline records calls: the audit log, and the trust
// state each entry's event changes in the same transaction, so that an
// entry's trust_score is the score after its call and neither commits
// without the other. trust.Ledger keeps both in the SQLite state database
// (pkg/auditlog, pkg/trust); pgtrust.Ledger in PostgreSQL for a fleet
// (pkg/pgaudit, pkg/pgtrust).
type Ledger interface {
	// Append commits e, charging ev to e's subject (trust.Subject) in the
	// same transaction (nil: no trust change), and returns e as committed,
	// with its sequence number. An error means e is not in the log.
	Append(ctx context.Context, e audit.Entry, ev *trust.Event) (audit.Entry, error)
	// Enqueue queues e for the next batched commit (audit.batch_window):
	// it returns before e is durable. A ledger that cannot batch returns
	// an error, and the call is refused.
	Enqueue(ctx context.Context, e audit.Entry, ev *trust.Event) error
	// Trust returns subject's trust state as of now, including every
	// reset and revocation committed by any process sharing the state.
	Trust(ctx context.Context, subject string) (trust.State, error)
}
