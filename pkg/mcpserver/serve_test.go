package mcpserver

import (
	"context"
	"io"
	"strings"
	"testing"
)

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
