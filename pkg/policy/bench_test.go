package policy

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentmesh/agentmesh/pkg/ratelimit"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// Benchmarks (not run in CI). The policy sets are checked in under
// testdata/bench: the default policy plus extra15.yaml (20 rules: equality,
// glob, regular expression and rate-limited rules), and rules100.yaml.
//
//	go test -run '^$' -bench . -benchmem ./pkg/policy/
//
// Each reports ns/op (the mean) and p50/p99 of single decisions.

var benchCall = Call{
	Tool:       "api_call",
	Agent:      "did:agentmesh:mcp-tool-server",
	TrustScore: 847,
	Client:     "claude-ai",
	Params:     map[string]any{"url": "https://api.weather.com/v1/today?city=Paris", "method": "GET"},
}

func benchSet(b *testing.B, paths ...string) *Set {
	b.Helper()
	f, err := ParseFile("default.yaml", DefaultYAML)
	if err != nil {
		b.Fatal(err)
	}
	files := []*File{f}
	for _, p := range paths {
		data, err := ReadFile(filepath.Join("testdata/bench", p))
		if err != nil {
			b.Fatal(err)
		}
		f, err := ParseFile(p, data)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, f)
	}
	s, err := NewSet(files...)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchDecide runs PreCall b.N times with a clock that advances enough per
// call for every limit to keep admitting (the costlier path: every call
// is counted), timing each call for the percentiles.
func benchDecide(b *testing.B, set *Set, counter ratelimit.Counter, call *Call, wantLimited int) {
	now := t0
	e := NewEngine(set, Options{Counter: counter, Clock: func() time.Time { return now }})
	ctx := context.Background()
	st := e.pool.Get().(*evalState)
	st.begin(ctx, set, PreCall, call, "", nil)
	for fi, fr := range set.stages[PreCall] {
		for _, r := range fr.rules {
			st.eval(fi, r)
		}
	}
	if got := len(st.checks); got != wantLimited {
		b.Fatalf("the call matches %d rate-limited rules, want %d", got, wantLimited)
	}
	st.release()
	lat := make([]time.Duration, 0, min(b.N, 1<<20))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		d := e.PreCall(ctx, call)
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
		if !d.Permits() {
			b.Fatalf("call %d: %s (%s)", i, d.Action, d.Reason)
		}
		now = now.Add(37 * time.Second) // 100/hour never fills
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDecidePreCall20Rules: expression cost plus an in-memory counter.
func BenchmarkDecidePreCall20Rules(b *testing.B) {
	set := benchSet(b, "extra15.yaml")
	if n := len(set.Rules()); n != 20 {
		b.Fatalf("%d rules, want 20", n)
	}
	benchDecide(b, set, ratelimit.NewMemory(), &benchCall, 2)
}

// BenchmarkDecidePreCall20RulesNoLimit: a call no rate-limited rule
// matches, so no counter is touched: the expressions alone.
func BenchmarkDecidePreCall20RulesNoLimit(b *testing.B) {
	call := benchCall
	call.Tool, call.Params = "filesystem_list", map[string]any{"path": "/data"}
	benchDecide(b, benchSet(b, "extra15.yaml"), ratelimit.NewMemory(), &call, 0)
}

// BenchmarkDecidePreCall20RulesSQLite: the same with the counters in the
// state database, one BEGIN IMMEDIATE transaction per call.
func BenchmarkDecidePreCall20RulesSQLite(b *testing.B) {
	for _, sync := range []string{state.SyncFull, state.SyncNormal} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			db, err := state.OpenDB(context.Background(), filepath.Join(b.TempDir(), "state.db"), sync)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			benchDecide(b, benchSet(b, "extra15.yaml"), ratelimit.NewSQLite(db), &benchCall, 2)
		})
	}
}

func BenchmarkDecide100Rules(b *testing.B) {
	set := benchSet(b, "rules100.yaml")
	if n := len(set.Rules()); n != 105 {
		b.Fatalf("%d rules, want 105 (100 + the default policy)", n)
	}
	benchDecide(b, set, ratelimit.NewMemory(), &benchCall, 3)
}

// BenchmarkDecideOneRule: the seed's rate-limit rule alone, for a call it
// does not match (the public project's engine: 11 µs).
func BenchmarkDecideOneRule(b *testing.B) {
	f, _ := ParseFile("seed.yaml", []byte(seedRateLimit))
	set, _ := NewSet(f)
	call := benchCall
	call.Tool = "filesystem_read"
	e := NewEngine(set, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.PreCall(ctx, &call); d.Action != Allow {
			b.Fatal(d.Action)
		}
	}
}

// BenchmarkDecidePostCall: the default policy's output rule on 1 KB.
func BenchmarkDecidePostCall(b *testing.B) {
	e := NewEngine(benchSet(b), Options{})
	out := string(make([]byte, 1024))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.PostCall(ctx, &benchCall, out); d.Action != Allow {
			b.Fatal(d.Action)
		}
	}
}
