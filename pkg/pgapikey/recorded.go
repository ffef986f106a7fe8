package pgapikey

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgaudit"
)

// Recorded is a fleet's key store whose creations and revocations are
// appended to its audit log in the transaction that makes them, with the
// methods of apikey.Store.
type Recorded struct {
	*Store
	Log   *pgaudit.Store
	Agent string
}

// Create makes a key for the caller name (see Store.Create), recorded as
// an api_key_created entry.
func (r Recorded) Create(ctx context.Context, name string, scopes []string, expires time.Time) (string, apikey.Key, error) {
	var plain string
	var k apikey.Key
	entry := audit.Entry{Timestamp: r.now(), Agent: r.Agent, Action: audit.ActionAPIKeyCreated}
	_, err := r.Log.Append(ctx, entry, func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
		var err error
		plain, k, err = r.Store.Create(ctx, tx, e, name, scopes, expires)
		return nil, err
	})
	if err != nil {
		return "", apikey.Key{}, fmt.Errorf("creating an API key for %s: %w", name, err)
	}
	return plain, k, nil
}

// Revoke revokes the key with id target or every key of the caller target
// (see Store.Revoke), one api_key_revoked entry per key.
func (r Recorded) Revoke(ctx context.Context, target, reason string) ([]apikey.Key, error) {
	var revoked []apikey.Key
	entry := audit.Entry{Timestamp: r.now(), Agent: r.Agent, Action: audit.ActionAPIKeyRevoked, Reason: reason}
	_, err := r.Log.Append(ctx, entry, func(ctx context.Context, tx pgx.Tx, e *audit.Entry) ([]audit.Entry, error) {
		keys, followUps, err := r.Store.Revoke(ctx, tx, e, target, reason)
		revoked = keys
		return followUps, err
	})
	if err != nil {
		return nil, fmt.Errorf("revoking %s: %w", target, err)
	}
	return revoked, nil
}
