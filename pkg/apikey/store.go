package apikey

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Status of a key.
type Status string

const (
	Active  Status = "active"
	Revoked Status = "revoked"
	Expired Status = "expired"
)

// Key is what may be shown of a key: never the key or its hash.
type Key struct {
	ID            string    `json:"id"`
	Caller        string    `json:"caller"` // the caller name; its ID is "key:" + Caller
	Scopes        []string  `json:"scopes"`
	Created       time.Time `json:"created"`
	Expires       time.Time `json:"expires,omitzero"`
	RevokedAt     time.Time `json:"revoked_at,omitzero"`
	RevokedReason string    `json:"revoked_reason,omitempty"`
	LastUsed      time.Time `json:"last_used,omitzero"`
	Status        Status    `json:"status"`
}

// Store keeps API keys in the state database. Creations and revocations
// are recorded in the audit log in the same transaction as the change, so
// neither happens unlogged.
type Store struct {
	DB *state.DB
	// Log, Agent and Operator are needed by Create and Revoke: the log
	// appends the entries (as Agent, the server's DID) and Operator is
	// recorded as who ran them ("alice@host").
	Log      *auditlog.Log
	Agent    string
	Operator string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Cache, when set, keeps the keys Lookup read while nothing was
	// committed to the database since (state.DB.ChangeToken); nil reads
	// every time.
	Cache *Cache

	lookup lookupState
}

// lookupState is Lookup's per-process state.
type lookupState struct {
	mu      sync.Mutex
	stmt    *sql.Stmt            // the key query, prepared on the reader pool
	touched map[string]time.Time // last_used written by this process
	writes  sync.WaitGroup       // last_used updates in flight
}

// now is the clock, to the microsecond the database keeps.
func (s *Store) now() time.Time {
	t := time.Now()
	if s.Now != nil {
		t = s.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeLayout is fixed-width, so stored times compare as strings.
const timeLayout = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, s.String)
	return t
}

// SetStatus sets k.Status from its revocation and expiry as of now.
func (k *Key) SetStatus(now time.Time) {
	switch {
	case !k.RevokedAt.IsZero():
		k.Status = Revoked
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		k.Status = Expired
	default:
		k.Status = Active
	}
}

// Create makes a key for the caller name with scopes, valid until expires
// (the zero time: until revoked). It returns the key, which is not stored
// and cannot be shown again, and its description.
func (s *Store) Create(ctx context.Context, name string, scopes []string, expires time.Time) (string, Key, error) {
	if err := ValidateCallerName(name); err != nil {
		return "", Key{}, err
	}
	scopes, err := NormalScopes(scopes)
	if err != nil {
		return "", Key{}, err
	}
	now := s.now()
	if !expires.IsZero() && !expires.After(now) {
		return "", Key{}, fmt.Errorf("the expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	if s.Log == nil {
		return "", Key{}, errors.New("creating an API key needs the audit log (apikey.Store.Log)")
	}
	rawScopes, _ := json.Marshal(scopes)
	var plain string
	k := Key{Caller: name, Scopes: scopes, Created: now, Status: Active}
	if !expires.IsZero() {
		k.Expires = expires.UTC().Truncate(time.Microsecond)
	}
	entry := audit.Entry{Timestamp: now, Agent: s.Agent, Action: audit.ActionAPIKeyCreated}
	_, err = s.Log.Append(ctx, entry, func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = ?`, name).Scan(&taken); err != nil {
			return nil, err
		}
		if taken > 0 {
			// `keys revoke` takes a key id or a caller name: they never coincide.
			return nil, fmt.Errorf("the caller name %q is the id of an existing key; choose another name", name)
		}
		for tries := 0; ; tries++ {
			key, id, err := Generate()
			if err != nil {
				return nil, err
			}
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE id = ? OR caller = ?`, id, id).Scan(&taken); err != nil {
				return nil, err
			}
			if taken > 0 && tries < 10 {
				continue
			}
			if taken > 0 {
				return nil, errors.New("no free key id after 10 tries")
			}
			plain, k.ID = key, id
			break
		}
		var exp any
		if !k.Expires.IsZero() {
			exp = formatTime(k.Expires)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys(id, caller, hash, scopes, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, name, Hash(plain), string(rawScopes), formatTime(now), exp); err != nil {
			return nil, fmt.Errorf("storing the key: %w", err)
		}
		e.Details, err = CreatedDetails(k, s.Operator)
		return nil, err
	})
	if err != nil {
		return "", Key{}, fmt.Errorf("creating an API key for %s: %w", name, err)
	}
	return plain, k, nil
}

// CreatedDetails are the details of the api_key_created entry of k,
// created by operator: every store records the same.
func CreatedDetails(k Key, by string) (json.RawMessage, error) {
	d := map[string]any{"key_id": k.ID, "key_caller": caller.ForAPIKey(k.Caller).ID, "scopes": k.Scopes, "by": by}
	if !k.Expires.IsZero() {
		d["expires"] = k.Expires.Format(time.RFC3339)
	}
	return json.Marshal(d)
}

// RevokedDetails are the details of the api_key_revoked entry of k,
// revoked by operator.
func RevokedDetails(k Key, by string) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"key_id": k.ID, "key_caller": caller.ForAPIKey(k.Caller).ID, "by": by})
}

const listQuery = `SELECT id, caller, scopes, created, expires, revoked_at, revoked_reason, last_used FROM api_keys`

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) query(ctx context.Context, q querier, where string, args ...any) ([]Key, error) {
	rs, err := q.QueryContext(ctx, listQuery+" "+where+" ORDER BY created, rowid", args...)
	if err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	defer rs.Close()
	now := s.now()
	var out []Key
	for rs.Next() {
		var k Key
		var scopes string
		var created string
		var expires, revokedAt, reason, lastUsed sql.NullString
		if err := rs.Scan(&k.ID, &k.Caller, &scopes, &created, &expires, &revokedAt, &reason, &lastUsed); err != nil {
			return nil, fmt.Errorf("reading API keys: %w", err)
		}
		if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
			return nil, fmt.Errorf("API key %s is damaged (scopes: %v)", k.ID, err)
		}
		k.Created = parseTime(sql.NullString{String: created, Valid: true})
		k.Expires, k.RevokedAt, k.LastUsed = parseTime(expires), parseTime(revokedAt), parseTime(lastUsed)
		k.RevokedReason = reason.String
		k.SetStatus(now)
		out = append(out, k)
	}
	return out, rs.Err()
}

// List returns every key, oldest first.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	return s.query(ctx, s.DB.Reader(), "")
}

// NotFoundError: Revoke's target is neither a key id nor a caller with keys.
type NotFoundError struct{ Target string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no API key with id %q and no caller named %q (`agentmesh keys list` shows them)", e.Target, e.Target)
}

// AlreadyRevokedError: every key Revoke's target names was revoked before.
type AlreadyRevokedError struct{ Keys []Key }

func (e *AlreadyRevokedError) Error() string {
	var parts []string
	for _, k := range e.Keys {
		parts = append(parts, fmt.Sprintf("%s (caller %s) at %s: %s", k.ID, k.Caller, k.RevokedAt.Format(time.RFC3339), k.RevokedReason))
	}
	return "already revoked: " + strings.Join(parts, "; ")
}

// Revoke revokes the key with id target, or else every key of the caller
// named target ("key:NAME" also names the caller), and returns the keys it
// revoked. Each revocation is one audit entry with reason. A running
// Lookup refuses the keys from its next call on.
func (s *Store) Revoke(ctx context.Context, target, reason string) ([]Key, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, errors.New("revoking an API key needs a reason (it is recorded in the audit log)")
	}
	if s.Log == nil {
		return nil, errors.New("revoking an API key needs the audit log (apikey.Store.Log)")
	}
	now := s.now()
	var revoked []Key
	entry := audit.Entry{Timestamp: now, Agent: s.Agent, Action: audit.ActionAPIKeyRevoked, Reason: reason}
	_, err := s.Log.Append(ctx, entry, func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		keys, err := s.query(ctx, tx, "WHERE id = ?", target)
		if err == nil && len(keys) == 0 {
			keys, err = s.query(ctx, tx, "WHERE caller = ?", strings.TrimPrefix(target, "key:"))
		}
		if err != nil {
			return nil, err
		}
		if len(keys) == 0 {
			return nil, &NotFoundError{Target: target}
		}
		var active []Key
		for _, k := range keys {
			if k.RevokedAt.IsZero() {
				active = append(active, k)
			}
		}
		if len(active) == 0 {
			return nil, &AlreadyRevokedError{Keys: keys}
		}
		var entries []audit.Entry
		for i, k := range active {
			if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL`,
				formatTime(now), reason, k.ID); err != nil {
				return nil, fmt.Errorf("revoking key %s: %w", k.ID, err)
			}
			f := *e
			if i > 0 {
				f = audit.Entry{Agent: e.Agent, Action: e.Action, Reason: reason}
			}
			if f.Details, err = RevokedDetails(k, s.Operator); err != nil {
				return nil, err
			}
			if i == 0 {
				*e = f
			} else {
				entries = append(entries, f)
			}
			active[i].RevokedAt, active[i].RevokedReason, active[i].Status = now, reason, Revoked
		}
		revoked = active
		return entries, nil
	})
	if err != nil {
		return nil, err
	}
	return revoked, nil
}
