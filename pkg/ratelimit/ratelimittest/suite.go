// Package ratelimittest is the behaviour every ratelimit.Counter must have,
// as one suite that each backend runs (in memory, SQLite, PostgreSQL): the
// backends must agree call by call.
package ratelimittest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
)

type (
	check  = ratelimit.Check
	key    = ratelimit.Key
	window = ratelimit.Window
)

// t0 is the suite's start time.
var t0 = time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)

// AdmitIfRoom is the decision a "block" rule makes: go ahead (and be
// counted) only while the window has room.
func AdmitIfRoom(t testing.TB, c ratelimit.Counter, now time.Time, chk ratelimit.Check) bool {
	t.Helper()
	var admitted bool
	err := c.Admit(context.Background(), now, []ratelimit.Check{chk}, func(used []int) bool {
		admitted = used[0] < chk.Window.Limit
		return admitted
	})
	if err != nil {
		t.Fatal(err)
	}
	return admitted
}

// Run runs the suite, each test on a fresh counter from newCounter.
func Run(t *testing.T, newCounter func(t *testing.T) ratelimit.Counter) {
	t.Run("SlidingWindowIsExact", func(t *testing.T) { slidingWindowIsExact(t, newCounter(t)) })
	t.Run("RefusedCallsAreNotCounted", func(t *testing.T) { refusedCallsAreNotCounted(t, newCounter(t)) })
	t.Run("KeysAreIndependentAndAdmitIsAllOrNothing", func(t *testing.T) { keysAreIndependent(t, newCounter(t)) })
}

// slidingWindowIsExact: a fixed window starting at t0 would admit 3 more at
// 60s; the sliding window admits one per call that left the window.
func slidingWindowIsExact(t *testing.T, c ratelimit.Counter) {
	chk := check{Key: key{Policy: "p", Rule: "r", Agent: "did:agentmesh:a"}, Window: window{Limit: 3, Per: time.Minute, Unit: "minute"}}
	steps := []struct {
		at   int
		want bool
	}{
		{0, true}, {30, true}, {59, true}, {59, false}, // full
		{60, true},   // the call at 0 left (60-60, 60]
		{61, false},  // 30, 59, 60 are inside
		{89, false},  // 30 is inside (29, 89]
		{90, true},   // 30 left
		{119, true},  // 59 left
		{120, true},  // 60 left
		{121, false}, // 90, 119, 120
	}
	for _, s := range steps {
		if got := AdmitIfRoom(t, c, t0.Add(time.Duration(s.at)*time.Second), chk); got != s.want {
			t.Fatalf("call at +%ds admitted = %v, want %v", s.at, got, s.want)
		}
	}
}

// refusedCallsAreNotCounted: a call the decision refuses is not recorded,
// so refusals do not prolong a block.
func refusedCallsAreNotCounted(t *testing.T, c ratelimit.Counter) {
	chk := check{Key: key{Policy: "p", Rule: "r", Agent: "a"}, Window: window{Limit: 2, Per: time.Hour, Unit: "hour"}}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		c.Admit(ctx, t0, []check{chk}, func([]int) bool { return false })
	}
	used, err := c.Usage(ctx, t0, []check{chk})
	if err != nil || used[0] != 0 {
		t.Fatalf("Usage after refused calls = %v, %v; want [0]", used, err)
	}
	AdmitIfRoom(t, c, t0, chk)
	AdmitIfRoom(t, c, t0.Add(time.Minute), chk)
	for m := 2; m < 60; m++ {
		if AdmitIfRoom(t, c, t0.Add(time.Duration(m)*time.Minute), chk) {
			t.Fatalf("call at +%dm admitted past the limit", m)
		}
	}
	if !AdmitIfRoom(t, c, t0.Add(time.Hour), chk) {
		t.Fatal("call at +1h refused: refused calls prolonged the window")
	}
}

// keysAreIndependent: each key has its own window, and one Admit over two
// keys records under both.
func keysAreIndependent(t *testing.T, c ratelimit.Counter) {
	w := window{Limit: 1, Per: time.Hour, Unit: "hour"}
	a := check{Key: key{Policy: "p", Rule: "r", Agent: "agent-a"}, Window: w}
	b := check{Key: key{Policy: "p", Rule: "r", Agent: "agent-b"}, Window: w}
	other := check{Key: key{Policy: "p", Rule: "other", Agent: "agent-a"}, Window: window{Limit: 10, Per: time.Hour, Unit: "hour"}}
	ctx := context.Background()
	if !AdmitIfRoom(t, c, t0, a) || !AdmitIfRoom(t, c, t0, b) {
		t.Fatal("first call of each agent refused")
	}
	err := c.Admit(ctx, t0, []check{other, b}, func(used []int) bool {
		if used[0] != 0 || used[1] != 1 {
			t.Errorf("used = %v, want [0 1]", used)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	used, err := c.Usage(ctx, t0, []check{a, b, other})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(used) != "[1 1 1]" {
		t.Fatalf("Usage = %v, want [1 1 1] (b capped at its limit)", used)
	}
}
