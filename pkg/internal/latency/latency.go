// Package latency reports per-call latency percentiles from benchmarks
// (go test -bench reports means only).
package latency

import (
	"slices"
	"testing"
	"time"
)

// Report adds the p50 and p99 of durations to b's results, in µs.
func Report(b *testing.B, durations []time.Duration) {
	if len(durations) == 0 {
		return
	}
	d := slices.Clone(durations)
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}
