package pgaudit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/pgstate"
	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// Every replica holds the identity's key: a fixed one in tests, so that
// child processes sign as their parent does.
var (
	testKey    = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	testOrigin = "agentmesh/did:agentmesh:test/0000000000000000"
	t0         = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func call(writer string, i int) audit.Entry {
	return audit.Entry{
		Timestamp: t0.Add(time.Duration(i) * time.Millisecond),
		Agent:     "did:agentmesh:" + writer,
		Action:    audit.ActionToolInvocation,
		Tool:      []string{"filesystem_read", "api_call", "database_query"}[i%3],
		Params:    []byte(fmt.Sprintf(`{"writer":%q,"i":%d}`, writer, i)),
		Result:    audit.ResultAllowed,
	}
}

// openStore opens a replica: its own pool and its own Store.
func openStore(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	db, err := pgstate.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), db, testOrigin, testKey, opts)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); db.Close() })
	return s
}

func digest(e audit.Entry) string {
	b, err := audit.Marshal(e)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkLog checks that the log holds exactly seqs 0..n-1, that every
// acknowledged entry is stored at its seq with its bytes, and that the
// latest checkpoint verifies and commits to the root of all entries.
func checkLog(t *testing.T, s *Store, acked map[int64]string, wantAtLeast int64) {
	t.Helper()
	ctx := context.Background()
	cp, err := Verify(ctx, s.db, s.Verifiers())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if cp.Size < wantAtLeast {
		t.Fatalf("the log has %d entries, want at least %d", cp.Size, wantAtLeast)
	}
	var count, maxSeq int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(max(seq), -1) FROM audit_entries`).Scan(&count, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if count != cp.Size || maxSeq != cp.Size-1 {
		t.Fatalf("%d entries up to seq %d under a checkpoint of %d: not contiguous", count, maxSeq, cp.Size)
	}
	for seq, want := range acked {
		b, err := Entry(ctx, s.db, seq)
		if err != nil {
			t.Fatalf("acknowledged entry %d: %v", seq, err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != want {
			t.Fatalf("entry %d is not the bytes acknowledged", seq)
		}
	}
}

// Three replicas, each with its own pool, appending concurrently: the
// sequence numbers are 0..N-1 with no gaps and no duplicates, and the
// log verifies.
func TestAppendConcurrentReplicas(t *testing.T) {
	u := pgtest.URL(t)
	const replicas, appenders, each = 3, 4, 60
	stores := make([]*Store, replicas)
	for i := range stores {
		stores[i] = openStore(t, u, Options{})
	}
	var mu sync.Mutex
	acked := map[int64]string{}
	var wg sync.WaitGroup
	for r, s := range stores {
		for a := range appenders {
			wg.Go(func() {
				for i := range each {
					name := fmt.Sprintf("r%d-a%d", r, a)
					e, err := s.Append(context.Background(), call(name, i), nil)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if _, dup := acked[int64(e.Seq)]; dup {
						t.Errorf("seq %d acknowledged twice", e.Seq)
					}
					acked[int64(e.Seq)] = digest(e)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	n := int64(replicas * appenders * each)
	if int64(len(acked)) != n {
		t.Fatalf("%d distinct seqs acknowledged, want %d", len(acked), n)
	}
	checkLog(t, stores[0], acked, n)
	var commits, entries int64
	for _, s := range stores {
		st := s.Stats()
		commits += st.Commits
		entries += st.Entries
	}
	if entries != n {
		t.Errorf("Stats count %d entries, want %d", entries, n)
	}
	t.Logf("%d entries in %d commits (%.1f per commit)", entries, commits, float64(entries)/float64(commits))
}

// A writer reopened on a log others wrote starts from the verified tree
// and goes on appending.
func TestReopenContinues(t *testing.T) {
	u := pgtest.URL(t)
	a := openStore(t, u, Options{})
	for i := range 5 {
		if _, err := a.Append(context.Background(), call("a", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	b := openStore(t, u, Options{})
	e, err := b.Append(context.Background(), call("b", 0), nil)
	if err != nil || e.Seq != 5 {
		t.Fatalf("Append after reopening: seq %d, %v; want 5", e.Seq, err)
	}
	checkLog(t, b, nil, 6)
}

// A writer catching up refuses a tree another writer's entries no longer
// reproduce: it never signs over them.
func TestCatchUpRefusesRewrittenEntries(t *testing.T) {
	u := pgtest.URL(t)
	a := openStore(t, u, Options{})
	b := openStore(t, u, Options{})
	if _, err := a.Append(context.Background(), call("a", 0), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Append(context.Background(), call("b", 0), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool.Exec(context.Background(), `UPDATE audit_entries SET leaf = sha256('forged'::bytea) WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	_, err := a.Append(context.Background(), call("a", 1), nil)
	if err == nil || !strings.Contains(err.Error(), "does not reproduce the root") {
		t.Fatalf("Append over a rewritten entry: %v, want a refusal", err)
	}
	if _, err := a.Append(context.Background(), call("a", 2), nil); err == nil {
		t.Fatal("the refusal did not latch")
	}
}

// Fail closed: once the database cannot be reached, Append returns an
// error, never a seq.
func TestAppendFailsWhenDatabaseUnreachable(t *testing.T) {
	u := pgtest.URL(t)
	proxy, viaProxy := pgtest.NewProxy(t, u)
	s := openStore(t, viaProxy, Options{CommitTimeout: 5 * time.Second})
	if _, err := s.Append(context.Background(), call("w", 0), nil); err != nil {
		t.Fatal(err)
	}
	proxy.Stop()
	start := time.Now()
	for i := 1; i <= 3; i++ {
		e, err := s.Append(context.Background(), call("w", i), nil)
		if err == nil {
			t.Fatalf("Append with the database unreachable returned seq %d", e.Seq)
		}
		if i == 1 {
			t.Logf("error: %v", err)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("failing took %v", d)
	}
}

// childEnv tells a re-executed test binary to be a writer process.
const childEnv = "PGAUDIT_TEST_WRITER"

// TestWriterProcess is a writer process when re-executed by the tests
// below: it appends $PGAUDIT_TEST_COUNT entries from 4 goroutines and
// prints "seq sha256" for each acknowledged one.
func TestWriterProcess(t *testing.T) {
	name := os.Getenv(childEnv)
	if name == "" {
		t.Skip("only run as a writer process by TestAppendProcesses")
	}
	n, _ := strconv.Atoi(os.Getenv("PGAUDIT_TEST_COUNT"))
	db, err := pgstate.Open(context.Background(), os.Getenv("PGAUDIT_TEST_URL"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), db, testOrigin, testKey, Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for a := range 4 {
		wg.Go(func() {
			for i := a; i < n; i += 4 {
				e, err := s.Append(context.Background(), call(name, i), nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %s\n", e.Seq, digest(e))
				out.Flush() // acknowledged means printed
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	s.Close()
	db.Close()
}

type writerProc struct {
	cmd   *exec.Cmd
	acked chan [2]string
}

func startWriter(t *testing.T, url, name string, count int) *writerProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+name, "PGAUDIT_TEST_URL="+url, fmt.Sprintf("PGAUDIT_TEST_COUNT=%d", count))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &writerProc{cmd: cmd, acked: make(chan [2]string, 1024)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "ack" {
				w.acked <- [2]string{f[1], f[2]}
			}
		}
		close(w.acked)
	}()
	return w
}

func collect(t *testing.T, acked map[int64]string, ch <-chan [2]string, limit int) int {
	n := 0
	for a := range ch {
		seq, _ := strconv.ParseInt(a[0], 10, 64)
		if _, dup := acked[seq]; dup {
			t.Errorf("seq %d acknowledged twice", seq)
		}
		acked[seq] = a[1]
		n++
		if n == limit {
			break
		}
	}
	return n
}

// Three writer processes appending concurrently: contiguous seqs, every
// acknowledged entry stored, the log verifies.
func TestAppendProcesses(t *testing.T) {
	u := pgtest.URL(t)
	openStore(t, u, Options{}) // migrate once, up front
	const procs, each = 3, 150
	var ws []*writerProc
	for i := range procs {
		ws = append(ws, startWriter(t, u, fmt.Sprintf("p%d", i), each))
	}
	acked := map[int64]string{}
	for _, w := range ws {
		collect(t, acked, w.acked, -1)
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	if len(acked) != procs*each {
		t.Fatalf("%d entries acknowledged, want %d", len(acked), procs*each)
	}
	checkLog(t, openStore(t, u, Options{}), acked, procs*each)
}

// kill -9 of a writer process in mid-stream loses no entry it
// acknowledged, and the other writers go on appending after it.
func TestKilledWriterLosesNoAcknowledgedEntry(t *testing.T) {
	u := pgtest.URL(t)
	openStore(t, u, Options{})
	victim := startWriter(t, u, "victim", 1_000_000)
	others := []*writerProc{startWriter(t, u, "o1", 200), startWriter(t, u, "o2", 200)}
	acked := map[int64]string{}
	if n := collect(t, acked, victim.acked, 150); n < 150 {
		t.Fatalf("the victim acknowledged only %d entries", n)
	}
	if err := victim.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	collect(t, acked, victim.acked, -1) // what it printed before dying
	victim.cmd.Wait()
	for _, w := range others {
		collect(t, acked, w.acked, -1)
		if err := w.cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v", err)
		}
	}
	s := openStore(t, u, Options{})
	if _, err := s.Append(context.Background(), call("after", 0), nil); err != nil {
		t.Fatalf("Append after the kill: %v", err)
	}
	checkLog(t, s, acked, int64(len(acked)))
	t.Logf("%d entries acknowledged, victim killed after at least 150", len(acked))
}
