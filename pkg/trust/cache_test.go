package trust

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// TestCacheSeesOtherConnectionsAtOnce: a server's cached trust state is
// replaced on the next Get after another connection (another process, an
// operator's `trust reset`) commits, and after its own commits.
func TestCacheSeesOtherConnectionsAtOnce(t *testing.T) {
	root := t.TempDir()
	server := openEnv(t, root, true)
	server.store.Cache = NewCache()
	ctx := context.Background()
	agent := server.id.DID()

	st, err := server.store.Get(ctx, agent)
	if err != nil || st.Score != testModel().Initial {
		t.Fatalf("fresh: %+v, %v", st, err)
	}
	// Another process (its own connections) revokes the agent.
	other := openEnv(t, root, false)
	for i := 0; i < 10 && !mustGet(t, other.store, agent).Revoked; i++ {
		other.record(t, Event{Kind: PolicyBlock, Severity: "critical"}, t0.Add(time.Duration(i)*time.Second))
	}
	if !mustGet(t, other.store, agent).Revoked {
		t.Fatal("setup: critical violations did not revoke")
	}
	if got := mustGet(t, server.store, agent); !got.Revoked {
		t.Fatalf("cached state after another process revoked the agent: %+v", got)
	}
	// The operator resets trust from a third connection.
	op, err := state.OpenDB(ctx, server.db.Path, state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	other.record(t, Event{Kind: Reset}, t0.Add(time.Minute))
	if got := mustGet(t, server.store, agent); got.Revoked || got.Score != testModel().Initial {
		t.Fatalf("cached state after a reset elsewhere: %+v", got)
	}
	// Its own commits too.
	server.record(t, Event{Kind: PolicyBlock, Severity: "high"}, t0.Add(2*time.Minute))
	if got, want := mustGet(t, server.store, agent).Score, mustGet(t, &Store{DB: op, Model: testModel(), Now: server.store.Now}, agent).Score; got != want {
		t.Fatalf("after its own commit the cache says %d, the database %d", got, want)
	}
}

// TestCacheHitsAfterOwnCommits: in sequential use (get, then an audited
// call) every Get after the first is served from the state the append
// stored, and it is the state the database holds.
func TestCacheHitsAfterOwnCommits(t *testing.T) {
	e := openEnv(t, t.TempDir(), true)
	e.store.Cache = NewCache()
	agent := e.id.DID()
	check := &Store{DB: e.db, Model: testModel(), Now: e.store.Now}
	for i := 0; i < 200; i++ {
		got := mustGet(t, e.store, agent)
		if want := mustGet(t, check, agent); !reflect.DeepEqual(got, want) {
			t.Fatalf("call %d: cached %+v, database %+v", i, got, want)
		}
		ev := Event{Kind: Allowed}
		if i%10 == 9 {
			ev = Event{Kind: PolicyBlock, Severity: "low"}
		}
		e.record(t, ev, t0.Add(time.Duration(i)*time.Second))
	}
	// a WAL restart now and then is counted with a commit: a miss
	if m := e.store.Cache.misses.Load(); m > 5 {
		t.Fatalf("%d of 200 Gets read the database", m)
	}
}

func mustGet(t *testing.T, s *Store, agent string) State {
	t.Helper()
	st, err := s.Get(context.Background(), agent)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// BenchmarkGet: reading the trust state before a call, from the database
// and from the cache (nothing committed in between).
func BenchmarkGet(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "database", true: "cache"}[cached], func(b *testing.B) {
			e := openEnv(b, b.TempDir(), true)
			if cached {
				e.store.Cache = NewCache()
			}
			e.record(b, Event{Kind: Allowed}, t0)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := e.store.Get(ctx, e.id.DID()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
