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

// keywordRecord is a secret-free record whose member names hold gitleaks
// keywords ("author", "api", "auth", "token", "key"), as many real API
// responses do; values after them are what generic-api-key inspects.
func keywordRecord(i int) map[string]any {
	return map[string]any{
		"id":          i,
		"author":      map[string]any{"login": fmt.Sprintf("user%d", i%500), "name": "Jane Doe"},
		"api_version": "2024-06-01",
		"auth_method": []string{"oauth2", "saml", "password"}[i%3],
		"usage":       map[string]any{"token_count": 100 + i%900, "max_tokens": 1024},
		"keywords":    []string{"invoice", "monthly", "export"},
		"sort_key":    fmt.Sprintf("2024-05-%02d#%06d", 1+i%28, i),
		"message":     "Export finished; download the file from the reports page.",
	}
}

// benignJSON returns a JSON array of benignRecord of roughly size bytes.
func benignJSON(size int) []byte { return jsonOf(size, benignRecord) }

// jsonOf returns a JSON array of records of roughly size bytes.
func jsonOf(size int, record func(int) map[string]any) []byte {
	var recs []any
	n := 0
	for i := 0; n < size; i++ {
		b, _ := json.Marshal(record(i))
		if n+len(b)+1 > size && len(recs) > 0 {
			break
		}
		recs = append(recs, record(i))
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

func benchRedactJSON(b *testing.B, doc []byte) {
	r := New(Options{Timeout: 10 * time.Second})
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

func BenchmarkRedactJSON1KB(b *testing.B) { benchRedactJSON(b, benignJSON(1<<10)) }
func BenchmarkRedactJSON1MB(b *testing.B) { benchRedactJSON(b, benignJSON(1<<20)) }

// BenchmarkRedactJSON1MBKeywordNames is benign JSON whose member names hold
// gitleaks keywords, so the keyword-triggered rules do run.
func BenchmarkRedactJSON1MBKeywordNames(b *testing.B) {
	benchRedactJSON(b, jsonOf(1<<20, keywordRecord))
}

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

// codeParam is a code_execute parameter of about size bytes: Python with
// JSON nested three levels deep in string literals, prose comments that
// mention passwords and API keys, and one secret per block.
func codeParam(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		inner := fmt.Sprintf(`{"db_password": "pw-%04d-Secret!", "host": "db%d", "pool": [1, 2, 3]}`, i, i)
		doc := `{"config": ` + quoteJSON(`{"config": `+quoteJSON(inner)+`}`) + `}`
		fmt.Fprintf(&b, "# Reset your password: click Forgot password, then see the vault.\n"+
			"cfg_%d = json.loads('%s')\nprint(cfg_%d['config'], [i for i in range(10)])\n", i, doc, i)
	}
	return b.String()
}

// BenchmarkRedactValueCode measures RedactValue on tool-call parameters
// whose code holds nested JSON (the path the audit log takes).
func BenchmarkRedactValueCode(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			r := New(Options{Timeout: 10 * time.Second})
			params := map[string]any{"code": codeParam(size), "language": "python"}
			ctx := context.Background()
			out, _, err := r.RedactValue(ctx, params) // warm-up: loads gitleaks
			if logged, _ := json.Marshal(out); err != nil || strings.Contains(string(logged), "-Secret!") {
				b.Fatalf("warm-up: %v, or a secret survived", err)
			}
			b.SetBytes(int64(len(params["code"].(string))))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPUTime()
			for i := 0; i < b.N; i++ {
				if _, _, err := r.RedactValue(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}
