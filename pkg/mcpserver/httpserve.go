package mcpserver

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/agentmesh/agentmesh/pkg/httpguard"
)

// HTTPOptions configure `serve --http`; the rest comes from the http:
// section of the configuration.
type HTTPOptions struct {
	Addr string
	// Authenticated says client authentication (OAuth, API keys) is
	// configured; set by the caller. Mutual TLS counts by itself.
	Authenticated bool
	// AllowUnauthenticated permits a non-loopback listener without client
	// authentication (--allow-unauthenticated-non-loopback,
	// http.allow_unauthenticated).
	AllowUnauthenticated bool
	// Listener, when set, is already bound (ListenHTTP): a start that
	// cannot listen fails before anything is opened or written.
	Listener net.Listener
	// Ready is called with the bound address once listening.
	Ready func(addr string)
	// Sessions, when set, is the session registry to use (tests count
	// live sessions through it).
	Sessions *httpguard.Sessions
	// wireReady is told the proxy's wire handler (tests).
	wireReady func(*wireHandler)
}

// Endpoint is the path of the MCP endpoint.
const Endpoint = "/mcp"

// ServeHTTP serves streamable HTTP at /mcp until ctx ends, behind
// httpguard (limits, timeouts, Origin, the transport's status codes, TLS
// and mutual TLS). mcp-go's DNS-rebinding protection stays on.
func (rt *Runtime) ServeHTTP(ctx context.Context, o HTTPOptions) error {
	h := rt.Cfg.HTTP
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = ListenHTTP(h, o, func(m string) { rt.warnf("%s", m) }); err != nil {
			return err
		}
	}
	sessions := o.Sessions
	if sessions == nil {
		sessions = httpguard.NewSessions()
	}
	// Stateful: a session exists only after initialize and ends with
	// DELETE or after session_idle_ttl without a request (later requests
	// with its id get 404), per MCP 2025-11-25 "Session Management". The
	// idle sweeper takes everything mcp-go holds for the session and, by
	// its unregister hook, what the proxy and the wire handler hold. An
	// open GET stream is pinged every half TTL, so a session whose client
	// is still listening is not swept.
	ttl := h.SessionIdleTTL.D()
	mh := server.NewStreamableHTTPServer(rt.MCP, server.WithEndpointPath(Endpoint),
		server.WithSessionIdManager(sessions), server.WithSessionIdleTTL(ttl), server.WithHeartbeatInterval(ttl/2),
		server.WithStreamableHTTPLogger(slog.New(slog.NewTextHandler(rt.opts.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	var handler http.Handler = mh
	if rt.Proxy != nil {
		wh := newWireHandler(mh, rt.Proxy)
		if o.wireReady != nil {
			o.wireReady(wh)
		}
		handler = wh
	}
	// Each session belongs to the caller that created it.
	owners := newSessionOwners(handler)
	if hooks := rt.MCP.GetHooks(); hooks != nil {
		hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) { owners.forget(s.SessionID()) })
	}
	mux := http.NewServeMux()
	front, closeAuth, err := rt.authenticate(owners, mux)
	if err != nil {
		mh.Shutdown(context.Background())
		return err
	}
	defer closeAuth()
	mux.Handle(Endpoint, front)
	so := httpguard.FromConfig(h, Endpoint, sessions, rt.Cfg.ResolvePath)
	so.Warn = func(m string) { rt.warnf("%s", m) }
	// With bearer-token authentication as well, a client certificate is
	// one way in, not the only one.
	so.ClientCertOptional = rt.Cfg.Auth.Enabled()
	srv, err := httpguard.NewServer(mux, so)
	if err != nil {
		mh.Shutdown(context.Background())
		return err
	}
	srv.HTTP.ErrorLog = log.New(rt.opts.Stderr, "agentmesh: http: ", 0) // TLS handshake failures, not stderr of the process
	host, _, _ := net.SplitHostPort(ln.Addr().String())
	release, err := RecordListener(rt.Dir, ListenerRecord{PID: os.Getpid(), Addr: ln.Addr().String(), Loopback: isLoopback(host),
		TLS: srv.TLS(), Authenticated: o.Authenticated || h.ClientCA != "", Started: time.Now().UTC()})
	if err != nil {
		mh.Shutdown(context.Background())
		return fmt.Errorf("recording the listener for `agentmesh status`: %w", err)
	}
	defer release()
	if o.Ready != nil {
		o.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		// Close the MCP sessions (and their event streams) first, then give
		// in-flight calls a moment to finish: their audit entries are
		// written either way.
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		mh.Shutdown(sctx)
		if err := srv.HTTP.Shutdown(sctx); err != nil {
			srv.HTTP.Close()
		}
		return nil
	case err := <-errc:
		mh.Shutdown(context.Background())
		return err
	}
}
