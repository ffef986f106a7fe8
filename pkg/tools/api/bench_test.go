package api

import (
	"context"
	"testing"
)

// BenchmarkAPICallLoopback: one allowed call to an allow_private loopback
// endpoint, end to end (canonicalise, match, guarded dial, request, read,
// result). No connection reuse, by design.
func BenchmarkAPICallLoopback(b *testing.B) {
	tool, _, base := loopbackAPI(b, 0)
	args := map[string]any{"url": base + "/weather", "expect": "json"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAPIAllowed: canonicalisation and allowlist matching alone.
func BenchmarkAPIAllowed(b *testing.B) {
	tool := mustNew(b, Options{Endpoints: []Endpoint{{URL: "https://api.weather.com/*"}}})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tool.Allowed("https://api.weather.com/v1/forecast?q=Paris", "GET"); !ok {
			b.Fatal("refused")
		}
	}
}
