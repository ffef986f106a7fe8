// Package pgapikey keeps API keys (pkg/apikey: the key format, its hash,
// caller names and scopes) in a PostgreSQL state database (pkg/pgstate),
// shared by a fleet of replicas.
//
// Creating and revoking a key must be recorded in the audit log in the
// same transaction (DESIGN.md: nothing happens unlogged), so Create and
// Revoke take the audit append's pgx.Tx and the entry being appended, and
// fill in its details as pkg/apikey's Store does. A revocation also bumps
// the key's change version (pkg/pgnotify). Lookup reads the key on every
// call, so a revocation committed by any replica refuses the key from the
// next call on.
package pgapikey

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/apikey"
	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/pgnotify"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// Store keeps API keys in table api_keys (migration 5).
type Store struct {
	DB *pgstate.DB
	// Operator is recorded as who created or revoked keys ("alice@host").
	Operator string
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu      sync.Mutex
	touched map[string]time.Time // last_used written by this process
	writes  sync.WaitGroup       // last_used updates in flight
}

// now is the clock, to the microsecond PostgreSQL keeps.
func (s *Store) now() time.Time {
	t := time.Now()
	if s.Now != nil {
		t = s.Now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Lookup returns the caller a key belongs to, with the key's scopes, or an
// error wrapping apikey.ErrMalformed, ErrUnknown, ErrRevoked or ErrExpired
// (or a database error), exactly as apikey.Store.Lookup.
func (s *Store) Lookup(ctx context.Context, token string) (*caller.Caller, error) {
	id, err := apikey.Parse(token)
	if err != nil {
		return nil, err
	}
	var name string
	var stored []byte
	var scopes []string
	var expires, lastUsed *time.Time
	var revoked bool
	err = s.DB.Pool.QueryRow(ctx, `SELECT caller, hash, scopes, expires, revoked_at IS NOT NULL, last_used FROM api_keys WHERE id = $1`, id).
		Scan(&name, &stored, &scopes, &expires, &revoked, &lastUsed)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("reading API key %s: %w", id, err)
	}
	// An unknown id and a wrong secret are one error, as with SQLite.
	if !found || subtle.ConstantTimeCompare(apikey.Hash(token), stored) != 1 {
		return nil, fmt.Errorf("%w (id %s)", apikey.ErrUnknown, id)
	}
	now := s.now()
	switch {
	case revoked:
		return nil, fmt.Errorf("%w (id %s)", apikey.ErrRevoked, id)
	case expires != nil && !now.Before(*expires):
		return nil, fmt.Errorf("%w (id %s, at %s)", apikey.ErrExpired, id, expires.UTC().Format(time.RFC3339))
	}
	s.touch(id, lastUsed, now)
	c := caller.ForAPIKey(name)
	c.Scopes = scopes
	return c, nil
}

// touch records that key id was used at now, at most once per
// apikey.TouchInterval per key, off the call's path (best effort:
// last_used is for people deciding which keys are idle).
func (s *Store) touch(id string, stored *time.Time, now time.Time) {
	if stored != nil && now.Sub(*stored) < apikey.TouchInterval {
		return
	}
	s.mu.Lock()
	if t, ok := s.touched[id]; ok && now.Sub(t) < apikey.TouchInterval {
		s.mu.Unlock()
		return
	}
	if s.touched == nil {
		s.touched = map[string]time.Time{}
	}
	s.touched[id] = now
	s.writes.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.writes.Done()
		s.DB.Pool.Exec(context.Background(), `UPDATE api_keys SET last_used = $2 WHERE id = $1 AND (last_used IS NULL OR last_used < $2)`, id, now)
	}()
}

// Close waits for the last-used updates in flight; call it before closing
// the database.
func (s *Store) Close() { s.writes.Wait() }

// lockKeys serialises Create and Revoke across replicas, as SQLite's
// single writer does: a caller name must never become another key's id.
func lockKeys(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('agentmesh.api_keys'), hashtext(coalesce(current_schema(), '')))`)
	return err
}

// Create makes a key for the caller name with scopes, valid until expires
// (the zero time: until revoked), inside tx, the transaction appending e,
// the api_key_created entry, whose details it sets. It returns the key,
// which is not stored and cannot be shown again, and its description.
func (s *Store) Create(ctx context.Context, tx pgx.Tx, e *audit.Entry, name string, scopes []string, expires time.Time) (string, apikey.Key, error) {
	if err := apikey.ValidateCallerName(name); err != nil {
		return "", apikey.Key{}, err
	}
	scopes, err := apikey.NormalScopes(scopes)
	if err != nil {
		return "", apikey.Key{}, err
	}
	now := s.now()
	if !expires.IsZero() && !expires.After(now) {
		return "", apikey.Key{}, fmt.Errorf("the expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	k := apikey.Key{Caller: name, Scopes: scopes, Created: now, Status: apikey.Active}
	var exp *time.Time
	if !expires.IsZero() {
		k.Expires = expires.UTC().Truncate(time.Microsecond)
		exp = &k.Expires
	}
	if err := lockKeys(ctx, tx); err != nil {
		return "", apikey.Key{}, fmt.Errorf("creating an API key for %s: %w", name, err)
	}
	var taken bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1)`, name).Scan(&taken); err != nil {
		return "", apikey.Key{}, fmt.Errorf("creating an API key for %s: %w", name, err)
	}
	if taken {
		// `keys revoke` takes a key id or a caller name: they never coincide.
		return "", apikey.Key{}, fmt.Errorf("the caller name %q is the id of an existing key; choose another name", name)
	}
	var plain string
	for tries := 0; ; tries++ {
		key, id, err := apikey.Generate()
		if err != nil {
			return "", apikey.Key{}, err
		}
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = $1 OR caller = $1)`, id).Scan(&taken); err != nil {
			return "", apikey.Key{}, fmt.Errorf("creating an API key for %s: %w", name, err)
		}
		if !taken {
			plain, k.ID = key, id
			break
		}
		if tries == 9 {
			return "", apikey.Key{}, errors.New("no free key id after 10 tries")
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO api_keys(id, caller, hash, scopes, created, expires) VALUES ($1, $2, $3, $4, $5, $6)`,
		k.ID, name, apikey.Hash(plain), scopes, now, exp); err != nil {
		return "", apikey.Key{}, fmt.Errorf("creating an API key for %s: storing the key: %w", name, err)
	}
	if e.Details, err = apikey.CreatedDetails(k, s.Operator); err != nil {
		return "", apikey.Key{}, err
	}
	return plain, k, nil
}

// Revoke revokes the key with id target, or else every key of the caller
// named target ("key:NAME" also names the caller), inside tx, the
// transaction appending e, the api_key_revoked entry. It returns the keys
// it revoked and, as apikey.Store.Revoke records them, e's details for the
// first and one more entry per other key, to append after e. Every
// revoked key's change version is bumped (pgnotify.APIKey).
func (s *Store) Revoke(ctx context.Context, tx pgx.Tx, e *audit.Entry, target, reason string) ([]apikey.Key, []audit.Entry, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, nil, errors.New("revoking an API key needs a reason (it is recorded in the audit log)")
	}
	if err := lockKeys(ctx, tx); err != nil {
		return nil, nil, fmt.Errorf("revoking %s: %w", target, err)
	}
	now := s.now()
	keys, err := s.query(ctx, tx, "WHERE id = $1", target)
	if err == nil && len(keys) == 0 {
		keys, err = s.query(ctx, tx, "WHERE caller = $1", strings.TrimPrefix(target, "key:"))
	}
	if err != nil {
		return nil, nil, err
	}
	if len(keys) == 0 {
		return nil, nil, &apikey.NotFoundError{Target: target}
	}
	var active []apikey.Key
	for _, k := range keys {
		if k.RevokedAt.IsZero() {
			active = append(active, k)
		}
	}
	if len(active) == 0 {
		return nil, nil, &apikey.AlreadyRevokedError{Keys: keys}
	}
	e.Reason = reason
	var followUps []audit.Entry
	for i, k := range active {
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL`, k.ID, now, reason); err != nil {
			return nil, nil, fmt.Errorf("revoking key %s: %w", k.ID, err)
		}
		if _, err := pgnotify.Bump(ctx, tx, pgnotify.APIKey, k.ID); err != nil {
			return nil, nil, err
		}
		details, err := apikey.RevokedDetails(k, s.Operator)
		if err != nil {
			return nil, nil, err
		}
		if i == 0 {
			e.Details = details
		} else {
			followUps = append(followUps, audit.Entry{Agent: e.Agent, Action: e.Action, Reason: reason, Details: details})
		}
		active[i].RevokedAt, active[i].RevokedReason, active[i].Status = now, reason, apikey.Revoked
	}
	return active, followUps, nil
}

// List returns every key, oldest first.
func (s *Store) List(ctx context.Context) ([]apikey.Key, error) {
	return s.query(ctx, s.DB.Pool, "")
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) query(ctx context.Context, q querier, where string, args ...any) ([]apikey.Key, error) {
	rows, err := q.Query(ctx, `SELECT id, caller, scopes, created, expires, revoked_at, revoked_reason, last_used FROM api_keys `+where+` ORDER BY created, seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	now := s.now()
	var out []apikey.Key
	var k apikey.Key
	var scopes json.RawMessage
	var expires, revokedAt, lastUsed *time.Time
	var reason *string
	_, err = pgx.ForEachRow(rows, []any{&k.ID, &k.Caller, &scopes, &k.Created, &expires, &revokedAt, &reason, &lastUsed}, func() error {
		k.Scopes = nil
		if err := json.Unmarshal(scopes, &k.Scopes); err != nil {
			return fmt.Errorf("API key %s is damaged (scopes: %v)", k.ID, err)
		}
		k.Created = k.Created.UTC()
		k.Expires, k.RevokedAt, k.LastUsed = utc(expires), utc(revokedAt), utc(lastUsed)
		k.RevokedReason = ""
		if reason != nil {
			k.RevokedReason = *reason
		}
		k.SetStatus(now)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading API keys: %w", err)
	}
	return out, nil
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
