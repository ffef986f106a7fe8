package latency

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Concurrent runs b.N calls of op spread over workers goroutines (op gets
// the call's index, 0 to b.N-1), times each call and reports their p50 and
// p99 (Report). ns/op is then wall time per call: with one worker a call's
// latency, with more the inverse of the throughput, while p50 and p99 stay
// what one caller waits. The same harness in two packages gives two
// backends the same shape of load. The first error of a worker stops it
// and fails the benchmark.
func Concurrent(b *testing.B, workers int, op func(i int) error) {
	b.Helper()
	var next atomic.Int64
	n := int64(b.N)
	durs := make([][]time.Duration, workers)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				t0 := time.Now()
				if err := op(int(i)); err != nil {
					b.Error(err)
					return
				}
				durs[w] = append(durs[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, d := range durs {
		all = append(all, d...)
	}
	Report(b, all)
}
