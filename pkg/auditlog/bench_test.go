package auditlog

import (
	"context"
	"testing"
)

// BenchmarkAppendDurable: one appender, each append its own durable commit
// (synchronous=FULL).
func BenchmarkAppendDurable(b *testing.B) {
	f := newFixture(b, b.TempDir())
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendConcurrent16: 16 appenders in one process share commits
// (group commit).
func BenchmarkAppendConcurrent16(b *testing.B) {
	f := newFixture(b, b.TempDir())
	b.SetParallelism(8) // 8 × GOMAXPROCS(2) = 16 goroutines here
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := f.log.Append(context.Background(), call(i), nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
