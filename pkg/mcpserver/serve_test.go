package mcpserver

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
)

func TestLineLimiterReplacesOversizedLines(t *testing.T) {
	in := "first\n" + strings.Repeat("x", 5000) + "\nthird\n" + strings.Repeat("y", 100) + "\n"
	l := &lineLimiter{r: bufio.NewReaderSize(strings.NewReader(in), 16), max: 1000}
	out, err := io.ReadAll(l)
	if err != nil {
		t.Fatal(err)
	}
	want := "first\noversized-message\nthird\n" + strings.Repeat("y", 100) + "\n"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestLineLimiterLastLineWithoutNewline(t *testing.T) {
	l := &lineLimiter{r: bufio.NewReaderSize(strings.NewReader("a\nbc"), 16), max: 1000}
	out, _ := io.ReadAll(l)
	if string(out) != "a\nbc" {
		t.Fatalf("got %q", out)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "::1": true, "localhost": true, "127.1.2.3": true,
		"0.0.0.0": false, "": false, "10.0.0.1": false, "example.com": false, "::": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestServeHTTPRefusesNonLoopbackWithoutFlag(t *testing.T) {
	rt := &Runtime{opts: Options{Stderr: io.Discard}}
	err := rt.ServeHTTP(context.Background(), HTTPOptions{Addr: "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--allow-non-loopback") {
		t.Fatalf("ServeHTTP(0.0.0.0) = %v, want a refusal naming --allow-non-loopback", err)
	}
	if err := rt.ServeHTTP(context.Background(), HTTPOptions{Addr: "nonsense"}); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Fatalf("ServeHTTP(nonsense) = %v", err)
	}
}
