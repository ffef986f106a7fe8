package trust

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/metrics"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// ChangeThreshold: a single change of at least this many points, or any
// tier change, is recorded as its own trust_changed audit entry.
const ChangeThreshold = 25

// Store keeps trust states in the state database. Updates happen inside the
// audit append's transaction (Hook), so an entry's trust_score is the score
// after its call and neither can be committed without the other.
type Store struct {
	DB    *state.DB
	Model Model
	// Now is the clock for reads; time.Now when nil.
	Now func() time.Time
	// Cache, when set, keeps the states Get read and the states this
	// process's audit appends stored, each valid until any other commit
	// to the database (state.DB.ChangeToken); nil reads every time.
	Cache *Cache
	// Metrics, when set, count revocations.
	Metrics *metrics.Metrics
}

// Cache holds trust states read from the database, each with the change
// token the database had before it was read. A state is served from the
// cache only while the token is unchanged: nothing was committed since, by
// this process or any other, so a revocation or reset elsewhere is seen on
// the very next call.
type Cache struct {
	mu     sync.Mutex
	states map[string]cachedState
	// misses counts Gets that read the database.
	misses atomic.Uint64
	// tx and written: the agents whose state the append transaction tx
	// has written (uncommitted, so the cache does not describe them).
	tx      *sql.Tx
	written map[string]bool
}

// inTx returns the cached state of agent for a read inside the write
// transaction tx, whose change token is token (nothing commits while tx
// holds the write lock): only if the cache holds the state under that
// token and tx has not written it yet.
func (c *Cache) inTx(tx *sql.Tx, agent string, token state.ChangeToken) (State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != tx {
		c.tx, c.written = tx, map[string]bool{}
	}
	st, ok := c.states[agent]
	if !ok || st.token != token || c.written[agent] {
		return State{}, false
	}
	return st.st, true
}

// wrote notes that tx stored agent's state.
func (c *Cache) wrote(tx *sql.Tx, agent string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tx != tx {
		c.tx, c.written = tx, map[string]bool{}
	}
	c.written[agent] = true
}

type cachedState struct {
	token state.ChangeToken
	st    State
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{states: map[string]cachedState{}} }

// committed caches the state an audit append stored for agent, under the
// change token its commit left, when that token is known to name exactly
// that state (state.Commit.Solo); otherwise it drops agent's entry, and
// the next Get reads the database.
func (c *Cache) committed(agent string, st State, commit state.Commit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if commit.Solo {
		c.states[agent] = cachedState{token: commit.Token, st: st}
	} else {
		delete(c.states, agent)
	}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// The statements of the trust update, which runs in every audit append.
const (
	loadQuery  = `SELECT state FROM trust_state WHERE agent = ?`
	storeQuery = `INSERT INTO trust_state(agent, state) VALUES (?, ?) ON CONFLICT(agent) DO UPDATE SET state = excluded.state`
)

func init() { state.PrepareOnOpen(loadQuery, storeQuery) }

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) load(ctx context.Context, q queryRower, agent string) (State, error) {
	var raw string
	err := q.QueryRowContext(ctx, loadQuery, agent).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return s.Model.Fresh(), nil
	}
	if err != nil {
		return State{}, fmt.Errorf("reading the trust state of %s: %w", agent, err)
	}
	var st State
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		return State{}, fmt.Errorf("the trust state of %s is damaged: %w", agent, err)
	}
	return st, nil
}

// Get returns an agent's state as of now (recovery credited, not stored).
func (s *Store) Get(ctx context.Context, agent string) (State, error) {
	var token state.ChangeToken
	cacheable := false
	if s.Cache != nil {
		token, cacheable = s.DB.ChangeToken()
		if cacheable {
			s.Cache.mu.Lock()
			c, hit := s.Cache.states[agent]
			s.Cache.mu.Unlock()
			if hit && c.token == token {
				return s.Model.At(c.st, s.now()), nil
			}
		}
	}
	if s.Cache != nil {
		s.Cache.misses.Add(1)
	}
	// The token is read before the state: if a commit lands in between,
	// the newer state is cached under the older token, which the next
	// call no longer sees, so it reads again. Never the reverse.
	st, err := s.load(ctx, s.DB.Reader(), agent)
	if err != nil {
		return State{}, err
	}
	if cacheable {
		s.Cache.mu.Lock()
		s.Cache.states[agent] = cachedState{token: token, st: st}
		s.Cache.mu.Unlock()
	}
	return s.Model.At(st, s.now()), nil
}

// Record applies ev to agent's state inside tx and stores the result. The
// state is read from the cache when it holds the database's current state
// (the change token seen inside tx, before tx wrote it), else from tx.
func (s *Store) Record(ctx context.Context, tx *sql.Tx, agent string, ev Event) (before, after State, err error) {
	cached := false
	if s.Cache != nil {
		if token, ok := s.DB.ChangeToken(); ok {
			before, cached = s.Cache.inTx(tx, agent, token)
		}
	}
	if !cached {
		if before, err = s.load(ctx, s.DB.Tx(tx), agent); err != nil {
			return State{}, State{}, err
		}
	}
	before = s.Model.At(before, ev.Time)
	after = s.Model.Apply(before, ev)
	raw, err := json.Marshal(after)
	if err != nil {
		return State{}, State{}, err
	}
	if s.Cache != nil {
		s.Cache.wrote(tx, agent)
	}
	_, err = s.DB.Tx(tx).ExecContext(ctx, storeQuery, agent, string(raw))
	if err != nil {
		return State{}, State{}, fmt.Errorf("storing the trust state of %s: %w", agent, err)
	}
	return before, after, nil
}

// Subject is whose trust an entry's event changes: audit.Entry.Subject.
func Subject(e *audit.Entry) string { return e.Subject() }

// Hook returns the audit hook that records ev for the entry's Subject: it
// stamps the entry with the score after the call and the event (for replay),
// and adds a trust_changed entry when the tier changes or the score moves
// by ChangeThreshold or more.
func (s *Store) Hook(ev Event) auditlog.Hook {
	return func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		ev.Time = e.Timestamp
		subject := Subject(e)
		before, after, err := s.Record(ctx, tx, subject, ev)
		if err != nil {
			return nil, err
		}
		if s.Cache != nil {
			auditlog.OnCommit(ctx, func(c state.Commit) { s.Cache.committed(subject, after, c) })
		}
		if after.Revoked && !before.Revoked && s.Metrics != nil {
			auditlog.OnCommit(ctx, func(state.Commit) { s.Metrics.Revoked() })
		}
		return s.Model.Stamp(e, ev, before, after)
	}
}

// Stamp is what an audit hook does to entry e once its event ev moved the
// subject's state from before to after: it sets the entry's trust_score
// and records ev in its details (for replay), and returns a trust_changed
// entry to append after it when the tier changed or the score moved by
// ChangeThreshold or more. Every store's hook (this one, pkg/pgtrust's)
// stamps entries with it, so their logs replay alike.
func (m Model) Stamp(e *audit.Entry, ev Event, before, after State) ([]audit.Entry, error) {
	score := after.Score
	e.TrustScore = &score
	var err error
	if e.Details, err = withTrustEvent(e.Details, ev); err != nil {
		return nil, err
	}
	tierBefore, tierAfter := m.Tier(before.Score), m.Tier(after.Score)
	delta := after.Score - before.Score
	if tierBefore == tierAfter && abs(delta) < ChangeThreshold && before.Revoked == after.Revoked {
		return nil, nil
	}
	details, _ := json.Marshal(map[string]any{
		"from": before.Score, "to": after.Score, "tier_from": tierBefore, "tier_to": tierAfter,
		"revoked": after.Revoked, "cause": ev.Kind, "cause_seq": e.Seq,
	})
	changed := audit.Entry{Agent: e.Agent, Caller: e.Caller, Action: audit.ActionTrustChanged, TrustScore: &score, Details: details}
	return []audit.Entry{changed}, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// withTrustEvent adds "trust_event" to an entry's details object.
func withTrustEvent(details json.RawMessage, ev Event) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(details) > 0 {
		if err := json.Unmarshal(details, &m); err != nil {
			return nil, fmt.Errorf("entry details are not a JSON object: %w", err)
		}
	}
	m["trust_event"] = EncodeEvent(ev)
	return json.Marshal(m)
}

// EventOf extracts the trust event recorded in an entry, if any.
func EventOf(e audit.Entry) (Event, bool) {
	if len(e.Details) == 0 {
		return Event{}, false
	}
	var d struct {
		TrustEvent *Event `json:"trust_event"`
	}
	if json.Unmarshal(e.Details, &d) != nil || d.TrustEvent == nil {
		return Event{}, false
	}
	ev := *d.TrustEvent
	ev.Time = e.Timestamp
	return ev, true
}

// Subjects lists every subject with a stored trust state (the agent and
// each authenticated caller that has called), sorted.
func (s *Store) Subjects(ctx context.Context) ([]string, error) {
	rows, err := s.DB.Reader().QueryContext(ctx, `SELECT agent FROM trust_state ORDER BY agent`)
	if err != nil {
		return nil, fmt.Errorf("listing trust states: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, fmt.Errorf("listing trust states: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// Put stores an agent's state as it is, outside any audited event: for
// scratch databases (`policy explain --trust-score`), never for a log's
// own state, whose every change is an audited event (Hook).
func (s *Store) Put(ctx context.Context, agent string, st State) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.DB.Write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, storeQuery, agent, string(raw))
		return err
	})
}
