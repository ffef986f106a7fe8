package pgnotify

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

func open(t testing.TB, url string) *pgstate.DB {
	t.Helper()
	db, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// recorder is a Handler that hands what it gets to the test.
type recorder struct {
	changes chan Change
	resyncs chan struct{}
}

func subscribe(t *testing.T, db *pgstate.DB, opts Options) *recorder {
	t.Helper()
	r := &recorder{changes: make(chan Change, 16), resyncs: make(chan struct{}, 16)}
	opts.LogError = func(err error) { t.Logf("subscription: %v", err) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Subscribe(ctx, db, Handler{
		Change: func(c Change) { r.changes <- c },
		Resync: func() { r.resyncs <- struct{}{} },
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return r
}

func bump(t *testing.T, db *pgstate.DB, kind, key string) int64 {
	t.Helper()
	var v int64
	err := db.Write(context.Background(), func(tx pgx.Tx) (err error) {
		v, err = Bump(context.Background(), tx, kind, key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (r *recorder) want(t *testing.T, within time.Duration, kind, key string, version int64) {
	t.Helper()
	select {
	case c := <-r.changes:
		if c.Kind != kind || c.Key != key || c.Version != version {
			t.Fatalf("got change %+v, want %s %s version %d", c, kind, key, version)
		}
	case <-time.After(within):
		t.Fatalf("no change %s %s within %v", kind, key, within)
	}
}

func (r *recorder) none(t *testing.T, during time.Duration) {
	t.Helper()
	select {
	case c := <-r.changes:
		t.Fatalf("unexpected change %+v", c)
	case <-time.After(during):
	}
}

// TestChangeReachesAnotherReplica: a change committed through one pool is
// reported to a subscriber on another within a second, by notification
// alone (the poller is too slow to be the one); a rolled-back change and
// another schema's changes are not reported.
func TestChangeReachesAnotherReplica(t *testing.T) {
	url := pgtest.URL(t)
	writer, reader := open(t, url), open(t, url)
	r := subscribe(t, reader, Options{PollEvery: time.Hour})

	if v := bump(t, writer, Trust, "key:ci"); v != 1 {
		t.Fatalf("first version = %d, want 1", v)
	}
	r.want(t, time.Second, Trust, "key:ci", 1)
	bump(t, writer, Trust, "key:ci")
	r.want(t, time.Second, Trust, "key:ci", 2)
	bump(t, writer, APIKey, "abcdefgh")
	r.want(t, time.Second, APIKey, "abcdefgh", 1)

	err := writer.Write(context.Background(), func(tx pgx.Tx) error {
		if _, err := Bump(context.Background(), tx, ToolPin, "files/read"); err != nil {
			return err
		}
		return errors.New("the approval's audit append failed")
	})
	if err == nil {
		t.Fatal("Write returned nil")
	}
	bump(t, open(t, pgtest.URL(t)), ToolPin, "files/read") // another deployment's schema
	r.none(t, 300*time.Millisecond)
}

// TestReconnectResyncs: when the listener's connection is killed, the
// subscriber reconnects and calls Resync, and later changes still arrive.
func TestReconnectResyncs(t *testing.T) {
	url := pgtest.URL(t)
	writer, reader := open(t, url), open(t, url)
	r := &recorder{changes: make(chan Change, 16), resyncs: make(chan struct{}, 16)}
	s, err := Subscribe(context.Background(), reader, Handler{
		Change: func(c Change) { r.changes <- c },
		Resync: func() { r.resyncs <- struct{}{} },
	}, Options{PollEvery: time.Hour, ReconnectDelay: 100 * time.Millisecond, LogError: func(err error) { t.Logf("subscription: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	pid := s.pid.Load()
	var killed bool
	if err := writer.Pool.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d) = %v, %v", pid, killed, err)
	}
	select {
	case <-r.resyncs:
	case <-time.After(5 * time.Second):
		t.Fatal("no resync within 5s of the listener's connection being killed")
	}
	if s.pid.Load() == pid {
		t.Fatal("the listener did not reconnect")
	}
	bump(t, writer, ToolPin, "files/read")
	r.want(t, time.Second, ToolPin, "files/read", 1)
}

// TestPollCatchesMissedChanges: a change whose notification never came
// (here: a version row written without NOTIFY) is reported by the poller.
func TestPollCatchesMissedChanges(t *testing.T) {
	url := pgtest.URL(t)
	writer, reader := open(t, url), open(t, url)
	r := subscribe(t, reader, Options{PollEvery: 200 * time.Millisecond})
	if _, err := writer.Pool.Exec(context.Background(), `INSERT INTO state_versions(kind, key, version) VALUES ('api_key', 'zzzzzzzz', 7)`); err != nil {
		t.Fatal(err)
	}
	r.want(t, 2*time.Second, APIKey, "zzzzzzzz", 7)
	r.none(t, 500*time.Millisecond) // reported once, not at every poll
}

// BenchmarkChangeLatency is the time from committing a change on one pool
// to its Handler.Change call on another's subscriber.
func BenchmarkChangeLatency(b *testing.B) {
	url := pgtest.URL(b)
	writer, reader := open(b, url), open(b, url)
	got := make(chan Change, 1)
	s, err := Subscribe(context.Background(), reader, Handler{Change: func(c Change) { got <- c }}, Options{PollEvery: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := writer.Write(ctx, func(tx pgx.Tx) error { _, err := Bump(ctx, tx, Trust, "key:ci"); return err }); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
