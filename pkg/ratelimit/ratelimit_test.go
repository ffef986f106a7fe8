package ratelimit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/state"
)

// The subprocess mode of the test binary: TestAcrossProcesses re-executes
// it with these variables set to race for one window from several processes.
const (
	envChildDB    = "RATELIMIT_TEST_CHILD_DB"
	envChildCalls = "RATELIMIT_TEST_CHILD_CALLS"
)

func TestMain(m *testing.M) {
	if db := os.Getenv(envChildDB); db != "" {
		os.Exit(childAdmit(db))
	}
	os.Exit(m.Run())
}

var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

func TestParseWindow(t *testing.T) {
	good := []struct {
		in   string
		want Window
	}{
		{"100/hour", Window{100, time.Hour, "hour"}},
		{"1/second", Window{1, time.Second, "second"}},
		{"5/minute", Window{5, time.Minute, "minute"}},
		{"1000000/day", Window{1_000_000, 24 * time.Hour, "day"}},
	}
	for _, tt := range good {
		got, err := ParseWindow(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseWindow(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("Window.String() = %q, want %q", got.String(), tt.in)
		}
	}
	bad := map[string]string{
		"100":          "must be N/second",
		"100/hours":    `unknown unit "hours"`,
		"0/hour":       "not a positive whole number",
		"-1/hour":      "not a positive whole number",
		"+5/hour":      "not a positive whole number",
		"1.5/hour":     "not a positive whole number",
		"/hour":        "not a positive whole number",
		"100 / hour":   "unknown unit",
		"2000000/hour": "at most 1000000",
		"":             "must be N/second",
	}
	for in, want := range bad {
		if _, err := ParseWindow(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseWindow(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// counters returns every Counter implementation, fresh.
func counters(t *testing.T) map[string]Counter {
	return map[string]Counter{
		"memory": NewMemory(),
		"sqlite": NewSQLite(openDB(t, filepath.Join(t.TempDir(), "state.db"))),
	}
}

func openDB(t testing.TB, path string) *state.DB {
	t.Helper()
	db, err := state.OpenDB(context.Background(), path, state.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// admitIfRoom is the decision a "block" rule makes: go ahead (and be
// counted) only while the window has room.
func admitIfRoom(t testing.TB, c Counter, now time.Time, chk Check) bool {
	t.Helper()
	var admitted bool
	err := c.Admit(context.Background(), now, []Check{chk}, func(used []int) bool {
		admitted = used[0] < chk.Window.Limit
		return admitted
	})
	if err != nil {
		t.Fatal(err)
	}
	return admitted
}

func TestRecordedBeyondLimitKeepsOnlyNewest(t *testing.T) {
	// A "warn" rule lets calls beyond N through; they are recorded, but a
	// key never stores more than N times.
	chk := Check{Key{"p", "warn", "a"}, Window{3, time.Hour, "hour"}}
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	c := NewSQLite(db)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		err := c.Admit(ctx, t0.Add(time.Duration(i)*time.Minute), []Check{chk}, func([]int) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	var oldest int64
	db.Reader().QueryRow(`SELECT count(*), min(ts) FROM rate_limit_calls`).Scan(&rows, &oldest)
	if rows != 3 || oldest != t0.Add(7*time.Minute).UnixNano() {
		t.Fatalf("rows = %d oldest = %v, want the 3 newest (from +7m)", rows, time.Unix(0, oldest).UTC())
	}
	// The window is still full until the call at +7m leaves it.
	used, _ := c.Usage(ctx, t0.Add(67*time.Minute-time.Second), []Check{chk})
	if used[0] != 3 {
		t.Fatalf("used at +66m59s = %d, want 3", used[0])
	}
	used, _ = c.Usage(ctx, t0.Add(67*time.Minute), []Check{chk})
	if used[0] != 2 {
		t.Fatalf("used at +67m = %d, want 2", used[0])
	}
}

func TestSQLiteSweepsDeadKeys(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	c := NewSQLite(db)
	old := Check{Key{"p", "r", "gone"}, Window{5, time.Hour, "hour"}}
	live := Check{Key{"p", "r", "here"}, Window{5, time.Hour, "hour"}}
	admitIfRoom(t, c, t0, old)
	admitIfRoom(t, c, t0.Add(25*time.Hour), live)
	var agents []string
	rows, err := db.Reader().Query(`SELECT agent FROM rate_limit_calls`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a string
		rows.Scan(&a)
		agents = append(agents, a)
	}
	rows.Close()
	if fmt.Sprint(agents) != "[here]" {
		t.Fatalf("rows left = %v, want only the live key", agents)
	}
}

func TestSQLitePersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	chk := Check{Key{"rate-limit-api-calls", "#0", "a"}, Window{2, time.Hour, "hour"}}
	db, err := state.OpenDB(context.Background(), path, state.SyncFull)
	if err != nil {
		t.Fatal(err)
	}
	c := NewSQLite(db)
	admitIfRoom(t, c, t0, chk)
	admitIfRoom(t, c, t0, chk)
	db.Close()

	c = NewSQLite(openDB(t, path))
	if admitIfRoom(t, c, t0.Add(59*time.Minute), chk) {
		t.Fatal("after reopening, a call within the hour was admitted past the limit")
	}
	if !admitIfRoom(t, c, t0.Add(time.Hour), chk) {
		t.Fatal("after reopening, a call an hour later was refused")
	}
}

func TestSQLiteAdmitTxRollsBackWithCaller(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "state.db"))
	c := NewSQLite(db)
	chk := Check{Key{"p", "r", "a"}, Window{5, time.Hour, "hour"}}
	err := db.Write(context.Background(), func(tx *sql.Tx) error {
		if err := c.AdmitTx(context.Background(), tx, t0, []Check{chk}, func([]int) bool { return true }); err != nil {
			return err
		}
		return fmt.Errorf("audit append failed")
	})
	if err == nil {
		t.Fatal("Write returned nil")
	}
	used, _ := c.Usage(context.Background(), t0, []Check{chk})
	if used[0] != 0 {
		t.Fatalf("used = %d after the caller's transaction rolled back, want 0", used[0])
	}
}

func TestSQLiteConcurrentHandles(t *testing.T) {
	// Two handles on one file behave like two processes: goroutines racing
	// on both admit exactly the limit.
	path := filepath.Join(t.TempDir(), "state.db")
	cs := []Counter{NewSQLite(openDB(t, path)), NewSQLite(openDB(t, path))}
	chk := Check{Key{"p", "r", "a"}, Window{50, time.Hour, "hour"}}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(c Counter) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				if admitIfRoom(t, c, t0.Add(time.Duration(i)*time.Millisecond), chk) {
					mu.Lock()
					admitted++
					mu.Unlock()
				}
			}
		}(cs[g%2])
	}
	wg.Wait()
	if admitted != 50 {
		t.Fatalf("admitted %d calls, want exactly 50", admitted)
	}
}

func TestAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	openDB(t, path) // migrate once up front; children race on the counter only
	const procs, calls = 4, 60
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), envChildDB+"="+path, envChildCalls+"="+strconv.Itoa(calls))
		cmds[i].Stdout = &outs[i]
		cmds[i].Stderr = os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
		if err != nil {
			t.Fatalf("child %d printed %q", i, outs[i].String())
		}
		total += n
	}
	if total != 100 {
		t.Fatalf("%d processes × %d calls admitted %d in total, want exactly 100", procs, calls, total)
	}
}

// childAdmit is the subprocess side of TestAcrossProcesses: it tries calls
// against 100/hour and prints how many were admitted.
func childAdmit(path string) int {
	calls, _ := strconv.Atoi(os.Getenv(envChildCalls))
	db, err := state.OpenDB(context.Background(), path, state.SyncNormal)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer db.Close()
	c := NewSQLite(db)
	chk := Check{Key{"rate-limit-api-calls", "#0", "did:agentmesh:mcp-tool-server"}, Window{100, time.Hour, "hour"}}
	admitted := 0
	for i := 0; i < calls; i++ {
		err := c.Admit(context.Background(), time.Now(), []Check{chk}, func(used []int) bool {
			if used[0] < chk.Window.Limit {
				admitted++
				return true
			}
			return false
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 3
		}
	}
	fmt.Println(admitted)
	return 0
}
