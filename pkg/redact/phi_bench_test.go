package redact

import (
	"testing"
)

// BenchmarkFindPHI: the cost of the PHI scanners alone over benign JSON
// text, the work Options.PHI adds to every scan
// (go test -run '^$' -bench FindPHI ./pkg/redact; cpu-ns/op is less
// sensitive than wall time to a shared machine).
func BenchmarkFindPHI(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int
	}{{"1KB", 1 << 10}, {"1MB", 1 << 20}} {
		text := string(benignJSON(bc.size))
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			start := processCPUTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				findPHI(text, nil)
			}
			b.ReportMetric(float64(processCPUTime()-start)/float64(b.N), "cpu-ns/op")
		})
	}
}
