package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentmesh/agentmesh/pkg/tools"
)

// countingServer is an HTTP server on 127.0.0.1 that counts accepted
// connections: a refused call must leave the count at zero.
type countingServer struct {
	*httptest.Server
	conns atomic.Int64
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func newCountingServer(t testing.TB, h http.Handler) *countingServer {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingServer{}
	ts := httptest.NewUnstartedServer(h)
	ts.Listener.Close()
	ts.Listener = countingListener{Listener: l, n: &cs.conns}
	ts.Start()
	cs.Server = ts
	t.Cleanup(ts.Close)
	return cs
}

// port is the server's port as a string.
func (s *countingServer) port() string {
	return fmt.Sprint(s.Listener.Addr().(*net.TCPAddr).Port)
}

// addr is "127.0.0.1:PORT".
func (s *countingServer) addr() string { return s.Listener.Addr().String() }

// mapResolver is the only DNS tests use: names map to fixed addresses.
func mapResolver(m map[string][]string) Resolver {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := m[host]
		if !ok {
			return nil, fmt.Errorf("test resolver: no such host %q", host)
		}
		var out []netip.Addr
		for _, s := range ips {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	}
}

var errNoDial = errors.New("test dial hook: connecting to this address is not allowed in tests")

// dialHook is the test's control hook, chained after the SSRF guard. It
// lets through only the loopback test servers named in allow and refuses
// everything else without connecting, recording the address: for any
// address the guard should have refused, a record is a test failure.
type dialHook struct {
	mu      sync.Mutex
	allow   map[string]bool
	reached []string
}

func newDialHook(allow ...string) *dialHook {
	h := &dialHook{allow: map[string]bool{}}
	for _, a := range allow {
		h.allow[a] = true
	}
	return h
}

func (h *dialHook) control(network, address string, _ syscall.RawConn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.allow[address] {
		return nil
	}
	h.reached = append(h.reached, address)
	return errNoDial
}

func (h *dialHook) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.reached
	h.reached = nil
	return r
}

// call runs the tool with a url and optional extra args.
func call(t testing.TB, tool *Tool, url string, extra ...any) (*mcp.CallToolResult, error) {
	t.Helper()
	args := map[string]any{"url": url}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	return tool.Call(context.Background(), args)
}

// refusalCheck returns the check of a *tools.Refusal, or "" for nil and
// "error: ..." for any other error.
func refusalCheck(err error) string {
	if err == nil {
		return ""
	}
	var rf *tools.Refusal
	if errors.As(err, &rf) {
		return rf.Check
	}
	return "error: " + err.Error()
}

func mustNew(t testing.TB, opts Options) *Tool {
	t.Helper()
	tool, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tool
}

func structured(t testing.TB, res *mcp.CallToolResult) Result {
	t.Helper()
	r, ok := res.StructuredContent.(Result)
	if !ok {
		t.Fatalf("structured content is %T", res.StructuredContent)
	}
	return r
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}
