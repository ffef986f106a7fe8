package trust

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/auditlog"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

type env struct {
	d     *state.Dir
	id    *identity.Identity
	db    *state.DB
	log   *auditlog.Log
	store *Store
}

func openEnv(t testing.TB, root string, create bool) *env {
	t.Helper()
	d, err := state.Create(filepath.Join(root, "state"))
	if err != nil {
		t.Fatal(err)
	}
	var id *identity.Identity
	if create {
		id, err = identity.Create(d, identity.CreateOptions{Name: "srv", Sponsor: "a@b.com", Now: t0})
	} else {
		id, err = identity.Load(d)
	}
	if err != nil {
		t.Fatal(err)
	}
	db, err := d.OpenDB(context.Background(), state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	l, err := auditlog.Open(context.Background(), db, id, auditlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{d: d, id: id, db: db, log: l, store: &Store{DB: db, Model: testModel(), Now: func() time.Time { return t0 }}}
	t.Cleanup(func() { l.Close(); db.Close() })
	return e
}

func (e *env) record(t testing.TB, ev Event, when time.Time) audit.Entry {
	t.Helper()
	entry, err := e.log.Append(context.Background(), audit.Entry{
		Timestamp: when, Agent: e.id.DID(), Action: audit.ActionToolInvocation, Tool: "filesystem_read", Result: audit.ResultAllowed,
	}, e.store.Hook(ev))
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

func randomEvent(r *rand.Rand, i int) Event {
	kinds := []Kind{Allowed, Allowed, Allowed, Allowed, Redacted, PolicyBlock, GuardRefusal, RateLimited, CredentialFailure, Neutral}
	ev := Event{Kind: kinds[r.IntN(len(kinds))]}
	switch ev.Kind {
	case PolicyBlock:
		ev.Severity = []string{"", "low", "medium", "high", "critical"}[r.IntN(5)]
	case RateLimited:
		ev.Once = fmt.Sprintf("p/r%d/a", r.IntN(3))
	}
	if i%97 == 96 {
		ev = Event{Kind: Reset}
	}
	return ev
}

// TestReplayMatchesStore records a long random sequence through the real
// pipeline (audit append + trust hook in one transaction) and replays the
// log: the replayed score equals the stored one after every prefix.
// TestReplayMatchesStore: replaying the log gives the stored state and
// every entry's score, reading the trust state from the database, from
// the cache, and from the cache while concurrent appends share
// transactions (several events of one agent in one commit).
func TestReplayMatchesStore(t *testing.T) {
	for _, mode := range []string{"database", "cache", "cache+concurrent"} {
		t.Run(mode, func(t *testing.T) { testReplayMatchesStore(t, mode) })
	}
}

func testReplayMatchesStore(t *testing.T, mode string) {
	e := openEnv(t, t.TempDir(), true)
	if mode != "database" {
		e.store.Cache = NewCache()
	}
	workers := 1
	if mode == "cache+concurrent" {
		workers = 4
	}
	var wg sync.WaitGroup
	var clock, count atomic.Int64 // shared: times and resets as in one sequence
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(1, uint64(2+w)))
			for i := 0; i < 600/workers; i++ {
				when := t0.Add(time.Duration(clock.Add(int64(r.IntN(40)))) * time.Minute)
				ev := randomEvent(r, int(count.Add(1))-1)
				if ev.Kind == RateLimited {
					ev.Until = when.Add(time.Hour)
				}
				entry, err := e.log.Append(context.Background(), audit.Entry{
					Timestamp: when, Agent: e.id.DID(), Action: audit.ActionToolInvocation, Tool: "filesystem_read", Result: audit.ResultAllowed,
				}, e.store.Hook(ev))
				if err != nil {
					t.Error(err)
					return
				}
				if entry.TrustScore == nil {
					t.Error("entry has no trust_score")
					return
				}
				if mode != "database" && i%7 == 0 {
					if _, err := e.store.Get(context.Background(), e.id.DID()); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored, err := e.store.load(context.Background(), e.db.Reader(), e.id.DID())
	if err != nil {
		t.Fatal(err)
	}
	all, err := e.log.List(context.Background(), auditlog.Filter{AfterSeq: -1})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]audit.Entry, len(all))
	for i, s := range all {
		entries[i] = s.Entry
	}
	states, steps := testModel().Replay(entries)
	got := states[e.id.DID()]
	if got.Score != stored.Score || got.Revoked != stored.Revoked {
		t.Fatalf("replay: score %d revoked %v; stored: %d %v", got.Score, got.Revoked, stored.Score, stored.Revoked)
	}
	// And the score in each entry is the replayed score after that entry.
	last := map[uint64]int{}
	for _, s := range steps {
		last[s.Seq] = s.After
	}
	for _, en := range entries {
		if want, ok := last[en.Seq]; ok && *en.TrustScore != want {
			t.Fatalf("entry %d says %d, replay says %d", en.Seq, *en.TrustScore, want)
		}
	}
	if len(steps) < 100 {
		t.Fatalf("only %d steps changed the score: the sequence is not exercising the model", len(steps))
	}
	var changed int
	for _, en := range entries {
		if en.Action == audit.ActionTrustChanged {
			changed++
		}
	}
	if changed == 0 {
		t.Fatal("no trust_changed entries were recorded")
	}
	if _, err := e.log.Verify(context.Background(), auditlog.VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

const workerEnv = "AGENTMESH_TRUST_TEST_WORKER"

func TestMain(m *testing.M) {
	if root := os.Getenv(workerEnv); root != "" {
		os.Exit(worker(root))
	}
	os.Exit(m.Run())
}

// worker records violations forever, printing the score after each
// committed one.
func worker(root string) int {
	t := &testing.T{}
	e := openEnv(t, root, false)
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		entry, err := e.log.Append(context.Background(), audit.Entry{
			Timestamp: t0.Add(time.Duration(i) * time.Second), Agent: e.id.DID(), Action: audit.ActionToolInvocation,
			Tool: "filesystem_read", Result: audit.ResultBlocked,
		}, e.store.Hook(Event{Kind: PolicyBlock, Severity: "low"}))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(out, *entry.TrustScore)
		out.Flush()
	}
}

// TestCrashKeepsScore lowers the score in a subprocess, kills it with
// SIGKILL, and reopens: the stored score is the last one acknowledged (or
// lower, if a commit landed after the last line was read), and equals the
// score in the last audit entry.
func TestCrashKeepsScore(t *testing.T) {
	root := t.TempDir()
	openEnv(t, root, true)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+root)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	last := 0
	for n := 0; lines.Scan(); n++ {
		last, _ = strconv.Atoi(lines.Text())
		if n == 20 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	if last != 800-21*10 {
		t.Fatalf("acknowledged score after 21 low blocks = %d, want %d", last, 800-21*10)
	}
	e := openEnv(t, root, false)
	st, err := e.store.load(context.Background(), e.db.Reader(), e.id.DID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Score > last {
		t.Fatalf("after SIGKILL the score is %d, above the acknowledged %d: a committed violation was lost", st.Score, last)
	}
	all, _ := e.log.List(context.Background(), auditlog.Filter{AfterSeq: -1, Limit: 1})
	if len(all) != 1 || *all[0].Entry.TrustScore != st.Score {
		t.Fatalf("last entry's trust_score %v != stored score %d", all, st.Score)
	}
}
