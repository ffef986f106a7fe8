package auditlog

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/agentmesh/agentmesh/pkg/audit"
	"github.com/agentmesh/agentmesh/pkg/identity"
	"github.com/agentmesh/agentmesh/pkg/state"
)

type fixture struct {
	dir     *state.Dir
	id      *identity.Identity
	db      *state.DB
	log     *Log
	witness string
}

var t0 = time.Date(2026, 1, 31, 10, 15, 0, 0, time.UTC)

func newFixture(t testing.TB, root string) *fixture {
	t.Helper()
	d, err := state.Create(filepath.Join(root, "state"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.Load(d)
	if errors.Is(err, identity.ErrNoIdentity) {
		id, err = identity.Create(d, identity.CreateOptions{Name: "mcp-tool-server", Sponsor: "devops@company.com", Now: t0})
		if errors.Is(err, identity.ErrExists) { // another process won the race
			time.Sleep(200 * time.Millisecond)
			id, err = identity.Load(d)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: d, id: id, witness: filepath.Join(root, "witness")}
	f.open(t)
	return f
}

func (f *fixture) open(t testing.TB) {
	t.Helper()
	db, err := f.dir.OpenDB(context.Background(), state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(context.Background(), db, f.id, Options{WitnessDir: f.witness})
	if err != nil {
		t.Fatal(err)
	}
	f.db, f.log = db, l
	t.Cleanup(func() { f.close() })
}

func (f *fixture) close() {
	if f.log != nil {
		f.log.Close()
		f.db.Close()
		f.log, f.db = nil, nil
	}
}

func call(i int) audit.Entry {
	score := 800 + i%5
	return audit.Entry{
		Timestamp:  t0.Add(time.Duration(i) * time.Second),
		Agent:      "did:agentmesh:mcp-tool-server",
		Action:     audit.ActionToolInvocation,
		Tool:       []string{"filesystem_read", "api_call", "database_query"}[i%3],
		Params:     []byte(fmt.Sprintf(`{"path":"/data/f%d.json"}`, i)),
		Result:     []audit.Result{audit.ResultAllowed, audit.ResultBlocked}[i%2],
		TrustScore: &score,
	}
}

func (f *fixture) appendN(t testing.TB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		e, err := f.log.Append(context.Background(), call(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		if e.Seq == 0 && i > 0 {
			t.Fatalf("append %d got seq 0", i)
		}
	}
}

func (f *fixture) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	err := f.db.Write(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(q, args...)
		return err
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func (f *fixture) verify(t testing.TB) (Report, error) {
	t.Helper()
	return f.log.Verify(context.Background(), VerifyOptions{})
}

func TestAppendAndVerify(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 25)
	rep, err := f.verify(t)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Size != 25 || rep.Hashed != 25 || rep.Checkpoint == nil || rep.Checkpoint.Size != 25 || rep.Checkpoint.Root != rep.Root {
		t.Fatalf("report = %+v", rep)
	}
	got, err := f.log.List(context.Background(), Filter{Tool: "api_call", AfterSeq: -1, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Entry.Seq != 16 || got[2].Entry.Seq != 22 {
		t.Fatalf("List(api_call, limit 3) seqs = %v", seqs(got))
	}
	proof, err := f.log.Prove(context.Background(), 7)
	if err != nil {
		t.Fatal(err)
	}
	v, err := audit.VerifyInclusionProof(proof, f.log.Verifiers())
	if err != nil || v.Entry.Seq != 7 || v.Checkpoint.Size != 25 {
		t.Fatalf("proof: %+v, %v", v, err)
	}
}

func seqs(s []Stored) []uint64 {
	out := make([]uint64, len(s))
	for i, e := range s {
		out[i] = e.Entry.Seq
	}
	return out
}

func TestHookRunsInTransaction(t *testing.T) {
	f := newFixture(t, t.TempDir())
	boom := errors.New("trust update failed")
	_, err := f.log.Append(context.Background(), call(0), func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		if _, err := tx.Exec(`INSERT INTO meta VALUES ('hook', 'ran')`); err != nil {
			return nil, err
		}
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Append = %v, want the hook's error", err)
	}
	var n int
	f.db.Reader().QueryRow(`SELECT count(*) FROM meta WHERE key = 'hook'`).Scan(&n)
	if size, _ := f.log.Size(context.Background()); size != 0 || n != 0 {
		t.Fatalf("after a failed hook: %d entries, %d hook rows; want nothing kept", size, n)
	}
	e, err := f.log.Append(context.Background(), call(1), func(ctx context.Context, tx *sql.Tx, e *audit.Entry) ([]audit.Entry, error) {
		score := 42
		e.TrustScore = &score
		e.Seq = 99 // ignored
		return []audit.Entry{{Agent: e.Agent, Action: audit.ActionTrustChanged, Details: []byte(`{"from":800,"to":42}`)}}, nil
	})
	if err != nil || e.Seq != 0 || *e.TrustScore != 42 {
		t.Fatalf("Append with hook = %+v, %v", e, err)
	}
	next, err := f.log.Append(context.Background(), call(2), nil)
	if err != nil || next.Seq != 2 {
		t.Fatalf("the follow-up entry did not take seq 1: next append got %d, %v", next.Seq, err)
	}
	all, _ := f.log.List(context.Background(), Filter{AfterSeq: -1})
	if len(all) != 3 || all[1].Entry.Action != audit.ActionTrustChanged || !all[1].Entry.Timestamp.Equal(all[0].Entry.Timestamp) {
		t.Fatalf("follow-up entry = %+v", all)
	}
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
}

func TestGroupCommitConcurrentAppends(t *testing.T) {
	f := newFixture(t, t.TempDir())
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if _, err := f.log.Append(context.Background(), call(w*each+i), nil); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := f.verify(t)
	if err != nil || rep.Size != workers*each {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// tamper runs one tampering against a fresh 20-entry log and checks that
// Verify reports the right kind at the right sequence number.
func TestTamperMatrix(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, f *fixture)
		kind    audit.Kind
		seq     int64
		message string
	}{
		{"flip one byte of an entry", func(t *testing.T, f *fixture) {
			var raw []byte
			f.db.Reader().QueryRow(`SELECT entry FROM audit_entries WHERE seq = 5`).Scan(&raw)
			i := strings.Index(string(raw), "/data/f5")
			raw[i+6] = 'X'
			f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = 5`, raw)
		}, audit.KindContentChanged, 5, ""},
		{"change only an indexed column", func(t *testing.T, f *fixture) {
			f.exec(t, `UPDATE audit_entries SET result = 'allowed' WHERE seq = 9`)
		}, audit.KindCopyChanged, 9, "indexed column result"},
		{"delete a middle entry", func(t *testing.T, f *fixture) {
			f.exec(t, `DELETE FROM audit_entries WHERE seq = 8`)
		}, audit.KindMissingEntry, 8, ""},
		{"swap two entries", func(t *testing.T, f *fixture) {
			var a, b []byte
			f.db.Reader().QueryRow(`SELECT entry FROM audit_entries WHERE seq = 3`).Scan(&a)
			f.db.Reader().QueryRow(`SELECT entry FROM audit_entries WHERE seq = 11`).Scan(&b)
			f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = 3`, b)
			f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = 11`, a)
		}, audit.KindReordered, 3, ""},
		{"replace the checkpoint with a foreign key's", func(t *testing.T, f *fixture) {
			foreign, _ := identity.GenerateKey()
			signer, _ := audit.NewSigner(f.log.Origin(), foreign)
			_, cp, _ := f.log.LatestCheckpoint(context.Background())
			note, _ := audit.SignCheckpoint(cp, signer)
			f.exec(t, `UPDATE audit_checkpoint SET note = ?`, note)
		}, audit.KindUnknownKey, audit.NoSeq, ""},
		{"edit the checkpoint's size", func(t *testing.T, f *fixture) {
			var note []byte
			f.db.Reader().QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note)
			edited := strings.Replace(string(note), "\n20\n", "\n19\n", 1)
			f.exec(t, `UPDATE audit_checkpoint SET note = ?`, []byte(edited))
		}, audit.KindSignatureInvalid, audit.NoSeq, ""},
		{"edit the checkpoint's root", func(t *testing.T, f *fixture) {
			var note []byte
			f.db.Reader().QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note)
			lines := strings.SplitN(string(note), "\n", 4)
			root := []byte(lines[2])
			root[0] ^= 1
			if root[0] == '+' || root[0] == '/' {
				root[0] = 'A'
			}
			lines[2] = string(root)
			f.exec(t, `UPDATE audit_checkpoint SET note = ?`, []byte(strings.Join(lines, "\n")))
		}, audit.KindSignatureInvalid, audit.NoSeq, ""},
		{"truncate the tail and restore an older checkpoint", func(t *testing.T, f *fixture) {
			var note []byte
			f.db.Reader().QueryRow(`SELECT note FROM audit_checkpoint`).Scan(&note)
			// Grow the log to 30 (the witness follows), then roll back to
			// the state of 20 entries: entries, tree and checkpoint.
			for i := 20; i < 30; i++ {
				if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
					t.Fatal(err)
				}
			}
			f.log.witness.close() // flush: the witness may lag, but not forever
			f.exec(t, `DELETE FROM audit_entries WHERE seq >= 20`)
			f.exec(t, `DELETE FROM audit_hashes WHERE idx >= ?`, storedHashCount(20))
			f.exec(t, `UPDATE audit_checkpoint SET note = ?, size = 20`, note)
		}, audit.KindRollback, 20, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, t.TempDir())
			f.appendN(t, 20)
			if _, err := f.verify(t); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tt.tamper(t, f)
			_, err := f.verify(t)
			var verr *audit.VerifyError
			if !errors.As(err, &verr) {
				t.Fatalf("Verify = %v, want a VerifyError", err)
			}
			if verr.Kind != tt.kind || verr.Seq != tt.seq || !strings.Contains(verr.Detail, tt.message) {
				t.Fatalf("Verify = seq %d %s (%s); want seq %d %s", verr.Seq, verr.Kind, verr.Detail, tt.seq, tt.kind)
			}
			last, _ := f.log.LastVerification(context.Background())
			if last == nil || last.OK {
				t.Fatalf("failed verification not recorded: %+v", last)
			}
		})
	}
}

// storedHashCount is how many tlog stored hashes a tree of n leaves has.
func storedHashCount(n int64) int64 {
	if n == 0 {
		return 0
	}
	return tlog.StoredHashIndex(0, n)
}

func TestIncrementalVerify(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 30)
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
	for i := 30; i < 40; i++ {
		f.log.Append(context.Background(), call(i), nil)
	}
	rep, err := f.log.Verify(context.Background(), VerifyOptions{Incremental: true})
	if err != nil || rep.Mode != "incremental" || rep.Since != 30 || rep.Hashed != 10 || rep.Size != 40 {
		t.Fatalf("incremental = %+v, %v", rep, err)
	}
	// A change among the new entries is found incrementally.
	f.exec(t, `UPDATE audit_entries SET tool = 'x' WHERE seq = 35`)
	rep, err = f.log.Verify(context.Background(), VerifyOptions{Incremental: true})
	var verr *audit.VerifyError
	if !errors.As(err, &verr) || verr.Seq != 35 || verr.Kind != audit.KindCopyChanged {
		t.Fatalf("incremental after tampering = %v", err)
	}
}

const workerEnv = "AGENTMESH_AUDITLOG_TEST_WORKER"

func TestMain(m *testing.M) {
	if root := os.Getenv(workerEnv); root != "" {
		n, _ := strconv.Atoi(os.Getenv("WORKER_APPENDS"))
		if err := worker(root, n); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// worker appends n entries (forever if n == 0), printing each seq after
// Append returned.
func worker(root string, n int) error {
	d, err := state.Create(filepath.Join(root, "state"))
	if err != nil {
		return err
	}
	id, err := identity.Load(d)
	if err != nil {
		return err
	}
	db, err := d.OpenDB(context.Background(), state.SyncFull)
	if err != nil {
		return err
	}
	l, err := Open(context.Background(), db, id, Options{WitnessDir: filepath.Join(root, "witness")})
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; n == 0 || i < n; i++ {
		e, err := l.Append(context.Background(), call(i), nil)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, e.Seq)
		out.Flush()
	}
	return l.Close()
}

func startWorker(t *testing.T, root string, n int) (*exec.Cmd, *bufio.Scanner) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerEnv+"="+root, "WORKER_APPENDS="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stdout)
}

// TestCrashSafety kills a process with SIGKILL in the middle of a stream of
// appends: the log still verifies and holds every append that returned.
func TestCrashSafety(t *testing.T) {
	root := t.TempDir()
	f := newFixture(t, root)
	f.close()
	cmd, lines := startWorker(t, root, 0)
	var acked []uint64
	for lines.Scan() {
		seq, _ := strconv.ParseUint(lines.Text(), 10, 64)
		acked = append(acked, seq)
		if len(acked) == 300 {
			cmd.Process.Signal(syscall.SIGKILL)
			break
		}
	}
	cmd.Wait()
	f.open(t)
	rep, err := f.verify(t)
	if err != nil {
		t.Fatalf("after SIGKILL: %v", err)
	}
	if rep.Size < int64(len(acked)) {
		t.Fatalf("log has %d entries, but %d appends had returned", rep.Size, len(acked))
	}
	for i, seq := range acked {
		if seq != uint64(i) {
			t.Fatalf("acknowledged seq %d at position %d", seq, i)
		}
	}
}

// TestConcurrentProcesses: 4 processes × 2,000 appends → 8,000 contiguous
// entries that verify.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 8,000 durable entries")
	}
	root := t.TempDir()
	f := newFixture(t, root)
	f.close()
	const procs, each = 4, 2000
	var cmds []*exec.Cmd
	var wg sync.WaitGroup
	counts := make([]int, procs)
	for p := 0; p < procs; p++ {
		cmd, lines := startWorker(t, root, each)
		cmds = append(cmds, cmd)
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for lines.Scan() {
				counts[p]++
			}
		}(p)
	}
	wg.Wait()
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("process %d: %v", p, err)
		}
		if counts[p] != each {
			t.Fatalf("process %d acknowledged %d appends, want %d", p, counts[p], each)
		}
	}
	f.open(t)
	rep, err := f.verify(t)
	if err != nil || rep.Size != procs*each {
		t.Fatalf("verify: size %d, %v; want %d", rep.Size, err, procs*each)
	}
}

func TestAppendAfterCloseFails(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.log.Close()
	done := make(chan error, 1)
	go func() {
		_, err := f.log.Append(context.Background(), call(0), nil)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Append after Close = %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append after Close hangs")
	}
}

// TestForkIsNamed: a witness holding another root for the size the
// database's checkpoint has is a fork, and both sources are named.
func TestForkIsNamed(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 20)
	f.log.Close() // flush the witness
	signer, _ := audit.NewSigner(f.log.Origin(), f.id.Key)
	var other audit.MemoryTree
	for i := 0; i < 20; i++ {
		other.Append([]byte(fmt.Sprintf("another history %d", i)))
	}
	root, _ := other.Root(20)
	forged, _ := audit.SignCheckpoint(audit.Checkpoint{Origin: f.log.Origin(), Size: 20, Root: root, Time: t0}, signer)
	path := witnessPath(f.witness, f.log.Origin())
	if err := os.WriteFile(path, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), f.db, f.id, Options{WitnessDir: f.witness}); !errors.Is(err, audit.KindFork) {
		t.Fatalf("a writer opened beside a forked witness: %v", err)
	}
	r, err := OpenReader(context.Background(), f.db, &f.id.Doc, Options{WitnessDir: f.witness})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Verify(context.Background(), VerifyOptions{})
	var verr *audit.VerifyError
	if !errors.As(err, &verr) || verr.Kind != audit.KindFork || !strings.Contains(verr.Detail, "the witness "+path) || !strings.Contains(verr.Detail, "the state database's latest checkpoint") {
		t.Fatalf("verify = %v; want a fork naming the witness and the database", err)
	}
}

// TestAlarmsLatch: a failed full verification stays the verdict (Health,
// --incremental) after the damage is undone, until a full one passes.
func TestAlarmsLatch(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 20)
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	f.db.Reader().QueryRow(`SELECT entry FROM audit_entries WHERE seq = 12`).Scan(&raw)
	edited := bytes.Replace(raw, []byte("/data/f12"), []byte("/data/x12"), 1)
	f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = 12`, edited)
	if _, err := f.verify(t); err == nil {
		t.Fatal("the edit was not found")
	}
	f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = 12`, raw) // undone
	h, err := f.log.Health(context.Background())
	if err != nil || !h.Critical() || h.FailedVerification == nil {
		t.Fatalf("health after a failed verify: %+v, %v", h, err)
	}
	rep, err := f.log.Verify(context.Background(), VerifyOptions{Incremental: true})
	if err == nil || !strings.Contains(err.Error(), "--incremental cannot clear it") {
		t.Fatalf("--incremental after a failed full verify: %+v, %v", rep, err)
	}
	if h, _ := f.log.Health(context.Background()); h.FailedVerification == nil {
		t.Fatal("a failed incremental run cleared the alarm")
	}
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
	if h, _ := f.log.Health(context.Background()); h.Critical() {
		t.Fatalf("a passing full verify did not clear the alarm: %+v", h)
	}
	if _, err := f.log.Verify(context.Background(), VerifyOptions{Incremental: true}); err != nil {
		t.Fatal(err)
	}
}

// TestIncrementalNeedsSignedRecord: a verification record edited in the
// database (moved forward over entries never verified) is not where
// --incremental starts.
func TestIncrementalNeedsSignedRecord(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 10)
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
	for i := 10; i < 30; i++ {
		f.log.Append(context.Background(), call(i), nil)
	}
	// Claim the last full run covered 30 entries.
	root, _ := audit.TreeRoot(30, hashReader{ctx: context.Background(), q: f.db.Reader()})
	f.exec(t, `UPDATE audit_verifications SET size = 30, root = ? WHERE mode = 'full'`, root[:])
	rep, err := f.log.Verify(context.Background(), VerifyOptions{Incremental: true})
	if err != nil || rep.Mode != "full" || !strings.Contains(rep.FullBecause, "signed record says something else") || rep.Hashed != 30 {
		t.Fatalf("incremental over an edited record = %+v, %v; want a full run", rep, err)
	}
}

// TestListingFiltersOnEntryBytes: an entry whose indexed tool column was
// edited is still listed by its tool; an entry that does not decode stops
// the listing with its seq.
func TestListingFiltersOnEntryBytes(t *testing.T) {
	f := newFixture(t, t.TempDir())
	f.appendN(t, 30)
	all, _ := f.log.List(context.Background(), Filter{Tool: "api_call", AfterSeq: -1})
	f.exec(t, `UPDATE audit_entries SET tool = 'innocent' WHERE seq = 4`)
	got, err := f.log.List(context.Background(), Filter{Tool: "api_call", AfterSeq: -1})
	if err != nil || len(got) != len(all) || len(all) != 10 {
		t.Fatalf("after editing a column copy: %d of %d api_call entries listed, %v", len(got), len(all), err)
	}
	since, _ := f.log.List(context.Background(), Filter{Since: t0.Add(25 * time.Second), AfterSeq: -1})
	if len(since) != 5 || since[0].Entry.Seq != 25 {
		t.Fatalf("--since listed %v", seqs(since))
	}
	f.exec(t, `UPDATE audit_entries SET entry = CAST('{"v":1,"seq":7' AS BLOB) WHERE seq = 7`)
	for _, filter := range []Filter{{AfterSeq: -1}, {Tool: "api_call", AfterSeq: -1}} {
		if _, err := f.log.List(context.Background(), filter); err == nil || !strings.Contains(err.Error(), "audit entry 7 is damaged") {
			t.Fatalf("a damaged entry, listing %+v: %v", filter, err)
		}
	}
}

// TestVerifyLargeLog: on a log of many decoding batches and hash chunks,
// full and incremental verification find a change wherever it is, with the
// stored hashes streamed from a twin transaction and read from the view
// alone.
func TestVerifyLargeLog(t *testing.T) {
	const n = 20_000
	f := bulkLog(t, n)
	ctx := context.Background()
	if _, err := f.verify(t); err != nil {
		t.Fatal(err)
	}
	// 600 more, so that --incremental starts in the middle of the tree.
	for i := n; i < n+600; i++ {
		if _, err := f.log.Append(ctx, call(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The witness follows the log a little behind; let it catch up, so
	// that it is not what notices an edited stored hash of the last leaf.
	f.log.witness.close()
	entry := func(seq int64) []byte {
		var raw []byte
		if err := f.db.Reader().QueryRow(`SELECT entry FROM audit_entries WHERE seq = ?`, seq).Scan(&raw); err != nil {
			t.Fatal(err)
		}
		return raw
	}
	hash := func(idx int64) []byte {
		var h []byte
		if err := f.db.Reader().QueryRow(`SELECT hash FROM audit_hashes WHERE idx = ?`, idx).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	editEntry := func(seq int64) (func(), func()) {
		raw := entry(seq)
		edited := strings.Replace(string(raw), `"agent":"`, `"agent":"X`, 1)
		return func() { f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = ?`, []byte(edited), seq) },
			func() { f.exec(t, `UPDATE audit_entries SET entry = ? WHERE seq = ?`, raw, seq) }
	}
	editLeaf := func(seq int64) (func(), func()) {
		idx := tlog.StoredHashIndex(0, seq)
		h := hash(idx)
		return func() { f.exec(t, `UPDATE audit_hashes SET hash = zeroblob(32) WHERE idx = ?`, idx) },
			func() { f.exec(t, `UPDATE audit_hashes SET hash = ? WHERE idx = ?`, h, idx) }
	}
	editColumn := func(seq int64) (func(), func()) {
		var tool string
		f.db.Reader().QueryRow(`SELECT tool FROM audit_entries WHERE seq = ?`, seq).Scan(&tool)
		return func() { f.exec(t, `UPDATE audit_entries SET tool = 'innocent' WHERE seq = ?`, seq) },
			func() { f.exec(t, `UPDATE audit_entries SET tool = ? WHERE seq = ?`, tool, seq) }
	}
	type change func() (tamper, undo func())
	cases := []struct {
		name   string
		change change
		kind   audit.Kind
		seq    int64
		// incremental: --incremental (from n) must see it too.
		incremental bool
	}{
		{"clean", nil, 0, 0, true},
		{"entry edited in a middle batch", func() (func(), func()) { return editEntry(14321) }, audit.KindContentChanged, 14321, false},
		{"stored leaf hash edited in a later chunk", func() (func(), func()) { return editLeaf(17777) }, audit.KindStoredHashChanged, 17777, false},
		{"first entry's column copy edited", func() (func(), func()) { return editColumn(0) }, audit.KindCopyChanged, 0, false},
		{"new entry edited", func() (func(), func()) { return editEntry(n + 300) }, audit.KindContentChanged, n + 300, true},
		{"new leaf hash edited", func() (func(), func()) { return editLeaf(n + 599) }, audit.KindStoredHashChanged, n + 599, true},
		{"last column copy edited", func() (func(), func()) { return editColumn(n + 599) }, audit.KindCopyChanged, n + 599, true},
	}
	// Incremental runs first: they start from the full run at n, and a
	// full run records where the next one starts.
	for _, incremental := range []bool{true, false} {
		for _, tc := range cases {
			for _, twin := range []bool{true, false} {
				if incremental && !tc.incremental {
					continue
				}
				t.Run(fmt.Sprintf("%s/twin=%v/incremental=%v", tc.name, twin, incremental), func(t *testing.T) {
					noTwin = !twin
					defer func() { noTwin = false }()
					if tc.change != nil {
						tamper, undo := tc.change()
						tamper()
						defer undo()
					}
					before := twins.Load()
					rep, err := f.log.Verify(ctx, VerifyOptions{Incremental: incremental})
					if twin != (twins.Load() > before) {
						t.Fatalf("twin transaction taken: %v, want %v", twins.Load() > before, twin)
					}
					if incremental && (rep.Mode != "incremental" || rep.Since != n) {
						t.Fatalf("not an incremental run from %d: %+v", n, rep)
					}
					var verr *audit.VerifyError
					switch {
					case tc.kind == 0:
						if err != nil || rep.Size != n+600 {
							t.Fatalf("clean log: %+v, %v", rep, err)
						}
					case !errors.As(err, &verr) || verr.Kind != tc.kind || verr.Seq != tc.seq:
						t.Fatalf("Verify = %v; want %s at %d", err, tc.kind, tc.seq)
					}
				})
			}
		}
	}
}
