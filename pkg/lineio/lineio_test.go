package lineio

import (
	"bufio"
	"io"
	"strings"
	"testing"
)

func limiter(in string, max int) *Limiter {
	l := NewLimiter(strings.NewReader(in), max)
	l.r = bufio.NewReaderSize(strings.NewReader(in), 16) // force chunked reads
	return l
}

func TestReplacesOversizedLines(t *testing.T) {
	in := "first\n" + strings.Repeat("x", 5000) + "\nthird\n" + strings.Repeat("y", 100) + "\n"
	l := limiter(in, 1000)
	var sizes []int
	l.OnOversize = func(n int) { sizes = append(sizes, n) }
	out, err := io.ReadAll(l)
	if err != nil {
		t.Fatal(err)
	}
	want := "first\n" + Oversized + "third\n" + strings.Repeat("y", 100) + "\n"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if len(sizes) != 1 || sizes[0] != 5001 {
		t.Fatalf("OnOversize saw %v, want [5001]", sizes)
	}
}

func TestLastLineWithoutNewline(t *testing.T) {
	out, _ := io.ReadAll(limiter("a\nbc", 1000))
	if string(out) != "a\nbc" {
		t.Fatalf("got %q", out)
	}
}
