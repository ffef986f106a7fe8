package apikey

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/pkg/caller"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Errors of Lookup (wrapped; test with errors.Is). A key is reported
// revoked or expired only once its secret matched: knowing a public id
// (it is in listings and the audit log) tells nothing about the key.
var (
	// ErrUnknown: no key has the token's id, or its secret differs.
	ErrUnknown = errors.New("unknown API key")
	ErrRevoked = errors.New("API key revoked")
	ErrExpired = errors.New("API key expired")
)

// TouchInterval: a key's last_used is written at most this often, so a
// busy caller costs no write per call.
const TouchInterval = time.Minute

// record is a key as Lookup needs it.
type record struct {
	caller   string
	hash     []byte
	scopes   []string
	expires  time.Time
	revoked  bool
	lastUsed time.Time
}

const lookupQuery = `SELECT caller, hash, scopes, expires, revoked_at IS NOT NULL, last_used FROM api_keys WHERE id = ?`

// Cache holds the keys Lookup read, all valid under one change token of the
// state database: as soon as any connection, in this process or another
// (`agentmesh keys revoke`), commits anything, the next Lookup drops them
// and reads again, so a revocation is refused on the very next call. Only
// keys that exist are cached: its size is bounded by the table's, whatever
// tokens callers send.
type Cache struct {
	mu      sync.Mutex
	token   state.ChangeToken
	records map[string]record
	// misses counts Lookups that read the database.
	misses atomic.Uint64
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{records: map[string]record{}} }

func (c *Cache) get(token state.ChangeToken, id string) (record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != token {
		return record{}, false
	}
	r, ok := c.records[id]
	return r, ok
}

// put caches r as read after token was seen: if a commit landed in
// between, r is newer than token says, and the next Lookup, seeing another
// token, reads again. Never the reverse.
func (c *Cache) put(token state.ChangeToken, id string, r record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != token {
		c.token, c.records = token, map[string]record{}
	}
	c.records[id] = r
}

// Lookup returns the caller a key belongs to, with the key's scopes, or an
// error wrapping ErrMalformed, ErrUnknown, ErrRevoked or ErrExpired (or a
// database error). It has the signature of an HTTP authenticator's
// token check: func(ctx, token) (*caller.Caller, error).
func (s *Store) Lookup(ctx context.Context, token string) (*caller.Caller, error) {
	id, err := Parse(token)
	if err != nil {
		return nil, err
	}
	r, found, err := s.record(ctx, id)
	if err != nil {
		return nil, err
	}
	// An unknown id and a wrong secret are one error: the id is public
	// (listings, the audit log), so telling them apart reveals nothing, but
	// a caller has no use for the difference either.
	got := Hash(token)
	if !found || subtle.ConstantTimeCompare(got, r.hash) != 1 {
		return nil, fmt.Errorf("%w (id %s)", ErrUnknown, id)
	}
	now := s.now()
	switch {
	case r.revoked:
		return nil, fmt.Errorf("%w (id %s)", ErrRevoked, id)
	case !r.expires.IsZero() && !now.Before(r.expires):
		return nil, fmt.Errorf("%w (id %s, at %s)", ErrExpired, id, r.expires.Format(time.RFC3339))
	}
	s.touch(id, r.lastUsed, now)
	c := caller.ForAPIKey(r.caller)
	c.Scopes = append([]string(nil), r.scopes...)
	return c, nil
}

// record reads key id, from the cache while the database is unchanged.
func (s *Store) record(ctx context.Context, id string) (record, bool, error) {
	var token state.ChangeToken
	cacheable := false
	if s.Cache != nil {
		token, cacheable = s.DB.ChangeToken()
		if cacheable {
			if r, ok := s.Cache.get(token, id); ok {
				return r, true, nil
			}
		}
		s.Cache.misses.Add(1)
	}
	stmt, err := s.prepared()
	if err != nil {
		return record{}, false, err
	}
	var r record
	var scopes string
	var expires, lastUsed sql.NullString
	err = stmt.QueryRowContext(ctx, id).Scan(&r.caller, &r.hash, &scopes, &expires, &r.revoked, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("reading API key %s: %w", id, err)
	}
	if err := json.Unmarshal([]byte(scopes), &r.scopes); err != nil {
		return record{}, false, fmt.Errorf("API key %s is damaged (scopes: %v)", id, err)
	}
	r.expires, r.lastUsed = parseTime(expires), parseTime(lastUsed)
	if cacheable {
		s.Cache.put(token, id, r)
	}
	return r, true, nil
}

// prepared returns the key query, prepared once on the reader pool
// (database/sql prepares it again on each connection of the pool as
// needed): preparing costs about as much as running it.
func (s *Store) prepared() (*sql.Stmt, error) {
	l := &s.lookup
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stmt == nil {
		// Not under the caller's context: the statement outlives it.
		stmt, err := s.DB.Reader().PrepareContext(context.Background(), lookupQuery)
		if err != nil {
			return nil, fmt.Errorf("reading API keys: %w", err)
		}
		l.stmt = stmt
	}
	return l.stmt, nil
}

// touch records that key id was used at now, at most once per
// TouchInterval per key, by this process or (through the stored value)
// any other. The write runs on its own goroutine: the writer connection
// may be busy with an audit commit, and a call must not wait for it.
func (s *Store) touch(id string, stored, now time.Time) {
	if !stored.IsZero() && now.Sub(stored) < TouchInterval {
		return
	}
	l := &s.lookup
	l.mu.Lock()
	if t, ok := l.touched[id]; ok && now.Sub(t) < TouchInterval {
		l.mu.Unlock()
		return
	}
	if l.touched == nil {
		l.touched = map[string]time.Time{}
	}
	l.touched[id] = now
	l.writes.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.writes.Done()
		at := formatTime(now)
		// Best effort: last_used is for people deciding which keys are
		// idle, not for access decisions.
		s.DB.Write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`UPDATE api_keys SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)`, at, id, at)
			return err
		})
	}()
}

// Close waits for last-used updates in flight and releases the prepared
// query; call it before closing the database.
func (s *Store) Close() error {
	l := &s.lookup
	l.writes.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stmt == nil {
		return nil
	}
	err := l.stmt.Close()
	l.stmt = nil
	return err
}
