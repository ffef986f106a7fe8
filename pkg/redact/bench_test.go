package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// benignRecord returns one realistic, secret-free JSON record.
func benignRecord(i int) map[string]any {
	return map[string]any{
		"id":          1000 + i,
		"order_id":    fmt.Sprintf("ORD-2024-%06d", i),
		"customer":    fmt.Sprintf("Customer %d", i),
		"status":      []string{"pending", "shipped", "delivered"}[i%3],
		"total":       json.Number(fmt.Sprintf("%d.%02d", 10+i%90, i%100)),
		"currency":    "EUR",
		"created_at":  fmt.Sprintf("2024-%02d-%02dT10:%02d:00Z", 1+i%12, 1+i%28, i%60),
		"items":       []any{map[string]any{"sku": fmt.Sprintf("SKU-%04d", i%9999), "qty": 1 + i%5}},
		"note":        "Leave the parcel at the front door if nobody answers.",
		"request_uid": fmt.Sprintf("%08x-1f2e-4d3c-9b8a-%012x", i*7919, i*104729),
	}
}

// benignJSON returns a JSON array of records of roughly size bytes.
func benignJSON(size int) []byte {
	var recs []any
	n := 0
	for i := 0; n < size; i++ {
		b, _ := json.Marshal(benignRecord(i))
		if n+len(b)+1 > size && len(recs) > 0 {
			break
		}
		recs = append(recs, benignRecord(i))
		n += len(b) + 1
	}
	out, _ := json.Marshal(recs)
	return out
}

// keywordHeavyText is the worst case found: every line holds several
// gitleaks keywords and key/value separators with high-entropy values that
// the package's own rules do not claim, so gitleaks' generic-api-key rule
// matches every line and runs its allowlists per candidate.
func keywordHeavyText(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "auth_header_%d=Zq%dXk9Lm2Vb7Wc5Tn1 access-level: key%dQ8zR4yP0 creds api\n", i, i, i)
	}
	return b.String()
}

func benchRedactJSON(b *testing.B, size int) {
	r := New(Options{Timeout: 10 * time.Second})
	doc := benignJSON(size)
	ctx := context.Background()
	if _, fs, err := r.RedactJSON(ctx, doc); err != nil || len(fs) != 0 { // warm-up: loads gitleaks
		b.Fatalf("warm-up: %v, findings %v", err, fs)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPUTime()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.RedactJSON(ctx, doc); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

// reportCPU adds the process CPU time per operation since start as the
// "cpu-ns/op" metric (GC and all goroutines included).
func reportCPU(b *testing.B, start time.Duration) {
	if start > 0 {
		b.ReportMetric(float64(processCPUTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkRedactJSON1KB(b *testing.B) { benchRedactJSON(b, 1<<10) }
func BenchmarkRedactJSON1MB(b *testing.B) { benchRedactJSON(b, 1<<20) }

func BenchmarkRedactText(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("keyword-heavy-%dKB", size>>10), func(b *testing.B) {
			r := New(Options{Timeout: 100 * time.Second}) // measure the work, not the bound
			text := keywordHeavyText(size)
			ctx := context.Background()
			_, _ = r.RedactText(ctx, "warm-up")
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPUTime()
			for i := 0; i < b.N; i++ {
				if _, err := r.RedactText(ctx, text); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
