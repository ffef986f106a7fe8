package filesystem

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkFilesystemRead1KB is one filesystem_read of a 1 KB file, the
// call the serve benchmark makes.
func BenchmarkFilesystemRead1KB(b *testing.B) {
	fx := newFixture(b)
	writeFile(b, filepath.Join(fx.data, "1k.txt"), strings.Repeat("0123456789abcdef", 64))
	args := map[string]any{"path": "/data/1k.txt"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.read.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilesystemList(b *testing.B) {
	fx := newFixture(b)
	for i := range 20 {
		writeFile(b, filepath.Join(fx.data, "dir", strings.Repeat("f", i+1)+".txt"), "x")
	}
	args := map[string]any{"path": "/data/dir"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.list.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFilesystemWrite1KB(b *testing.B) {
	fx := newFixture(b)
	args := map[string]any{"path": "/data/out.txt", "content": strings.Repeat("0123456789abcdef", 64)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fx.write.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClean(b *testing.B) {
	for b.Loop() {
		if _, err := Clean("/data/reports/2026/q1/../q2/summary.csv"); err != nil {
			b.Fatal(err)
		}
	}
}
