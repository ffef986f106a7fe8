package code

import (
	"context"
	"testing"
)

// BenchmarkCodeExecute: the cost of one call of a trivial program, which is
// almost all process start (fork, exec, runtime init, limits, Landlock).
func BenchmarkCodeExecute(b *testing.B) {
	tool := newTool(b, testOptions(b))
	args := map[string]any{"code": "print(1)"}
	ctx := context.Background()
	for b.Loop() {
		if _, err := tool.Call(ctx, args); err != nil {
			b.Fatal(err)
		}
	}
}
