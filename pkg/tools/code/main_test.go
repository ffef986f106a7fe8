package code

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// childEnv routes the test binary to RunChild, as the hidden subcommand
// does for agentmesh.
const childEnv = "AGENTMESH_TEST_SANDBOX_CHILD"

// limitsProbeEnv makes the test binary apply a request's rlimits to
// itself and report how many files it could then open.
const limitsProbeEnv = "AGENTMESH_TEST_LIMITS_PROBE"

// landlockProbeEnv makes the test binary restrict itself with Landlock and
// report whether it can still read a file.
const landlockProbeEnv = "AGENTMESH_TEST_LANDLOCK_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(RunChild(os.Stdin, os.Stdout))
	}
	if os.Getenv(limitsProbeEnv) == "1" {
		limits, _, err := applyLimits(request{CPUSeconds: 3, MaxOpenFiles: 16, MaxMemoryMB: 64})
		n := 0
		for ; n < 100; n++ {
			if _, err := os.Open(os.DevNull); err != nil {
				break
			}
		}
		fmt.Printf("%v\n%v\n%d\n", limits, err, n)
		os.Exit(0)
	}
	if path := os.Getenv(landlockProbeEnv); path != "" {
		runtime.LockOSThread()
		state := restrictFilesystem()
		_, err := os.ReadFile(path)
		fmt.Printf("%s\n%v\n", state, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testOptions are small limits so the abuse suite stays fast.
func testOptions(t testing.TB) Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		MaxMemoryMB:    64,
		CPUSeconds:     2,
		Timeout:        10 * time.Second,
		MaxSteps:       2_000_000,
		MaxOutputBytes: 4 << 10,
		MaxOpenFiles:   16,
		Exe:            exe,
		Args:           []string{},
		Env:            []string{childEnv + "=1"},
	}
}

func newTool(t testing.TB, opts Options) *Tool {
	t.Helper()
	tool, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tool
}

func run(t testing.TB, tool *Tool, code string) (*Result, error) {
	t.Helper()
	res, err := tool.Call(context.Background(), map[string]any{"code": code})
	if err != nil {
		return nil, err
	}
	r, ok := res.StructuredContent.(Result)
	if !ok {
		t.Fatalf("structured content is %T", res.StructuredContent)
	}
	if res.IsError != (r.Error != "") {
		t.Fatalf("isError=%v but error %q", res.IsError, r.Error)
	}
	return &r, nil
}

func check(err error) string {
	var rf *tools.Refusal
	if errors.As(err, &rf) {
		return rf.Check
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}
