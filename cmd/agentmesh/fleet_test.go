package main

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/audit"
)

// The fleet acceptance tests: real `agentmesh serve --http` replicas
// sharing one identity and one PostgreSQL database, real MCP clients over
// streamable HTTP, and the CLI against the same database. They skip
// without AGENTMESH_TEST_DATABASE_URL (scripts/pg-test-env).

// fleetRun is the outcome of clients calling replicas: what each call of
// each file saw.
type fleetRun struct {
	mu      sync.Mutex
	results map[int]result // by file number
	replica map[int]string // which replica answered it
}

func (r *fleetRun) record(i int, rep string, res result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.results[i], r.replica[i] = res, rep
}

// checkLogged fails the test for every acknowledged read (a result that
// is not an error, with the file's contents) that has no allowed entry in
// the log, for any entry of a call not made, and for a call logged twice. It returns how many
// calls were acknowledged.
func (r *fleetRun) checkLogged(t *testing.T, log []audit.Entry) int {
	t.Helper()
	logged := readsLogged(log)
	acked := 0
	for i, res := range r.results {
		if !res.ok() {
			continue
		}
		acked++
		if res.text != fileText(i) {
			t.Errorf("read %s on %s returned %q, want its contents", filePath(i), r.replica[i], res.text)
		}
		if got := logged[filePath(i)]; len(got) != 1 || got[0] != audit.ResultAllowed {
			t.Errorf("acknowledged read %s on %s: log entries %v, want one allowed", filePath(i), r.replica[i], got)
		}
	}
	for p, results := range logged {
		if len(results) > 1 {
			t.Errorf("%s was read once, the log has %d entries of it: %v", p, len(results), results)
		}
		var i int
		if _, err := fmt.Sscanf(p, "/data/f%04d.txt", &i); err != nil {
			t.Errorf("the log has a read of %s, which no client made", p)
		} else if _, made := r.results[i]; !made {
			t.Errorf("the log has a read of %s, which no client made", p)
		}
	}
	return acked
}

// TestFleetConcurrentCalls: 3 replicas × 4 clients each make 2,000
// governed reads in total, each of its own file. Every read is
// acknowledged with the file's contents and has exactly one allowed
// entry; the log's seqs are contiguous; audit verify --database passes.
func TestFleetConcurrentCalls(t *testing.T) {
	const replicas, clientsPer, calls = 3, 4, 2000
	f := newFleet(t, "")
	f.dataFiles(calls)
	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = f.start(fmt.Sprintf("r%d", i))
	}
	run := &fleetRun{results: map[int]result{}, replica: map[int]string{}}
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for k := 0; k < replicas*clientsPer; k++ {
		rep := reps[k%replicas]
		c := connect(t, rep, fmt.Sprintf("client-%d", k), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < calls; i = int(next.Add(1) - 1) {
				run.record(i, rep.name, c.read(i))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d calls by %d clients on %d replicas in %v: %.0f calls/s", calls, replicas*clientsPer, replicas, elapsed.Round(time.Millisecond), calls/elapsed.Seconds())

	failed := 0
	for i, res := range run.results {
		if !res.ok() {
			if failed++; failed <= 5 {
				t.Errorf("read %s on %s: %s", filePath(i), run.replica[i], res)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d calls failed", failed, calls)
	}
	log := f.auditLog()
	others := map[string]int{}
	for _, e := range log {
		if e.Tool != "filesystem_read" {
			others[string(e.Action)]++
		}
	}
	t.Logf("the log's entries besides the reads: %v", others)
	if acked := run.checkLogged(t, log); acked != calls {
		t.Errorf("%d calls acknowledged, want %d", acked, calls)
	}
	f.verifyLog(len(log))
}

// TestFleetExactRateLimit: a 100/hour limit counted per server, hit by 160
// concurrent calls spread over 3 replicas, lets exactly 100 through; the
// other 60 are refused as rate-limited, and the log says the same.
func TestFleetExactRateLimit(t *testing.T) {
	const replicas, clientsPer, calls, limit = 3, 4, 160, 100
	f := newFleet(t, "")
	f.write("policies/limit.yaml", `policies:
  - name: fleet-limit
    rules:
      - name: list-100-per-hour
        condition: "tool == 'filesystem_list'"
        limit: "100/hour"
        per: server
        action: block
        message: "filesystem_list is limited to 100 calls per hour"
`)
	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = f.start(fmt.Sprintf("r%d", i))
	}
	var allowed, limited atomic.Int64
	perReplica := make([]atomic.Int64, replicas)
	var next atomic.Int64
	var wg sync.WaitGroup
	for k := 0; k < replicas*clientsPer; k++ {
		r := k % replicas
		c := connect(t, reps[r], fmt.Sprintf("client-%d", k), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= calls {
				res := c.call("filesystem_list", map[string]any{"path": "/data"})
				switch {
				case res.ok():
					allowed.Add(1)
					perReplica[r].Add(1)
				case res.isError && strings.Contains(res.text, "limited to 100 calls per hour"):
					limited.Add(1)
				default:
					t.Errorf("filesystem_list on %s: %s", reps[r].name, res)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("allowed per replica: %d, %d, %d", perReplica[0].Load(), perReplica[1].Load(), perReplica[2].Load())
	if allowed.Load() != limit || limited.Load() != calls-limit {
		t.Errorf("%d allowed and %d refused by the limit, want exactly %d and %d", allowed.Load(), limited.Load(), limit, calls-limit)
	}
	log := f.auditLog()
	byResult := map[audit.Result]int{}
	for _, e := range log {
		if e.Action == audit.ActionToolInvocation && e.Tool == "filesystem_list" {
			byResult[e.Result]++
		}
	}
	if byResult[audit.ResultAllowed] != limit || byResult[audit.ResultBlocked] != calls-limit || len(byResult) != 2 {
		t.Errorf("the log's filesystem_list entries by result: %v, want %d allowed and %d blocked", byResult, limit, calls-limit)
	}
	f.verifyLog(len(log))
}

// TestFleetReplicaKilled: while 12 clients read through 3 replicas, one
// replica is killed with SIGKILL. Its clients stop at their first failed
// call; the other replicas keep serving (every call to them succeeds,
// including the rest of the run); afterwards every acknowledged read has
// its entry, the seqs are contiguous and audit verify passes.
func TestFleetReplicaKilled(t *testing.T) {
	const replicas, clientsPer, calls = 3, 4, 1500
	f := newFleet(t, "")
	f.dataFiles(calls)
	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = f.start(fmt.Sprintf("r%d", i))
	}
	victim := reps[2]
	run := &fleetRun{results: map[int]result{}, replica: map[int]string{}}
	var next, acked, afterKill atomic.Int64
	var killing, dead atomic.Bool // SIGKILL about to be sent; the victim has exited
	killNow := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for k := 0; k < replicas*clientsPer; k++ {
		rep := reps[k%replicas]
		c := connect(t, rep, fmt.Sprintf("client-%d", k), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < calls; i = int(next.Add(1) - 1) {
				res := c.read(i)
				run.record(i, rep.name, res)
				if res.ok() {
					if acked.Add(1) == calls/3 {
						once.Do(func() { close(killNow) })
					}
					if dead.Load() {
						afterKill.Add(1)
					}
					continue
				}
				if rep != victim {
					t.Errorf("read %s on %s, a replica that was not killed: %s", filePath(i), rep.name, res)
				} else if !killing.Load() || res.err == nil {
					t.Errorf("read %s on %s (being killed: %v): %s", filePath(i), rep.name, killing.Load(), res)
				}
				return // a client of the killed replica stops at its first failure
			}
		}()
	}
	<-killNow
	killing.Store(true)
	victim.kill()
	dead.Store(true)
	t.Logf("killed %s with SIGKILL after %d acknowledged calls", victim.name, acked.Load())
	wg.Wait()

	var failed, onVictim int
	for _, res := range run.results {
		if !res.ok() {
			failed++
		}
	}
	for _, rep := range run.replica {
		if rep == victim.name {
			onVictim++
		}
	}
	t.Logf("%d calls made, %d acknowledged, %d failed (in flight on %s when it died); %d acknowledged by the survivors after the kill; %d made on %s",
		len(run.results), acked.Load(), failed, victim.name, afterKill.Load(), onVictim, victim.name)
	if afterKill.Load() == 0 {
		t.Error("no call succeeded after the kill: the surviving replicas did not keep serving")
	}
	if failed > clientsPer {
		t.Errorf("%d calls failed, want at most one per client of the killed replica (%d)", failed, clientsPer)
	}
	log := f.auditLog()
	if n := run.checkLogged(t, log); int64(n) != acked.Load() {
		t.Errorf("checked %d acknowledged calls, counted %d", n, acked.Load())
	}
	f.verifyLog(len(log))
}
