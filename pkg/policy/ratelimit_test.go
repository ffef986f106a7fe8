package policy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// In child mode the test binary is one of several agentmesh processes
// sharing a state directory (TestRateLimitAcrossProcesses).
const envChildState = "POLICY_TEST_CHILD_STATE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChildState); dir != "" {
		os.Exit(childCalls(dir))
	}
	os.Exit(m.Run())
}

func openTestDB(t testing.TB, dir string) *state.DB {
	t.Helper()
	db, err := state.OpenDB(context.Background(), filepath.Join(dir, state.DatabaseFile), state.SyncNormal)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestRateLimitAcrossProcesses: 4 processes × 60 api_calls against the
// seed's 100/hour admit exactly 100; after a restart the window still
// holds, and an hour later it is free again.
func TestRateLimitAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	dir := t.TempDir()
	openTestDB(t, dir) // create and migrate before the race
	start := time.Now()
	const procs = 4
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^$")
		cmds[i].Env = append(os.Environ(), envChildState+"="+dir)
		cmds[i].Stdout, cmds[i].Stderr = &outs[i], os.Stderr
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	allowed := 0
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(outs[i].String()))
		if err != nil {
			t.Fatalf("child %d printed %q", i, outs[i].String())
		}
		allowed += n
	}
	if allowed != 100 {
		t.Fatalf("4 processes × 60 calls: %d allowed, want exactly 100", allowed)
	}

	// A restart: a new database handle and engine on the same state.
	now := time.Now()
	e := NewEngine(mustSet(t, seedRateLimit), Options{
		Counter: ratelimit.NewSQLite(openTestDB(t, dir)),
		Clock:   func() time.Time { return now },
	})
	call := &Call{Tool: "api_call", Agent: childAgent}
	if d := e.PreCall(context.Background(), call); d.Action != Block {
		t.Fatalf("after a restart: %s, want block (the window still holds)", d.Action)
	}
	now = start.Add(time.Hour + time.Minute)
	if d := e.PreCall(context.Background(), call); d.Action != Allow {
		t.Fatalf("an hour later: %s (%s), want allow", d.Action, d.Reason)
	}
}

const childAgent = "did:agentmesh:mcp-tool-server"

// childCalls makes 60 api_calls and prints how many were allowed.
func childCalls(dir string) int {
	db, err := state.OpenDB(context.Background(), filepath.Join(dir, state.DatabaseFile), state.SyncNormal)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer db.Close()
	f, err := ParseFile("seed.yaml", []byte(seedRateLimit))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	set, _ := NewSet(f)
	e := NewEngine(set, Options{Counter: ratelimit.NewSQLite(db)})
	allowed := 0
	for i := 0; i < 60; i++ {
		d := e.PreCall(context.Background(), &Call{Tool: "api_call", Agent: childAgent})
		switch {
		case d.Error != "":
			fmt.Fprintln(os.Stderr, d.Error)
			return 3
		case d.Action == Allow:
			allowed++
		}
	}
	fmt.Println(allowed)
	return 0
}
