// Package pgnotify tells every replica sharing a PostgreSQL state database
// about changes it must act on at once (DESIGN.md, "Shared state is live"):
// a trust reset or revocation, a tool approval, an API key revocation.
//
// A writer calls Bump inside the transaction that makes the change: it
// increments the change's row in state_versions and sends NOTIFY
// agentmesh_changes with {"kind", "key", "version", "schema"}. PostgreSQL
// delivers the notification only if, and once, the transaction commits.
//
// A replica Subscribes: a dedicated connection (github.com/jackc/pgxlisten)
// LISTENs and calls Handler.Change per change. Notifications are not
// queued for a disconnected listener, so after every reconnect the
// subscriber calls Handler.Resync (drop every cache: anything may have
// changed), and a poller reads the version rows every Options.PollEvery
// and reports any change whose version it has not seen, so a change is
// seen within PollEvery even if its notification was lost.
package pgnotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
)

// Channel is the NOTIFY channel of every change.
const Channel = "agentmesh_changes"

// Kinds of change, with what their Key names.
const (
	Trust   = "trust"    // a subject's trust was reset or revoked; Key: the subject
	ToolPin = "tool_pin" // a tool definition was approved; Key: "upstream/tool"
	APIKey  = "api_key"  // an API key was revoked; Key: its id
)

// Change is one notification's payload. Schema is the writer's
// current_schema(): databases shared by several deployments (one schema
// each, as the tests do) notify on one channel, and a subscriber ignores
// the other schemas' changes.
type Change struct {
	Kind    string `json:"kind"`
	Key     string `json:"key"`
	Version int64  `json:"version"`
	Schema  string `json:"schema"`
}

// Bump records a change of kind to key inside tx and queues its
// notification, sent when tx commits. It returns the change's new version.
func Bump(ctx context.Context, tx pgx.Tx, kind, key string) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx, `WITH v AS (
		INSERT INTO state_versions(kind, key, version) VALUES ($1, $2, 1)
		ON CONFLICT (kind, key) DO UPDATE SET version = state_versions.version + 1
		RETURNING version)
	SELECT v.version, pg_notify($3, json_build_object('kind', $1::text, 'key', $2::text, 'version', v.version,
		'schema', coalesce(current_schema(), ''))::text) FROM v`, kind, key, Channel).Scan(&v, nil)
	if err != nil {
		return 0, fmt.Errorf("recording the %s change of %s: %w", kind, key, err)
	}
	return v, nil
}

// Handler receives a subscription's changes. Its functions are called one
// at a time, never concurrently; they should return quickly (drop a cache
// entry) and must not call back into the Subscription.
type Handler struct {
	// Change is called once per change version seen, by notification or
	// by the poller. A change may be reported with a version above the
	// last one reported plus one: versions in between were superseded.
	Change func(Change)
	// Resync is called after the listener reconnected: notifications sent
	// while it was disconnected are lost, so everything cached from the
	// database must be read again.
	Resync func()
}

// Options configure a Subscription.
type Options struct {
	// PollEvery spaces the reads of the version rows that catch missed
	// notifications (5s).
	PollEvery time.Duration
	// ReconnectDelay is the wait before reconnecting a lost listener (1s).
	ReconnectDelay time.Duration
	// LogError receives the errors a subscription survives (a lost
	// connection, a failed poll); nil drops them.
	LogError func(error)
}

// Subscription follows the changes of one state database.
type Subscription struct {
	db     *pgstate.DB
	schema string
	h      Handler
	opts   Options

	mu    sync.Mutex // held while handling a change: one at a time
	known map[[2]string]int64

	connects atomic.Int64 // listener connections made
	pid      atomic.Uint32
	ready    chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Subscribe starts following db's changes. It returns once the listener is
// connected and the current versions are read: every change committed
// afterwards is reported.
func Subscribe(ctx context.Context, db *pgstate.DB, h Handler, opts Options) (*Subscription, error) {
	if opts.PollEvery <= 0 {
		opts.PollEvery = 5 * time.Second
	}
	if opts.ReconnectDelay <= 0 {
		opts.ReconnectDelay = time.Second
	}
	s := &Subscription{db: db, h: h, opts: opts, ready: make(chan struct{}), known: map[[2]string]int64{}}
	if err := db.Pool.QueryRow(ctx, `SELECT coalesce(current_schema(), '')`).Scan(&s.schema); err != nil {
		return nil, fmt.Errorf("state database %s: %w", db.Name, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	l := &pgxlisten.Listener{
		Connect: func(ctx context.Context) (*pgx.Conn, error) {
			return pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
		},
		LogError:       func(_ context.Context, err error) { s.logError(err) },
		ReconnectDelay: opts.ReconnectDelay,
	}
	l.Handle(Channel, (*handler)(s))
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		l.Listen(runCtx)
	}()
	go func() {
		defer s.wg.Done()
		s.pollLoop(runCtx)
	}()
	select {
	case <-s.ready:
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("state database %s: listening for changes: %w", db.Name, ctx.Err())
	}
}

// Close stops the subscription; no handler runs after it returns.
func (s *Subscription) Close() {
	s.cancel()
	s.wg.Wait()
}

func (s *Subscription) logError(err error) {
	if s.opts.LogError != nil && !errors.Is(err, context.Canceled) {
		s.opts.LogError(err)
	}
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// versions reads every change's current version.
func (s *Subscription) versions(ctx context.Context, q querier) (map[[2]string]int64, error) {
	rows, err := q.Query(ctx, `SELECT kind, key, version FROM state_versions`)
	if err != nil {
		return nil, fmt.Errorf("state database %s: reading change versions: %w", s.db.Name, err)
	}
	m := map[[2]string]int64{}
	var kind, key string
	var v int64
	_, err = pgx.ForEachRow(rows, []any{&kind, &key, &v}, func() error {
		m[[2]string{kind, key}] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state database %s: reading change versions: %w", s.db.Name, err)
	}
	return m, nil
}

// seen reports c unless a version as new was already reported.
func (s *Subscription) seen(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{c.Kind, c.Key}
	if s.known[k] >= c.Version {
		return
	}
	s.known[k] = c.Version
	if s.h.Change != nil {
		s.h.Change(c)
	}
}

// pollLoop reports, every PollEvery, the changes whose notification this
// subscriber did not get.
func (s *Subscription) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := s.versions(ctx, s.db.Pool)
		if err != nil {
			s.logError(err)
			continue
		}
		for k, v := range m {
			s.seen(Change{Kind: k[0], Key: k[1], Version: v, Schema: s.schema})
		}
	}
}

// handler is the Subscription as a pgxlisten handler.
type handler Subscription

func (h *handler) HandleNotification(ctx context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	s := (*Subscription)(h)
	var c Change
	if err := json.Unmarshal([]byte(n.Payload), &c); err != nil {
		return fmt.Errorf("a malformed %s notification %q: %w", Channel, n.Payload, err)
	}
	if c.Schema == s.schema {
		s.seen(c)
	}
	return nil
}

// HandleBacklog runs on every connection, after LISTEN: it reads the
// current versions (changes up to them are not reported again). On the
// first connection that makes the subscription ready; on a reconnect it
// calls Resync, since anything may have changed while nobody listened.
func (h *handler) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	s := (*Subscription)(h)
	s.pid.Store(conn.PgConn().PID())
	m, err := s.versions(ctx, conn)
	if err != nil {
		// Without a baseline nothing is known to be current: disconnect,
		// so that the next connection tries again.
		conn.Close(ctx)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range m {
		s.known[k] = max(s.known[k], v)
	}
	if s.connects.Add(1) == 1 {
		close(s.ready)
	} else if s.h.Resync != nil {
		s.h.Resync()
	}
	return nil
}
