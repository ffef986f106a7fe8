package main

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// newCountingServer is a loopback HTTP server counting the requests it
// receives; it returns its base URL.
func newCountingServer(t *testing.T, hits *atomic.Int64) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
