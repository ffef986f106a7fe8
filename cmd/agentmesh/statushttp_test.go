package main

import (
	"os"
	"strings"
	"testing"

	"github.com/agentmesh/agentmesh/pkg/config"
	"github.com/agentmesh/agentmesh/pkg/mcpserver"
	"github.com/agentmesh/agentmesh/pkg/state"
)

// TestStatusServingUnauthenticated: a running serve that listens on a
// non-loopback address without authentication is critical for status,
// whatever the configuration says; once it stops, nothing is reported.
func TestStatusServingUnauthenticated(t *testing.T) {
	d, err := state.Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	release, err := mcpserver.RecordListener(d, mcpserver.ListenerRecord{PID: os.Getpid(), Addr: "0.0.0.0:8443", TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	live, critical, _ := httpExposure(&cfg, d)
	if len(live) != 1 || len(critical) != 1 || !strings.Contains(critical[0], "is serving 0.0.0.0:8443 without client authentication") {
		t.Fatalf("serving: live %+v, critical %q", live, critical)
	}
	release()
	if live, critical, _ := httpExposure(&cfg, d); len(live) != 0 || len(critical) != 0 {
		t.Fatalf("after the serve stopped: live %+v, critical %q", live, critical)
	}
	// An authenticated or loopback listener is no finding.
	for _, rec := range []mcpserver.ListenerRecord{{PID: os.Getpid(), Addr: "0.0.0.0:8443", Authenticated: true}, {PID: os.Getpid(), Addr: "127.0.0.1:8080", Loopback: true}} {
		release, _ := mcpserver.RecordListener(d, rec)
		if _, critical, _ := httpExposure(&cfg, d); len(critical) != 0 {
			t.Errorf("%+v: critical %q", rec, critical)
		}
		release()
	}
}
