package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/pgstate/pgtest"
)

// ownCluster starts a PostgreSQL cluster for this test alone with
// scripts/pg-test-env (stopping the shared one would break other tests)
// and returns its URL and a function running `pg-test-env CMD DIR` on it.
// The cluster is removed at the end of the test.
func ownCluster(t *testing.T) (url string, ctl func(cmd string)) {
	t.Helper()
	if os.Getenv(pgtest.EnvURL) == "" {
		t.Skip(pgtest.EnvURL + " is not set: no PostgreSQL to test against (scripts/pg-test-env starts one; scripts/test does it for you)")
	}
	script, err := filepath.Abs("../../scripts/pg-test-env")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("needs a cluster of its own, and %s is not there: %v", script, err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(script, "start")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		// Exit 3: no PostgreSQL binaries here (the shared database may be
		// a service this machine cannot start clusters of).
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
			t.Skipf("needs a cluster of its own: %s", strings.TrimSpace(errb.String()))
		}
		t.Fatalf("pg-test-env start: %v\n%s", err, errb.String())
	}
	var dir string
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "AGENTMESH_TEST_DATABASE_URL="); ok {
			url = v
		} else if v, ok := strings.CutPrefix(line, "AGENTMESH_PG_TEST_DIR="); ok {
			dir = v
		}
	}
	if url == "" || dir == "" {
		t.Fatalf("pg-test-env start printed no URL or DIR:\n%s", out.String())
	}
	ctl = func(c string) {
		t.Helper()
		if out, err := exec.Command(script, c, dir).CombinedOutput(); err != nil {
			t.Fatalf("pg-test-env %s: %v\n%s", c, err, out)
		}
	}
	t.Cleanup(func() { exec.Command(script, "stop", dir).Run() })
	return url, ctl
}

// readyz returns a replica's readiness: the status code and the body.
func readyz(t *testing.T, r *replica) (int, string) {
	t.Helper()
	resp, err := http.Get(r.metrics + "/readyz")
	if err != nil {
		t.Fatalf("%s /readyz: %v", r.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// refusedForDatabase says whether a refusal names the state database or
// the audit log as its reason.
func refusedForDatabase(res result) bool {
	if !res.isError {
		return false
	}
	s := strings.ToLower(res.text)
	return strings.Contains(s, "audit log") || strings.Contains(s, "database") || strings.Contains(s, "trust state unavailable")
}

// TestFleetDatabaseOutage: while 6 clients read through 3 replicas, the
// PostgreSQL server is stopped for 2 s and started again on the same
// port. During the outage calls are refused with a reason naming the
// database or the audit log, never answered unlogged, and /readyz says
// the database check fails; afterwards each replica serves again (and is
// ready) without a restart; every acknowledged read has its
// entry, the seqs are contiguous and audit verify passes.
func TestFleetDatabaseOutage(t *testing.T) {
	const replicas, clientsPer, files = 3, 2, 3000
	url, ctl := ownCluster(t)
	f := newFleetOn(t, url, "")
	f.dataFiles(files)
	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = f.start(fmt.Sprintf("r%d", i), "--metrics", "127.0.0.1:0")
	}

	const (
		before = iota // the database is up
		down          // pause asked for
		up            // resumed
	)
	var phase atomic.Int32
	run := &fleetRun{results: map[int]result{}, replica: map[int]string{}}
	var next, acked atomic.Int64
	refused := make([]atomic.Int64, replicas)    // refusals while down, per replica
	recovered := make([]chan struct{}, replicas) // closed at the first success after resume
	for i := range recovered {
		recovered[i] = make(chan struct{})
	}
	var recoverOnce [replicas]sync.Once
	var firstRefusal [replicas]atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for k := 0; k < replicas*clientsPer; k++ {
		r := k % replicas
		c := connect(t, reps[r], fmt.Sprintf("client-%d", k), nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(next.Add(1) - 1)
				if i >= files {
					t.Errorf("client-%d: ran out of files", k)
					return
				}
				started := phase.Load()
				res := c.read(i)
				run.record(i, reps[r].name, res)
				p := phase.Load() // a call made before the pause may end during it
				switch {
				case res.ok():
					acked.Add(1)
					if started == up {
						recoverOnce[r].Do(func() { close(recovered[r]) })
					}
				case refusedForDatabase(res) && p != before:
					refused[r].Add(1)
					firstRefusal[r].CompareAndSwap(nil, res.text)
					time.Sleep(20 * time.Millisecond)
				case refusedForDatabase(res):
					t.Errorf("read %s on %s before the outage: %s", filePath(i), reps[r].name, res)
					return
				default:
					t.Errorf("read %s on %s (phase %d): %s; want a result or a refusal naming the database or audit log", filePath(i), reps[r].name, p, res)
					return
				}
			}
		}()
	}
	for acked.Load() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	phase.Store(down)
	ctl("pause")
	pausedAt := acked.Load()
	for _, r := range reps {
		if code, body := readyz(t, r); code != http.StatusServiceUnavailable || !strings.Contains(body, `"name":"database","ok":false`) {
			t.Errorf("%s's /readyz while the database is down: %d %s", r.name, code, body)
		}
	}
	time.Sleep(2 * time.Second)
	ctl("resume")
	phase.Store(up)
	resumed := time.Now()
	for i, r := range reps {
		select {
		case <-recovered[i]:
			t.Logf("%s served again %v after the database was back", r.name, time.Since(resumed).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not serve again within 10 s of the database being back:\n%s", r.name, r.stderr)
		}
	}
	for _, r := range reps {
		if code, body := readyz(t, r); code != http.StatusOK {
			t.Errorf("%s's /readyz once it serves again: %d %s", r.name, code, body)
		}
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	for i, r := range reps {
		if refused[i].Load() == 0 {
			t.Errorf("%s refused no call while the database was down", r.name)
		} else {
			t.Logf("%s's first refusal: %s", r.name, firstRefusal[i].Load())
		}
	}
	t.Logf("%d acknowledged before the pause, %d in all; refused while down: %d, %d, %d",
		pausedAt, acked.Load(), refused[0].Load(), refused[1].Load(), refused[2].Load())
	log := f.auditLog()
	if n := run.checkLogged(t, log); int64(n) != acked.Load() {
		t.Errorf("checked %d acknowledged calls, counted %d", n, acked.Load())
	}
	f.verifyLog(len(log))
}
