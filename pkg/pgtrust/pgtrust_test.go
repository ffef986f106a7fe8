package pgtrust

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
	"github.com/agentmesh/agentmesh/pkg/trust"
)

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func model() trust.Model {
	return trust.Model{
		Initial: 800, RevokeBelow: 300, RecoveryAfter: time.Hour, RecoveryPerHour: 10,
		Tiers:   map[string]int{"untrusted": 0, "probationary": 300, "standard": 500, "trusted": 700, "verified": 900},
		Weights: trust.DefaultWeights(), RepeatWindow: time.Hour, DailyGainAboveInitial: 10,
	}
}

func open(t testing.TB, url string) *Store {
	t.Helper()
	db, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return &Store{DB: db, Model: model(), Now: func() time.Time { return at(600) }}
}

func record(t testing.TB, s *Store, subject string, ev trust.Event) (before, after trust.State) {
	t.Helper()
	err := s.DB.Write(context.Background(), func(tx pgx.Tx) (err error) {
		before, after, err = s.Record(context.Background(), tx, subject, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return before, after
}

func version(t testing.TB, s *Store, subject string) int64 {
	t.Helper()
	var v int64
	err := s.DB.Pool.QueryRow(context.Background(), `SELECT coalesce(max(version), 0) FROM state_versions WHERE kind = 'trust' AND key = $1`, subject).Scan(&v)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRecordAppliesTheModel: every step stored in PostgreSQL equals the
// model's own fold of the same events, and only a revocation or a reset
// bumps the subject's change version.
func TestRecordAppliesTheModel(t *testing.T) {
	s := open(t, pgtest.URL(t))
	m := model()
	steps := []struct {
		name    string
		ev      trust.Event
		version int64 // the subject's change version after the step
	}{
		{"allowed", trust.Event{Kind: trust.Allowed, Time: at(0)}, 0},
		{"mistake", trust.Event{Kind: trust.Mistake, Once: "mistake/root", Until: at(60), Time: at(1)}, 0},
		{"same mistake, same window: free", trust.Event{Kind: trust.Mistake, Once: "mistake/root", Until: at(60), Time: at(2)}, 0},
		{"high policy block", trust.Event{Kind: trust.PolicyBlock, Severity: "high", Time: at(3)}, 0},
		{"attack 1", trust.Event{Kind: trust.Attack, Time: at(4)}, 0},
		{"attack 2", trust.Event{Kind: trust.Attack, Time: at(5)}, 0},
		{"attack 3", trust.Event{Kind: trust.Attack, Time: at(6)}, 0},
		{"attack 4", trust.Event{Kind: trust.Attack, Time: at(7)}, 0},
		{"attack 5: below 300, revoked", trust.Event{Kind: trust.Attack, Time: at(8)}, 1},
		{"refused while revoked: no change", trust.Event{Kind: trust.Attack, Time: at(9)}, 1},
		{"reset", trust.Event{Kind: trust.Reset, Time: at(10)}, 2},
		{"recovery credited after an hour", trust.Event{Kind: trust.Allowed, Time: at(200)}, 2},
	}
	want := m.Fresh()
	revoked := false
	for _, st := range steps {
		wantBefore := m.At(want, st.ev.Time)
		want = m.Apply(wantBefore, st.ev)
		before, after := record(t, s, "key:ci", st.ev)
		if !reflect.DeepEqual(before, wantBefore) || !reflect.DeepEqual(after, want) {
			t.Fatalf("%s: got %+v -> %+v, want %+v -> %+v", st.name, before, after, wantBefore, want)
		}
		revoked = revoked || after.Revoked
		if v := version(t, s, "key:ci"); v != st.version {
			t.Fatalf("%s: change version %d, want %d", st.name, v, st.version)
		}
	}
	if !revoked {
		t.Fatal("the steps never revoked: the table does not test revocation")
	}
	got, err := s.Get(context.Background(), "key:ci")
	if err != nil || !reflect.DeepEqual(got, m.At(want, at(600))) {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, m.At(want, at(600)))
	}
	if got, _ := s.Get(context.Background(), "never-seen"); !reflect.DeepEqual(got, m.Fresh()) {
		t.Fatalf("Get of an unknown subject = %+v, want the fresh state", got)
	}
	if subjects, err := s.Subjects(context.Background()); err != nil || !reflect.DeepEqual(subjects, []string{"key:ci"}) {
		t.Fatalf("Subjects = %v, %v", subjects, err)
	}
}

// TestReplicasLoseNoEvent: three replicas record 20 mistakes each for one
// new subject at once; every one is applied.
func TestReplicasLoseNoEvent(t *testing.T) {
	url := pgtest.URL(t)
	stores := []*Store{open(t, url), open(t, url), open(t, url)}
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for range 10 {
				record(t, s, "key:ci", trust.Event{Kind: trust.Mistake, Time: t0})
			}
		}(stores[g%3])
	}
	wg.Wait()
	stores[0].Now = func() time.Time { return t0 } // no recovery credited
	got, err := stores[0].Get(context.Background(), "key:ci")
	if want := 800 - 60*5; err != nil || got.Score != want {
		t.Fatalf("score after 60 mistakes = %d (%v), want %d", got.Score, err, want)
	}
}

// TestHookStampsLikeSQLite: the hook stores the state with the entry's
// transaction, stamps the entry as trust.Model.Stamp does, and a rolled
// back append leaves the state untouched.
func TestHookStampsLikeSQLite(t *testing.T) {
	s := open(t, pgtest.URL(t))
	ctx := context.Background()
	e := audit.Entry{Timestamp: at(0), Agent: "did:agentmesh:a", Action: audit.ActionToolInvocation, Tool: "filesystem_read",
		Caller: &audit.Caller{ID: "key:ci", Kind: "api_key"}, Details: json.RawMessage(`{"reason":"traversal"}`)}
	var followUps []audit.Entry
	err := s.DB.Write(ctx, func(tx pgx.Tx) (err error) {
		followUps, err = s.Hook(trust.Event{Kind: trust.Attack})(ctx, tx, &e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.TrustScore == nil || *e.TrustScore != 700 {
		t.Fatalf("entry trust_score = %v, want 700", e.TrustScore)
	}
	if ev, ok := trust.EventOf(e); !ok || ev.Kind != trust.Attack {
		t.Fatalf("entry details %s do not record the attack", e.Details)
	}
	if len(followUps) != 1 || followUps[0].Action != audit.ActionTrustChanged {
		t.Fatalf("follow-ups = %+v, want one trust_changed (a 100-point drop)", followUps)
	}

	err = s.DB.Write(ctx, func(tx pgx.Tx) error {
		if _, err := s.Hook(trust.Event{Kind: trust.Attack})(ctx, tx, &e); err != nil {
			return err
		}
		return errors.New("the audit append failed")
	})
	if err == nil {
		t.Fatal("Write returned nil")
	}
	var raw []byte
	s.DB.Pool.QueryRow(ctx, `SELECT state FROM trust_state WHERE subject = 'key:ci'`).Scan(&raw)
	var stored trust.State
	json.Unmarshal(raw, &stored)
	if stored.Score != 700 {
		t.Fatalf("stored score %d after a rolled-back append, want 700", stored.Score)
	}
}
