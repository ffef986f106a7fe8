// Package ratelimit keeps exact sliding-window counters for policy rules
// such as `limit: "100/hour"`.
//
// A window "N/hour" promises that no more than N calls go through in ANY
// hour, not merely in each clock hour: a token bucket or a fixed window lets
// up to 2N through across a boundary. The only exact implementation is to
// remember when the admitted calls happened. Once N calls are remembered for
// a key, only the newest N timestamps matter (the window is full exactly when
// the N-th newest call is younger than the window), so a key never holds more
// than N timestamps and expired ones are pruned as keys are used.
//
// Counting is atomic with the decision: Counter.Admit reads the counts,
// lets the caller decide, and records the call in one step that no other
// Admit on the same store interleaves with, in this process or another one
// sharing the state directory (SQLite BEGIN IMMEDIATE). Four processes racing
// 60 calls each against "100/hour" admit exactly 100.
package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLimit bounds N in "N/unit": a key stores up to N timestamps.
const MaxLimit = 1_000_000

// Window is a parsed limit such as "100/hour": at most Limit calls in any
// interval of length Per.
type Window struct {
	Limit int
	Per   time.Duration
	// Unit is the unit as written ("second", "minute", "hour", "day").
	Unit string
}

// Units maps the units a limit may use to their length.
var Units = map[string]time.Duration{
	"second": time.Second,
	"minute": time.Minute,
	"hour":   time.Hour,
	"day":    24 * time.Hour,
}

// MaxWindow is the longest window; rows older than this are garbage.
const MaxWindow = 24 * time.Hour

// ParseWindow parses "N/second", "N/minute", "N/hour" or "N/day" with N a
// positive integer up to MaxLimit.
func ParseWindow(s string) (Window, error) {
	n, unit, ok := strings.Cut(s, "/")
	if !ok {
		return Window{}, fmt.Errorf("limit %q must be N/second, N/minute, N/hour or N/day (e.g. \"100/hour\")", s)
	}
	per, ok := Units[unit]
	if !ok {
		return Window{}, fmt.Errorf("limit %q: unknown unit %q (want second, minute, hour or day)", s, unit)
	}
	limit, err := strconv.Atoi(n)
	if err != nil || limit < 1 || n[0] == '+' {
		return Window{}, fmt.Errorf("limit %q: %q is not a positive whole number of calls", s, n)
	}
	if limit > MaxLimit {
		return Window{}, fmt.Errorf("limit %q: at most %d calls per window are supported", s, MaxLimit)
	}
	return Window{Limit: limit, Per: per, Unit: unit}, nil
}

func (w Window) String() string { return strconv.Itoa(w.Limit) + "/" + w.Unit }

// Key names one counter: the policy, the rule (its name, or "#INDEX" for an
// unnamed rule) and the agent (DID) the calls are counted for.
type Key struct {
	Policy string
	Rule   string
	Agent  string
}

func (k Key) String() string { return k.Policy + "/" + k.Rule + " for " + k.Agent }

// Check is one counter taking part in an Admit.
type Check struct {
	Key    Key
	Window Window
}

// Counter stores sliding-window counters. Implementations must be safe for
// concurrent use; the SQLite one is also safe across processes.
type Counter interface {
	// Admit makes one atomic step over the counters of checks. It calls
	// decide once with, for each check, the number of calls recorded under
	// its key within the window ending at now (at most Window.Limit); if
	// decide returns true, it records one call at now under every key.
	// Nothing else changes these counters between the count and the record.
	// decide must not call back into the Counter.
	Admit(ctx context.Context, now time.Time, checks []Check, decide func(used []int) bool) error

	// Usage returns the counts Admit would pass to decide, recording
	// nothing.
	Usage(ctx context.Context, now time.Time, checks []Check) ([]int, error)
}

// since returns the exclusive lower bound of the window ending at now, in
// Unix nanoseconds: a call recorded at ts counts iff ts > since.
func since(now time.Time, w Window) int64 {
	return now.Add(-w.Per).UnixNano()
}
